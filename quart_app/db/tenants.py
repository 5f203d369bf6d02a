"""Tenants of the phone agent: who answers which numbers, and how (instructions, greeting, voice, model, turn
detection, knowledge base, maximum call length). A number belongs to at most one tenant (`tenant_numbers`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from databases import Database

from .database import new_id, now, write_transaction
from .knowledge import delete_all_of_tenant
from .tables import tenant_numbers, tenants

DEFAULT_TURN_DETECTION: dict[str, Any] = {"type": "server_vad"}


class NumberTaken(Exception):
    """A phone number already belongs to another tenant."""

    def __init__(self, numbers: list[str]) -> None:
        super().__init__(", ".join(numbers))
        self.numbers = numbers


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    instructions: str
    greeting: str | None
    voice: str | None
    model: str | None
    turn_detection: dict[str, Any]
    knowledge_enabled: bool
    max_call_s: int | None
    audio_format: str | None
    created_at: float
    updated_at: float
    phone_numbers: list[str] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return dict(self.__dict__)


# The fields a client sets; everything else is the service's.
EDITABLE = (
    "name",
    "instructions",
    "greeting",
    "voice",
    "model",
    "turn_detection",
    "knowledge_enabled",
    "max_call_s",
    "audio_format",
)


def _tenant(row: Any, numbers: list[str]) -> Tenant:
    data = dict(row._mapping)
    data["turn_detection"] = json.loads(data["turn_detection"]) if data["turn_detection"] else DEFAULT_TURN_DETECTION
    data["knowledge_enabled"] = bool(data["knowledge_enabled"])
    return Tenant(phone_numbers=numbers, **data)


def _column_values(values: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in values.items() if k in EDITABLE}
    if "turn_detection" in out:
        out["turn_detection"] = json.dumps(out["turn_detection"] or DEFAULT_TURN_DETECTION, sort_keys=True)
    if "knowledge_enabled" in out:
        out["knowledge_enabled"] = 1 if out["knowledge_enabled"] else 0
    return out


async def _numbers_of(db: Database, tenant_ids: list[str]) -> dict[str, list[str]]:
    if not tenant_ids:
        return {}
    rows = await db.fetch_all(
        sa.select(tenant_numbers)
        .where(tenant_numbers.c.tenant_id.in_(tenant_ids))
        .order_by(tenant_numbers.c.tenant_id, tenant_numbers.c.position)
    )
    result: dict[str, list[str]] = {t: [] for t in tenant_ids}
    for row in rows:
        result[row._mapping["tenant_id"]].append(row._mapping["phone_number"])
    return result


async def _claim_numbers(db: Database, tenant_id: str, numbers: list[str]) -> None:
    """Make `numbers` exactly the tenant's numbers; NumberTaken if another tenant holds any of them."""
    if numbers:
        rows = await db.fetch_all(
            sa.select(tenant_numbers.c.phone_number).where(
                tenant_numbers.c.phone_number.in_(numbers), tenant_numbers.c.tenant_id != tenant_id
            )
        )
        taken = sorted(r._mapping["phone_number"] for r in rows)
        if taken:
            raise NumberTaken(taken)
    await db.execute(tenant_numbers.delete().where(tenant_numbers.c.tenant_id == tenant_id))
    for position, number in enumerate(numbers):
        await db.execute(tenant_numbers.insert().values(phone_number=number, tenant_id=tenant_id, position=position))


async def create_tenant(db: Database, *, phone_numbers: list[str], **values: Any) -> Tenant:
    tenant_id = new_id("tnt")
    stamp = now()
    row = {
        "greeting": None,
        "voice": None,
        "model": None,
        "turn_detection": DEFAULT_TURN_DETECTION,
        "knowledge_enabled": False,
        "max_call_s": None,
        "audio_format": None,
        **values,
    }
    async with write_transaction(db):
        await db.execute(
            tenants.insert().values(id=tenant_id, created_at=stamp, updated_at=stamp, **_column_values(row))
        )
        await _claim_numbers(db, tenant_id, phone_numbers)
    found = await get_tenant(db, tenant_id)
    assert found is not None
    return found


async def update_tenant(
    db: Database, tenant_id: str, *, phone_numbers: list[str] | None = None, **values: Any
) -> Tenant | None:
    """Change the given fields (None for a nullable field clears it); None when the tenant does not exist."""
    async with write_transaction(db):
        exists = await db.fetch_val(sa.select(tenants.c.id).where(tenants.c.id == tenant_id))
        if exists is None:
            return None
        changes = _column_values(values)
        await db.execute(tenants.update().where(tenants.c.id == tenant_id).values(updated_at=now(), **changes))
        if phone_numbers is not None:
            await _claim_numbers(db, tenant_id, phone_numbers)
    return await get_tenant(db, tenant_id)


async def get_tenant(db: Database, tenant_id: str) -> Tenant | None:
    row = await db.fetch_one(sa.select(tenants).where(tenants.c.id == tenant_id))
    if row is None:
        return None
    return _tenant(row, (await _numbers_of(db, [tenant_id]))[tenant_id])


async def tenant_for_number(db: Database, phone_number: str) -> Tenant | None:
    """The tenant answering `phone_number` (the call's `To`), if any."""
    tenant_id = await db.fetch_val(
        sa.select(tenant_numbers.c.tenant_id).where(tenant_numbers.c.phone_number == phone_number)
    )
    return None if tenant_id is None else await get_tenant(db, str(tenant_id))


async def list_tenants(db: Database, *, limit: int, offset: int) -> tuple[list[Tenant], int]:
    total = await db.fetch_val(sa.select(sa.func.count()).select_from(tenants))
    rows = await db.fetch_all(
        sa.select(tenants).order_by(tenants.c.created_at.desc(), tenants.c.id).limit(limit).offset(offset)
    )
    numbers = await _numbers_of(db, [r._mapping["id"] for r in rows])
    return [_tenant(r, numbers[r._mapping["id"]]) for r in rows], int(total or 0)


async def delete_tenant(db: Database, tenant_id: str) -> bool:
    """Delete the tenant, its numbers and its knowledge (calls and transcripts stay, for the record)."""
    async with write_transaction(db):
        gone = await db.fetch_one(tenants.delete().where(tenants.c.id == tenant_id).returning(tenants.c.id))
        if gone is None:
            return False
        await db.execute(tenant_numbers.delete().where(tenant_numbers.c.tenant_id == tenant_id))
        await delete_all_of_tenant(db, tenant_id)
    return True
