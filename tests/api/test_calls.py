"""GET /api/calls: filters (tenant, status incl. `live`, since/until) and paging, on SQLite and PostgreSQL.

The query function is checked on both backends directly; the route (validation, the page shape, admin only) on
an in-process app per backend.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from databases import Database

from quart_app.db import calls
from quart_app.db.tables import calls as calls_table
from tests.support.users import make_user

DAY = 86400.0
BASE = datetime(2024, 5, 1, tzinfo=UTC).timestamp()


async def _seed(db: Database) -> None:
    """Six calls over six days: tenants A and B, Twilio statuses, one stream live now and one that ended.

    CA0 (day 0, A, completed)  CA1 (day 1, A, completed, relay ended)  CA2 (day 2, B, busy)
    CA3 (day 3, A, in-progress, relay live)  CA4 (day 4, B, in-progress, relay live)  CA5 (day 5, no tenant, ringing)
    """
    spec = [
        ("CA0", "tnt_a", "completed"),
        ("CA1", "tnt_a", "completed"),
        ("CA2", "tnt_b", "busy"),
        ("CA3", "tnt_a", "in-progress"),
        ("CA4", "tnt_b", "in-progress"),
        ("CA5", None, "ringing"),
    ]
    for day, (sid, tenant, status) in enumerate(spec):
        await calls.open_call(db, call_sid=sid, tenant_id=tenant, from_number="+15550000000", to_number=None)
        await calls.record_status(db, call_sid=sid, status=status, sequence=day)
        if sid in ("CA1", "CA3", "CA4"):
            await calls.relay_started(
                db,
                call_sid=sid,
                stream_sid="MZ" + sid,
                tenant_id=tenant,
                from_number=None,
                to_number=None,
                account_sid=None,
                started_at=BASE + day * DAY,
            )
        if sid == "CA1":
            await calls.relay_ended(db, sid, end_reason="caller_hung_up", ended_at=BASE + day * DAY + 60)
        # Known on day N, updated in the same order (the list is newest update first).
        stamp = BASE + day * DAY
        await db.execute(
            calls_table.update().where(calls_table.c.call_sid == sid).values(created_at=stamp, updated_at=stamp + 10)
        )


def _sids(rows: list[Any]) -> list[str]:
    return [row.call_sid for row in rows]


async def test_list_calls_filters_and_pages(db: Database) -> None:
    await _seed(db)
    rows, total = await calls.list_calls(db)
    assert _sids(rows) == ["CA5", "CA4", "CA3", "CA2", "CA1", "CA0"] and total == 6

    rows, total = await calls.list_calls(db, tenant_id="tnt_a")
    assert _sids(rows) == ["CA3", "CA1", "CA0"] and total == 3
    rows, total = await calls.list_calls(db, tenant_id="tnt_nobody")
    assert rows == [] and total == 0

    # `live`: the relay holds the stream now (CA1's relay ended; CA5 never had one).
    rows, total = await calls.list_calls(db, status="live")
    assert _sids(rows) == ["CA4", "CA3"] and total == 2
    rows, total = await calls.list_calls(db, status="live", tenant_id="tnt_b")
    assert _sids(rows) == ["CA4"] and total == 1
    rows, total = await calls.list_calls(db, status="completed")
    assert _sids(rows) == ["CA1", "CA0"] and total == 2

    # since inclusive, until exclusive, on when the call was first known.
    rows, total = await calls.list_calls(db, since=BASE + 2 * DAY, until=BASE + 4 * DAY)
    assert _sids(rows) == ["CA3", "CA2"] and total == 2
    rows, total = await calls.list_calls(db, since=BASE + 4 * DAY)
    assert _sids(rows) == ["CA5", "CA4"] and total == 2

    # Pages: the total counts every match whatever the page.
    first, total = await calls.list_calls(db, limit=4)
    second, total_again = await calls.list_calls(db, limit=4, offset=4)
    assert _sids(first) == ["CA5", "CA4", "CA3", "CA2"] and _sids(second) == ["CA1", "CA0"]
    assert total == total_again == 6
    beyond, total = await calls.list_calls(db, limit=4, offset=8)
    assert beyond == [] and total == 6


async def test_api_calls_filters_pages_and_validates(make_app, backend_env: dict[str, str]) -> None:
    async with make_app(**backend_env) as (app, client):
        await _seed(app.extensions["resources"].db())
        _, admin = await make_user(app, role="admin")
        _, user = await make_user(app)
        headers = {"x-api-key": admin}

        async def page(**params: Any) -> dict[str, Any]:
            response = await client.get("/api/calls", query_string=params, headers=headers)
            assert response.status_code == 200, await response.get_data(as_text=True)
            return await response.get_json()

        everything = await page()
        assert [c["call_sid"] for c in everything["items"]] == ["CA5", "CA4", "CA3", "CA2", "CA1", "CA0"]
        assert (everything["total"], everything["limit"], everything["offset"], everything["next_offset"]) == (
            6,
            50,
            0,
            None,
        )

        first = await page(limit=4)
        assert [c["call_sid"] for c in first["items"]] == ["CA5", "CA4", "CA3", "CA2"]
        assert first["total"] == 6 and first["next_offset"] == 4
        second = await page(limit=4, offset=first["next_offset"])
        assert [c["call_sid"] for c in second["items"]] == ["CA1", "CA0"] and second["next_offset"] is None

        live = await page(status="live")
        assert [(c["call_sid"], c["relay_status"]) for c in live["items"]] == [("CA4", "live"), ("CA3", "live")]
        tenant_a = await page(tenant_id="tnt_a", status="completed")
        assert [c["call_sid"] for c in tenant_a["items"]] == ["CA1", "CA0"] and tenant_a["total"] == 2

        # ISO 8601 with a zone, and without one (UTC).
        window = await page(since="2024-05-03T00:00:00+00:00", until="2024-05-05T00:00:00Z")
        assert [c["call_sid"] for c in window["items"]] == ["CA3", "CA2"]
        naive = await page(since="2024-05-03T00:00:00", until="2024-05-05T00:00:00")
        assert naive["items"] == window["items"]
        shifted = await page(since="2024-05-03T02:00:00+02:00")  # 2024-05-03T00:00Z
        assert [c["call_sid"] for c in shifted["items"]] == ["CA5", "CA4", "CA3", "CA2"]

        for bad in (
            {"since": "yesterday"},
            {"until": "2024-13-45"},
            {"since": "2024-05-05T00:00:00Z", "until": "2024-05-01T00:00:00Z"},
            {"status": "sleeping"},
            {"limit": 0},
            {"limit": 501},
            {"offset": -1},
            {"tenant_id": ""},
        ):
            response = await client.get("/api/calls", query_string=bad, headers=headers)
            assert response.status_code == 400, bad
            assert (await response.get_json())["error"] == "validation_error", bad

        assert (await client.get("/api/calls", headers={"x-api-key": user})).status_code == 403
        assert (await client.get("/api/calls", query_string={"status": "live"})).status_code == 401


async def test_calls_query_is_in_the_openapi_document(make_app) -> None:
    async with make_app() as (_, client):
        spec = await (await client.get("/openapi.json")).get_json()
    parameters = {p["name"] for p in spec["paths"]["/api/calls"]["get"]["parameters"]}
    assert {"tenant_id", "status", "since", "until", "limit", "offset"} <= parameters
