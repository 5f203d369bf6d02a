"""scripts/init_db.py, run as a real subprocess against an empty database on each backend."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from databases import Database

from quart_app.auth.pins import verify_pin
from quart_app.db import migrations, users
from quart_app.db.api_keys import find_active_key
from quart_app.db.database import connect, dialect, open_database
from quart_app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = "scripts/init_db.py"
KEY_LINE = re.compile(r"^API key \(shown only now, store it safely\): (\S+)$", re.MULTILINE)
UNREACHABLE_URL = "postgresql://postgres:s3cretpw@127.0.0.1:1/x"


# --------------------------------------------------------------------------------------------- helpers


def script_env(db_url: str) -> dict[str, str]:
    """A clean environment: only DATABASE_URL and APP_ENV, no PYTHONPATH (the script finds quart_app itself)."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update({"APP_ENV": "test", "DATABASE_URL": db_url, "PYTHONUNBUFFERED": "1"})
    return env


def _run(db_url: str, args: tuple[str, ...], stdin_text: str | None) -> subprocess.CompletedProcess[str]:
    # stdin is always explicit: inheriting pytest's fd 0 could hand the script a real terminal.
    return subprocess.run(
        [sys.executable, SCRIPT, *args],
        cwd=ROOT,
        env=script_env(db_url),
        input=stdin_text,
        stdin=subprocess.DEVNULL if stdin_text is None else None,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def run(db_url: str, *args: str, stdin_text: str | None = None) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(_run, db_url, args, stdin_text)


def _run_tty(db_url: str, answers: str) -> subprocess.CompletedProcess[str]:
    """Run with stdin on a pseudo-terminal (a real TTY to the script) and type `answers` into it."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, SCRIPT],
            cwd=ROOT,
            env=script_env(db_url),
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.close(slave)
        slave = -1
        os.write(master, answers.encode())  # the terminal's line discipline holds it until input() reads
        out, err = proc.communicate(timeout=30)
    finally:
        os.close(master)
        if slave != -1:
            os.close(slave)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


async def run_tty(db_url: str, answers: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(_run_tty, db_url, answers)


@asynccontextmanager
async def opened(db_url: str) -> AsyncIterator[Database]:
    db = open_database(Settings.from_env({"DATABASE_URL": db_url}).database_url)
    await connect(db)
    try:
        yield db
    finally:
        await db.disconnect()


async def schema(db_url: str) -> tuple[int, set[str]]:
    """(current schema version, this service's tables present)."""
    async with opened(db_url) as db:
        return await migrations.current_version(db), set(await migrations.existing_tables(db))


def service_tables() -> set[str]:
    tables = {"schema_migrations"}
    for migration in migrations.all_migrations():
        tables.update(getattr(migration.module, "TABLES", ()))
    return tables


async def expected_tables(db: Database) -> set[str]:
    # The FTS table exists only on SQLite; PostgreSQL keeps the search column on transcriptions itself.
    tables = service_tables()
    return tables if dialect(db) == "sqlite" else {t for t in tables if not t.endswith("_fts")}  # FTS5: SQLite only


async def count(db_url: str, table: str) -> int:
    async with opened(db_url) as db:
        return int(await db.fetch_val(f"SELECT COUNT(*) FROM {table}"))


async def insert_transcription(db: Database, transcript: str) -> None:
    await db.execute(
        "INSERT INTO transcriptions (id, user_id, provider, transcript, source, created_at) "
        "VALUES (:id, :user_id, 'deepgram', :transcript, 'upload', 1700000000.0)",
        {"id": "tr_old", "user_id": "usr_someone", "transcript": transcript},
    )


def issued_key(result: subprocess.CompletedProcess[str]) -> str:
    keys = KEY_LINE.findall(result.stdout)
    assert len(keys) == 1, result.stdout
    assert result.stdout.count(keys[0]) == 1 and keys[0] not in result.stderr
    return keys[0]


def latest() -> int:
    return migrations.latest_version()


# --------------------------------------------------------------------------------------- schema modes


async def test_help_lists_modes_and_commands(tmp_path: Path) -> None:
    result = await run(f"sqlite+aiosqlite:///{tmp_path}/unused.db", "--help")
    assert result.returncode == 0
    for word in ("--safe", "--force", "--check", "test-user", "create-admin", "exit codes"):
        assert word in result.stdout


async def test_safe_creates_every_table_and_is_idempotent(db_url: str) -> None:
    first = await run(db_url, "--safe")
    assert first.returncode == 0, first.stderr
    for migration in migrations.all_migrations():
        assert f"applied migration {migration.version}: {migration.name}" in first.stdout
    async with opened(db_url) as db:
        assert await migrations.current_version(db) == latest()
        assert await expected_tables(db) <= set(await migrations.existing_tables(db))

    second = await run(db_url, "--safe")
    assert second.returncode == 0, second.stderr
    assert "applied" not in second.stdout
    assert f"already at version {latest()}" in second.stdout


async def test_check_exit_codes(db_url: str) -> None:
    pending = await run(db_url, "--check")
    assert pending.returncode == 1
    assert "pending" in pending.stdout and "1 initial" in pending.stdout

    assert (await run(db_url, "--safe")).returncode == 0
    current = await run(db_url, "--check")
    assert current.returncode == 0, current.stderr
    assert f"up to date: schema at version {latest()}" in current.stdout


async def test_safe_upgrades_version_1_and_keeps_rows_searchable(db_url: str) -> None:
    async with opened(db_url) as db:
        await migrations.upgrade(db, target=1)
        await insert_transcription(db, "the quarterly budget meeting ran long")

    check = await run(db_url, "--check")
    assert check.returncode == 1
    assert "1 initial" not in check.stdout and "2 transcript_search" in check.stdout

    result = await run(db_url, "--safe")
    assert result.returncode == 0, result.stderr
    assert "applied migration 1:" not in result.stdout
    assert "applied migration 2: transcript_search" in result.stdout

    async with opened(db_url) as db:
        assert await migrations.current_version(db) == latest()
        assert await db.fetch_val("SELECT transcript FROM transcriptions WHERE id = 'tr_old'") == (
            "the quarterly budget meeting ran long"
        )
        if dialect(db) == "sqlite":
            found = await db.fetch_all(
                "SELECT t.id FROM transcriptions t JOIN transcriptions_fts f ON f.rowid = t.rowid "
                "WHERE transcriptions_fts MATCH :q",
                {"q": "budget"},
            )
        else:
            found = await db.fetch_all(
                "SELECT id FROM transcriptions WHERE search @@ plainto_tsquery('simple', :q)", {"q": "budget"}
            )
        assert [row[0] for row in found] == ["tr_old"]


async def test_failed_migration_is_named_and_leaves_the_earlier_version(db_url: str) -> None:
    async with opened(db_url) as db:
        await migrations.upgrade(db, target=1)
        # Something already in the way of migration 2 (as a hand-made change in production might be).
        if dialect(db) == "sqlite":
            await db.execute("CREATE TABLE transcriptions_fts (x TEXT)")
        else:
            await db.execute("ALTER TABLE transcriptions ADD COLUMN search TEXT")

    result = await run(db_url, "--safe")
    assert result.returncode == 1
    assert "migration 2 (transcript_search) failed" in result.stderr
    assert "Traceback" not in result.stderr
    assert (await schema(db_url))[0] == 1


async def test_force_resets_only_this_services_tables(db_url: str) -> None:
    assert (await run(db_url, "test-user", "--email", "gone@example.com")).returncode == 0
    async with opened(db_url) as db:
        await db.execute("CREATE TABLE other_app_data (id INTEGER PRIMARY KEY)")
        await db.execute("INSERT INTO other_app_data (id) VALUES (7)")

    result = await run(db_url, "--force")
    assert result.returncode == 0, result.stderr
    assert "dropped tables:" in result.stdout and "users" in result.stdout
    async with opened(db_url) as db:
        assert await migrations.current_version(db) == latest()
        assert await expected_tables(db) <= set(await migrations.existing_tables(db))
        assert await db.fetch_val("SELECT COUNT(*) FROM users") == 0
        assert await db.fetch_val("SELECT COUNT(*) FROM api_keys") == 0
        assert await db.fetch_val("SELECT id FROM other_app_data") == 7


async def test_non_tty_without_a_flag_refuses_and_changes_nothing(db_url: str) -> None:
    result = await run(db_url)
    assert result.returncode == 2
    assert "--safe" in result.stderr and "--force" in result.stderr
    assert await schema(db_url) == (0, set())


async def test_mode_flag_with_subcommand_is_a_usage_error(tmp_path: Path) -> None:
    result = await run(f"sqlite+aiosqlite:///{tmp_path}/t.db", "--force", "test-user", "--email", "a@example.com")
    assert result.returncode == 2
    assert not (tmp_path / "t.db").exists()


async def test_bad_configuration_exits_2(tmp_path: Path) -> None:
    result = await run("mysql://root@127.0.0.1/x", "--safe")
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr and "Traceback" not in result.stderr


# ---------------------------------------------------------------------------------------- interactive


async def test_interactive_shows_the_plan_and_upgrades(db_url: str) -> None:
    async with opened(db_url) as db:
        await migrations.upgrade(db, target=1)

    result = await run_tty(db_url, "u\n")
    assert result.returncode == 0, result.stderr
    assert "Schema version:    1 (latest" in result.stdout
    assert "2 transcript_search" in result.stdout
    assert "users" in result.stdout  # existing tables are listed
    assert "applied migration 2: transcript_search" in result.stdout
    assert (await schema(db_url))[0] == latest()


async def test_interactive_reset_needs_exactly_yes(db_url: str) -> None:
    assert (await run(db_url, "test-user", "--email", "kept@example.com")).returncode == 0

    declined = await run_tty(db_url, "r\nno\n")
    assert declined.returncode == 1, (declined.stdout, declined.stderr)
    assert "Type 'yes' to reset" in declined.stdout
    assert "aborted: nothing changed" in declined.stderr
    assert await count(db_url, "users") == 1

    confirmed = await run_tty(db_url, "r\nyes\n")
    assert confirmed.returncode == 0, confirmed.stderr
    assert "dropped tables:" in confirmed.stdout
    assert await count(db_url, "users") == 0
    assert (await schema(db_url))[0] == latest()


# "\x04" is Ctrl-D at the start of a line: end of input on a terminal.
@pytest.mark.parametrize("answers", ["r\nYES\n", "r\n yes\n", "r\n\n", "r\n\x04", "q\n", "\x04", "x\n"])
async def test_interactive_anything_but_yes_aborts(tmp_path: Path, answers: str) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path}/t.db"
    assert (await run(db_url, "test-user", "--email", "kept@example.com")).returncode == 0
    result = await run_tty(db_url, answers)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "aborted: nothing changed" in result.stderr
    assert await count(db_url, "users") == 1


def _interrupt_at_prompt(db_url: str) -> tuple[int, str]:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, SCRIPT],
        cwd=ROOT,
        env=script_env(db_url),
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    os.close(slave)
    try:
        seen = b""
        deadline = time.monotonic() + 30
        while b"Choice [u/r/q]:" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 4096)  # type: ignore[union-attr]
                if not chunk:
                    break
                seen += chunk
        assert b"Choice [u/r/q]:" in seen, seen
        # A SIGINT landing between the prompt's flush and the blocking read is only handled after the read
        # returns, so press Ctrl-C again if the first one is not acted on (as a person would).
        for _ in range(10):
            proc.send_signal(signal.SIGINT)
            try:
                _, err = proc.communicate(timeout=2)
                return proc.returncode, err.decode()
            except subprocess.TimeoutExpired:
                continue
        raise AssertionError("the script ignored Ctrl-C")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()


async def test_ctrl_c_at_the_prompt_exits_130(tmp_path: Path) -> None:
    code, err = await asyncio.to_thread(_interrupt_at_prompt, f"sqlite+aiosqlite:///{tmp_path}/t.db")
    assert code == 130
    assert "interrupted" in err and "Traceback" not in err


# ------------------------------------------------------------------------------------------- accounts


async def test_test_user_prints_a_working_key_once(db_url: str) -> None:
    pin = "86420975"
    result = await run(db_url, "test-user", "--email", "Tester@Example.com", "--pin", pin, "--name", "Tess")
    assert result.returncode == 0, result.stderr
    key = issued_key(result)
    assert pin not in result.stdout + result.stderr
    assert "scrypt$" not in result.stdout + result.stderr

    async with opened(db_url) as db:
        user = await users.get_user_by_email(db, "tester@example.com")
        assert user is not None
        assert (user.role, user.name) == ("user", "Tess")
        record = await find_active_key(db, key)
        assert record is not None and record.user_id == user.id
        assert user.pin_hash is not None and user.pin_hash.startswith("scrypt$16384$8$1$")
        assert verify_pin(pin, user.pin_hash)
        assert not verify_pin("86420976", user.pin_hash)
        assert await migrations.current_version(db) == latest()  # the schema was ensured first


async def test_test_user_without_pin_has_no_pin(db_url: str) -> None:
    result = await run(db_url, "test-user", "--email", "nopin@example.com")
    assert result.returncode == 0, result.stderr
    issued_key(result)
    async with opened(db_url) as db:
        user = await users.get_user_by_email(db, "nopin@example.com")
        assert user is not None and user.pin_hash is None


async def test_duplicate_email_exits_1_and_creates_nothing(db_url: str) -> None:
    assert (await run(db_url, "test-user", "--email", "dup@example.com")).returncode == 0
    again = await run(db_url, "test-user", "--email", "DUP@example.com", "--pin", "1234")
    assert again.returncode == 1
    assert "already exists" in again.stderr
    assert not KEY_LINE.search(again.stdout)
    assert await count(db_url, "users") == 1
    assert await count(db_url, "api_keys") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--email", "pin@example.com", "--pin", "12"), "4 to 8 digits"),
        (("--email", "pin@example.com", "--pin", "12ab"), "4 to 8 digits"),
        (("--email", "pin@example.com", "--pin", "123456789"), "4 to 8 digits"),
        (("--email", "not-an-email"), "email"),
        (("--email", "a@b"), "domain"),
        (("--email", "a b@example.com"), "before @"),
    ],
)
async def test_bad_input_exits_2_before_touching_the_database(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    # Input is validated before connecting, so the database file is not even created.
    result = await run(f"sqlite+aiosqlite:///{tmp_path}/t.db", "test-user", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "t.db").exists()


async def test_bad_pin_creates_nothing(db_url: str) -> None:
    assert (await run(db_url, "--safe")).returncode == 0
    result = await run(db_url, "create-admin", "--email", "pin@example.com", "--pin", "12x4")
    assert result.returncode == 2
    assert await count(db_url, "users") == 0


async def test_create_admin_and_promote(db_url: str) -> None:
    admin = await run(db_url, "create-admin", "--email", "ops@example.com")
    assert admin.returncode == 0, admin.stderr
    admin_key = issued_key(admin)

    assert (await run(db_url, "test-user", "--email", "later-admin@example.com")).returncode == 0
    refused = await run(db_url, "create-admin", "--email", "later-admin@example.com")
    assert refused.returncode == 1
    assert "--promote" in refused.stderr

    promoted = await run(db_url, "create-admin", "--email", "later-admin@example.com", "--promote", "--pin", "5555")
    assert promoted.returncode == 0, promoted.stderr
    new_key = issued_key(promoted)

    async with opened(db_url) as db:
        ops = await users.get_user_by_email(db, "ops@example.com")
        later = await users.get_user_by_email(db, "later-admin@example.com")
        assert ops is not None and ops.role == "admin" and ops.pin_hash is None
        assert later is not None and later.role == "admin"
        assert later.pin_hash is not None and verify_pin("5555", later.pin_hash)
        assert (await find_active_key(db, admin_key)).user_id == ops.id  # type: ignore[union-attr]
        assert (await find_active_key(db, new_key)).user_id == later.id  # type: ignore[union-attr]
        assert await db.fetch_val("SELECT COUNT(*) FROM users") == 2


# ------------------------------------------------------------------------------------------ unreachable


@pytest.mark.parametrize("args", [("--safe",), ("--check",), ("test-user", "--email", "x@example.com")])
async def test_unreachable_database_exits_3_without_the_password(args: tuple[str, ...]) -> None:
    result = await run(UNREACHABLE_URL, *args)
    assert result.returncode == 3
    output = result.stdout + result.stderr
    assert "127.0.0.1:1" in result.stderr
    assert "s3cretpw" not in output
    assert "Traceback" not in output
    assert len(result.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------------- promotion names one user


async def test_promote_by_user_id(db_url: str) -> None:
    assert (await run(db_url, "test-user", "--email", "by-id@example.com")).returncode == 0
    async with opened(db_url) as db:
        user = await users.get_user_by_email(db, "by-id@example.com")
    assert user is not None

    missing = await run(db_url, "create-admin", "--user-id", "usr_nobody", "--promote")
    assert missing.returncode == 1 and "no user with id usr_nobody" in missing.stderr
    no_flag = await run(db_url, "create-admin", "--user-id", user.id)
    assert no_flag.returncode == 2 and "--promote" in no_flag.stderr
    mismatch = await run(db_url, "create-admin", "--user-id", user.id, "--email", "other@example.com", "--promote")
    assert mismatch.returncode == 1 and "does not have the e-mail" in mismatch.stderr

    promoted = await run(db_url, "create-admin", "--user-id", user.id, "--promote")
    assert promoted.returncode == 0, promoted.stderr
    key = issued_key(promoted)
    assert f"promoted to admin: user {user.id} <by-id@example.com>" in promoted.stdout
    async with opened(db_url) as db:
        after = await users.get_user(db, user.id)
        assert after is not None and after.role == "admin"
        assert (await find_active_key(db, key)).user_id == user.id  # type: ignore[union-attr]


async def test_promote_by_email_refuses_an_ambiguous_address(db_url: str) -> None:
    assert (await run(db_url, "--safe")).returncode == 0
    async with opened(db_url) as db:
        # Rows written before e-mails were normalized can differ only in case.
        for user_id, email in (("usr_aaaa", "Twin@Example.com"), ("usr_bbbb", "twin@example.com")):
            await db.execute(
                "INSERT INTO users (id, email, role, created_at, updated_at) VALUES (:id, :email, 'user', 1, 1)",
                {"id": user_id, "email": email},
            )
    result = await run(db_url, "create-admin", "--email", "twin@example.com", "--promote")
    assert result.returncode == 1
    assert "2 users have the e-mail twin@example.com" in result.stderr
    assert "usr_aaaa" in result.stderr and "usr_bbbb" in result.stderr and "--user-id" in result.stderr
    assert not KEY_LINE.search(result.stdout)
    async with opened(db_url) as db:
        assert await db.fetch_val("SELECT COUNT(*) FROM users WHERE role = 'admin'") == 0


async def test_promote_by_email_refuses_a_user_from_an_auth0_sign_in(db_url: str) -> None:
    """Such an e-mail may have come from an unverified claim: whoever wrote it would become admin."""
    assert (await run(db_url, "--safe")).returncode == 0
    async with opened(db_url) as db:
        squatter = await users.create_user(db, email="boss@example.com", auth0_sub="auth0|someone")
    result = await run(db_url, "create-admin", "--email", "boss@example.com", "--promote")
    assert result.returncode == 1
    assert "auth0|someone" in result.stderr and f"--user-id {squatter.id}" in result.stderr
    async with opened(db_url) as db:
        assert (await users.get_user(db, squatter.id)).role == "user"  # type: ignore[union-attr]
        assert await db.fetch_val("SELECT COUNT(*) FROM api_keys") == 0


# --------------------------------------------------------------------------- the PIN off the command line


async def test_pin_from_stdin_is_not_on_the_command_line(db_url: str) -> None:
    pin = "24681357"
    result = await run(db_url, "test-user", "--email", "stdin@example.com", "--pin-stdin", stdin_text=pin + "\n")
    assert result.returncode == 0, result.stderr
    issued_key(result)
    assert pin not in result.stdout + result.stderr
    assert "warning" not in result.stderr
    async with opened(db_url) as db:
        user = await users.get_user_by_email(db, "stdin@example.com")
        assert user is not None and user.pin_hash is not None and verify_pin(pin, user.pin_hash)


async def test_pin_on_the_command_line_still_works_with_a_warning(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path}/t.db"
    result = await run(db_url, "test-user", "--email", "argv@example.com", "--pin", "1357")
    assert result.returncode == 0, result.stderr
    assert "warning: --pin" in result.stderr and "--pin-stdin" in result.stderr
    both = await run(db_url, "test-user", "--email", "both@example.com", "--pin", "1357", "--pin-stdin")
    assert both.returncode == 2


async def test_bad_pin_from_stdin_creates_nothing(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path}/t.db"
    result = await run(db_url, "test-user", "--email", "bad@example.com", "--pin-stdin", stdin_text="12\n")
    assert result.returncode == 2 and "4 to 8 digits" in result.stderr
    assert not (tmp_path / "t.db").exists()


def _pin_prompt_session(db_url: str, email: str, typed: list[str]) -> tuple[int, str, bytes]:
    """Run test-user --pin-stdin on a pseudo-terminal and type each entry of `typed` once it is asked for.

    Returns (exit code, stdout + stderr, everything the terminal echoed back). The process gets a session of
    its own, so getpass has no /dev/tty to open and uses the pseudo-terminal on stdin, turning echo off.
    """
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, SCRIPT, "test-user", "--email", email, "--pin-stdin"],
        cwd=ROOT,
        env=script_env(db_url),
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    os.close(slave)
    echoed = b""
    prompts = b""
    try:
        for asked, entry in enumerate(typed):
            deadline = time.monotonic() + 30  # a hang guard only
            while prompts.count(b": ") <= asked and time.monotonic() < deadline:
                ready, _, _ = select.select([proc.stderr, master], [], [], 1.0)
                if proc.stderr in ready:
                    chunk = os.read(proc.stderr.fileno(), 4096)  # type: ignore[union-attr]
                    if not chunk:
                        break
                    prompts += chunk
                if master in ready:
                    echoed += os.read(master, 4096)
            os.write(master, entry.encode() + b"\n")
        out, err = proc.communicate(timeout=30)
        with contextlib.suppress(OSError):
            while select.select([master], [], [], 0.2)[0]:
                data = os.read(master, 4096)
                if not data:
                    break
                echoed += data
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, prompts.decode() + out.decode() + err.decode(), echoed


async def test_pin_prompt_on_a_terminal_does_not_echo(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path}/t.db"
    code, output, echoed = await asyncio.to_thread(_pin_prompt_session, db_url, "tty@example.com", ["97531", "97531"])
    assert code == 0, output
    assert "PIN (4 to 8 digits, not shown):" in output and "Repeat the PIN:" in output
    assert b"97531" not in echoed and "97531" not in output
    async with opened(db_url) as db:
        user = await users.get_user_by_email(db, "tty@example.com")
        assert user is not None and user.pin_hash is not None and verify_pin("97531", user.pin_hash)

    code, output, _ = await asyncio.to_thread(_pin_prompt_session, db_url, "typo@example.com", ["1234", "1243"])
    assert code == 2 and "the two PINs differ" in output
    assert await count(db_url, "users") == 1
