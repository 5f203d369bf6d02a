#!/usr/bin/env python3
"""The operator's database tool: create, upgrade, reset or check the schema; create users with API keys.

    python scripts/init_db.py                  interactive: shows the plan, asks before changing anything
    python scripts/init_db.py --safe           create or upgrade, never drop (Render's preDeployCommand)
    python scripts/init_db.py --force          drop this service's tables and re-create them (CI)
    python scripts/init_db.py --check          exit 0 when up to date, 1 when migrations are pending
    python scripts/init_db.py test-user --email a@example.com [--pin-stdin] [--name "A. Tester"]
    python scripts/init_db.py create-admin --email ops@example.com [--pin-stdin] [--name N] [--promote]
    python scripts/init_db.py create-admin --user-id usr_0123abcd --promote     promote one user, named by id

--pin-stdin asks for the PIN without echo on a terminal, or reads one line from a pipe; --pin PIN still
works but leaves the PIN in `ps` output and shell history.

The database comes from DATABASE_URL, read through Settings.from_env().
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import re
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

# Runnable as `python scripts/init_db.py`: the repo root, which holds quart_app, goes on the path first.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
from databases import Database  # noqa: E402

from quart_app.auth.pins import hash_pin, validate_pin  # noqa: E402
from quart_app.db import migrations, users  # noqa: E402
from quart_app.db.api_keys import create_api_key  # noqa: E402
from quart_app.db.database import (  # noqa: E402
    DatabaseUnavailable,
    connect,
    open_database,
    write_transaction,
)
from quart_app.settings import Settings, SettingsError, redact_url  # noqa: E402

T = TypeVar("T")

OK, FAILED, USAGE, UNREACHABLE, INTERRUPTED = 0, 1, 2, 3, 130
KEY_NAME = "init_db"  # how keys issued here appear in the user's key list

EXIT_CODES = """exit codes:
  0    success
  1    operation failed (duplicate user, aborted reset, migrations pending with --check)
  2    usage or configuration error
  3    database unreachable
  130  interrupted (Ctrl-C)"""

# RFC 5322 "dot-atom" local part and LDH domain labels: strict enough to catch typos, ASCII only.
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_TOP_LABEL = re.compile(r"[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59}")


class Failure(Exception):
    """Ends the command with a one-line message on stderr and the given exit code."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Status:
    current: int
    latest: int
    pending: list[migrations.Migration]
    tables: list[str]


# ---------------------------------------------------------------------------------------------- inputs


def normalize_email(raw: str) -> str:
    """Return the lowercased address, or raise ValueError saying what is wrong with it."""
    email = raw.strip()
    if not email or len(email) > 254 or email.count("@") != 1:
        raise ValueError(f"not an email address: {raw!r}")
    local, domain = email.split("@")
    if not local or len(local) > 64 or not _LOCAL_PART.fullmatch(local):
        raise ValueError(f"invalid part before @ in {raw!r}")
    labels = domain.split(".")
    if (
        len(labels) < 2
        or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels)
        or not _TOP_LABEL.fullmatch(labels[-1])
    ):
        raise ValueError(f"invalid domain in {raw!r} (expected something like example.com)")
    return email.lower()


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise Failure(str(exc), USAGE) from None


# -------------------------------------------------------------------------------------------- database


def location(url: str) -> str:
    """Where the database lives, for messages: host:port for PostgreSQL, the file for SQLite."""
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):
        return url.split(":///", 1)[-1] or ":memory:"
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port or 5432}"


def scrub(text: str, url: str) -> str:
    """One line, with the URL's password (if any) masked wherever a driver might have echoed it."""
    password = urlsplit(url).password
    if password:
        text = text.replace(password, "***")
    return " ".join(text.split())


@asynccontextmanager
async def opened(settings: Settings, connect_seconds: float) -> AsyncIterator[Database]:
    """A connected database, disconnected on the way out; unreachable -> Failure(..., UNREACHABLE)."""
    url = settings.database_url
    where = location(url)
    try:
        db = open_database(url, pool_size=2)
    except OSError as exc:  # e.g. the SQLite directory cannot be created
        raise Failure(scrub(f"database unreachable at {where}: {exc}", url), UNREACHABLE) from None
    try:
        async with asyncio.timeout(connect_seconds):
            await connect(db)
    except DatabaseUnavailable as exc:
        raise Failure(scrub(f"database unreachable at {where}: {exc}", url), UNREACHABLE) from None
    except TimeoutError:
        with suppress(Exception):
            await db.disconnect()
        raise Failure(f"database unreachable at {where}: no answer within {connect_seconds:g}s", UNREACHABLE) from None
    try:
        yield db
    finally:
        with suppress(Exception):
            await db.disconnect()


def run_with_db(settings: Settings, timeout: float, action: Callable[[Database], Awaitable[T]]) -> T:
    async def body() -> T:
        async with opened(settings, timeout) as db:
            return await action(db)

    return asyncio.run(body())


def owned_tables(tables: list[str]) -> list[str]:
    """The subset of `tables` that a reset drops (mirrors migrations.drop_all)."""
    owned = {"schema_migrations"}
    for migration in migrations.all_migrations():
        owned.update(getattr(migration.module, "TABLES", ()))
    return [t for t in tables if t in owned]


async def read_status(db: Database) -> Status:
    return Status(
        current=await migrations.current_version(db),
        latest=migrations.latest_version(),
        pending=await migrations.pending(db),
        tables=await migrations.existing_tables(db),
    )


async def upgrade(db: Database) -> None:
    """Apply what is missing, one migration at a time so a failure names its migration; never drops."""
    applied = []
    for migration in await migrations.pending(db):
        try:
            # Each step is its own transaction: a failed migration leaves the earlier ones applied.
            done = await migrations.upgrade(db, target=migration.version)
        except Exception as exc:
            reason = scrub(f"{type(exc).__name__}: {exc}", str(db.url))
            raise Failure(f"migration {migration.version} ({migration.name}) failed, not applied: {reason}") from None
        for step in done:  # empty when another instance applied it first
            print(f"applied migration {step.version}: {step.name}")
        applied.extend(done)
    current, latest = await migrations.current_version(db), migrations.latest_version()
    if applied:
        print(f"schema now at version {current}")
    else:
        print(f"schema already at version {current}")
    if current > latest:
        print(f"warning: database is at version {current}, newer than this code's latest ({latest})", file=sys.stderr)


async def reset(db: Database) -> None:
    """Drop this service's tables (in one transaction, so an interrupted drop changes nothing), then re-create."""
    async with write_transaction(db):
        dropped = await migrations.drop_all(db)
    print(f"dropped tables: {', '.join(dropped)}" if dropped else "no tables of this service to drop")
    await upgrade(db)


async def check(db: Database) -> int:
    status = await read_status(db)
    if status.pending:
        names = ", ".join(f"{m.version} {m.name}" for m in status.pending)
        print(f"pending: {len(status.pending)} migration(s) ({names}); at {status.current}, latest {status.latest}")
        return FAILED
    print(f"up to date: schema at version {status.current} (latest {status.latest})")
    return OK


# ----------------------------------------------------------------------------------------- interactive


def ask(prompt: str) -> str:
    """One line from the operator; end of input counts as an empty answer (which aborts)."""
    try:
        return input(prompt)
    except EOFError:
        print()
        return ""


def print_plan(settings: Settings, status: Status) -> None:
    pending = ", ".join(f"{m.version} {m.name}" for m in status.pending) or "none"
    droppable = owned_tables(status.tables)
    print(f"Database:          {redact_url(settings.database_url)}")
    print(f"Schema version:    {status.current} (latest {status.latest})")
    print(f"Pending:           {pending}")
    print(f"Existing tables:   {', '.join(status.tables) or 'none'}")
    print(f"A reset would drop: {', '.join(droppable) or 'nothing'}")
    print()
    print("  u  upgrade: apply pending migrations, keep all data (safe)")
    print("  r  reset:   DROP this service's tables, then re-create them (all data lost)")
    print("  q  quit:    change nothing")


def interactive(settings: Settings, timeout: float) -> int:
    # Prompts happen between event loops, not inside one: a blocking input() inside asyncio.run would
    # swallow the first Ctrl-C.
    status = run_with_db(settings, timeout, read_status)
    print_plan(settings, status)
    choice = ask("Choice [u/r/q]: ").strip().lower()
    if choice in ("u", "upgrade"):
        run_with_db(settings, timeout, upgrade)
        return OK
    if choice in ("r", "reset"):
        where = redact_url(settings.database_url)
        answer = ask(f"This destroys all data of this service in {where}. Type 'yes' to reset: ")
        if answer == "yes":
            run_with_db(settings, timeout, reset)
            return OK
    raise Failure("aborted: nothing changed")


# ------------------------------------------------------------------------------------------- accounts


PIN_ON_COMMAND_LINE = (
    "warning: --pin puts the PIN on the command line, where other users of this machine (ps, /proc) and your "
    "shell history can read it; prefer --pin-stdin"
)


@dataclass(frozen=True)
class AccountRequest:
    email: str | None
    name: str | None
    pin_hash: str | None
    role: str
    promote: bool
    user_id: str | None = None
    phone: str | None = None  # E.164


def read_pin(args: argparse.Namespace) -> str | None:
    """The PIN to set, if any: from --pin (with a warning), or --pin-stdin (asked without echo on a terminal)."""
    if args.pin is not None:
        print(PIN_ON_COMMAND_LINE, file=sys.stderr)
        return str(args.pin)
    if not args.pin_stdin:
        return None
    if sys.stdin.isatty():
        try:
            first = getpass.getpass("PIN (4 to 8 digits, not shown): ")
            second = getpass.getpass("Repeat the PIN: ")
        except EOFError:
            raise Failure("no PIN entered; nothing changed", USAGE) from None
        if first != second:
            raise Failure("the two PINs differ; nothing changed", USAGE)
        return first
    return sys.stdin.readline().rstrip("\r\n")


def account_request(args: argparse.Namespace) -> AccountRequest:
    """Validate everything before the database is touched, so bad input creates nothing."""
    user_id = getattr(args, "user_id", None)
    promote = getattr(args, "promote", False)
    if args.email is None and user_id is None:
        raise Failure("pass --email (or, to promote an existing user, --user-id with --promote)", USAGE)
    if user_id is not None and not promote:
        raise Failure("--user-id names an existing user to promote: pass --promote too", USAGE)
    try:
        email = normalize_email(args.email) if args.email is not None else None
        phone = users.normalize_phone(args.phone) if getattr(args, "phone", None) else None
        pin = read_pin(args)
        if pin is not None:
            validate_pin(pin)
    except ValueError as exc:
        raise Failure(str(exc), USAGE) from None
    name = (args.name or "").strip() or None
    pin_hash = hash_pin(pin) if pin is not None else None
    return AccountRequest(email, name, pin_hash, args.role, promote, user_id, phone)


def _is_duplicate(exc: Exception) -> bool:
    return isinstance(exc, (asyncpg.UniqueViolationError, sqlite3.IntegrityError))


def describe(user: users.User) -> str:
    login = f", Auth0 identity {user.auth0_sub}" if user.auth0_sub else ""
    return f"{user.id} <{user.email or 'no e-mail'}> role {user.role}{login}"


async def user_to_promote(db: Database, req: AccountRequest) -> users.User | None:
    """The one existing user the request names, or None when a new one is to be created.

    Promotion must name its user unambiguously: by id, or by an e-mail exactly one user has, and not one
    that came from an Auth0 sign-in (before e-mails were only taken when verified, any caller could claim
    any address there), since that would hand admin to whoever claimed it.
    """
    if req.user_id is not None:
        user = await users.get_user(db, req.user_id)
        if user is None:
            raise Failure(f"no user with id {req.user_id}; nothing changed")
        if req.email is not None and (user.email or "").lower() != req.email:
            raise Failure(f"user {describe(user)} does not have the e-mail {req.email}; nothing changed")
        return user
    assert req.email is not None
    found = await users.find_users_by_email(db, req.email)
    if not found:
        return None
    if len(found) > 1:
        listing = "; ".join(describe(u) for u in found)
        raise Failure(f"{len(found)} users have the e-mail {req.email}: {listing}. Name one with --user-id")
    existing = found[0]
    if not (req.role == "admin" and req.promote):
        if req.role == "admin" and not existing.is_admin:
            raise Failure(
                f"{req.email} already exists ({describe(existing)}); pass --promote to make it an admin "
                "and issue a new API key (nothing changed)"
            )
        hint = "; pass --promote to issue a new API key" if req.role == "admin" else ""
        raise Failure(f"a user with email {req.email} already exists ({existing.id}); nothing created{hint}")
    if existing.auth0_sub is not None:
        raise Failure(
            f"{req.email} belongs to {describe(existing)}, whose e-mail came from an Auth0 sign-in; check that "
            f"this is the right person, then promote it by id: --user-id {existing.id} --promote (nothing changed)"
        )
    return existing


async def create_account(db: Database, req: AccountRequest) -> None:
    await upgrade(db)
    existing = await user_to_promote(db, req)
    if req.phone is not None:
        holder = await users.get_user_by_phone(db, req.phone)
        if holder is not None and (existing is None or holder.id != existing.id):
            raise Failure(f"the phone number {req.phone} already belongs to {describe(holder)}; nothing changed")
    try:
        async with write_transaction(db):
            if existing is None:
                user = await users.create_user(
                    db, email=req.email, name=req.name, role=req.role, pin_hash=req.pin_hash, phone=req.phone
                )
                action = "created"
            else:
                await users.set_role(db, existing.id, "admin")
                if req.pin_hash is not None:
                    await users.set_pin_hash(db, existing.id, req.pin_hash)
                if req.phone is not None:
                    await users.set_phone(db, existing.id, req.phone)
                user = existing
                action = "promoted to admin:"
            _, plaintext = await create_api_key(db, user.id, name=KEY_NAME)
    except Exception as exc:
        if _is_duplicate(exc):  # lost a race with another writer between the check and the insert
            taken = f"email {req.email}" + (f" or phone {req.phone}" if req.phone else "")
            raise Failure(f"a user with {taken} already exists; nothing created") from None
        raise

    pin = "PIN set" if req.pin_hash is not None else "no PIN"
    if existing is not None and req.pin_hash is None:
        pin = "PIN unchanged"
    phone = f", phone {req.phone}" if req.phone else ""
    print(f"{action} user {user.id} <{user.email or 'no e-mail'}> role {req.role}, {pin}{phone}")
    print(f"API key (shown only now, store it safely): {plaintext}")


# ------------------------------------------------------------------------------------------------ main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="init_db.py",
        description="Create, upgrade, reset or check the database schema (DATABASE_URL), and create users. "
        "Without a flag it shows the plan and asks.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--safe", action="store_true", help="create or upgrade the schema; never drops (idempotent)")
    mode.add_argument(
        "--force", action="store_true", help="non-interactive reset: drop this service's tables, re-run all migrations"
    )
    mode.add_argument("--check", action="store_true", help="exit 0 if the schema is current, 1 if migrations pend")
    parser.add_argument(
        "--connect-timeout", type=float, default=20.0, metavar="SECONDS", help="give up connecting after this long"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command, role, summary in (
        ("test-user", "user", "ensure the schema, create a user (role user) and print a new API key once"),
        ("create-admin", "admin", "ensure the schema, create an admin and print a new API key once"),
    ):
        sub = commands.add_parser(
            command,
            help=summary,
            description=summary,
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.add_argument(
            "--email",
            required=role != "admin",
            help="the user's email address (stored lowercased)" + (" or --user-id" if role == "admin" else ""),
        )
        pin = sub.add_mutually_exclusive_group()
        pin.add_argument(
            "--pin-stdin",
            action="store_true",
            help="read the PIN (4 to 8 digits) from standard input: asked twice, without echo, on a terminal",
        )
        pin.add_argument(
            "--pin",
            help="the PIN on the command line (visible to other users in ps and kept in shell history; "
            "prefer --pin-stdin). Without either the user has no PIN",
        )
        sub.add_argument("--name", help="display name (new users only)")
        sub.add_argument(
            "--phone",
            help="the user's phone number in E.164 (+15551234567): they may sign in with it and their PIN, and "
            "are recognised when they call the assistant from it",
        )
        if role == "admin":
            sub.add_argument(
                "--promote",
                action="store_true",
                help="make an existing user an admin and issue a new key: the one with --user-id, or the only "
                "one with --email (not one created by an Auth0 sign-in: name that one by id)",
            )
            sub.add_argument("--user-id", help="with --promote: the existing user to promote (usr_...)")
        sub.set_defaults(role=role)
    return parser


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    flagged = args.safe or args.force or args.check
    if args.command and flagged:
        parser.error("--safe, --force and --check cannot be combined with a subcommand")
    if args.connect_timeout <= 0:
        parser.error("--connect-timeout must be positive")
    if args.command:
        request = account_request(args)
        settings = load_settings()
        run_with_db(settings, args.connect_timeout, lambda db: create_account(db, request))
        return OK
    if not flagged and not sys.stdin.isatty():
        raise Failure(
            "stdin is not a terminal, so there is no one to confirm: pass --safe (create or upgrade, never "
            "drops) or --force (drop this service's tables and re-create them)",
            USAGE,
        )
    settings = load_settings()
    if args.safe:
        run_with_db(settings, args.connect_timeout, upgrade)
        return OK
    if args.force:
        run_with_db(settings, args.connect_timeout, reset)
        return OK
    if args.check:
        return run_with_db(settings, args.connect_timeout, check)
    return interactive(settings, args.connect_timeout)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on a usage error
    try:
        return run(args, parser)
    except Failure as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
