"""Capacity: held Socket.IO connections, echo round trips, broadcast fan-out and trivial HTTP, side by side.

Peers (each set up by this benchmark on first use, in bench/.peers/, ignored by git):
  ours         `bench._ours_app:application` = `asgi:application` as shipped + a bench-only "broadcast" handler
               that makes the service's own broadcast call (`sio.emit(..., namespace="/")`), hypercorn.toml
  ours-stock   the same with python-socketio's stock client manager instead of quart_app/sockets/fanout.py
               (the broadcast before/after)
  seeds        the seeds' stack: Flask-SocketIO + eventlet under `gunicorn -k eventlet -w 1` (gunicorn 25.x)
  node         Node.js socket.io 4 (bench/peers/node_peer, npm ci from its lock)
  bare         bare python-socketio ASGI on hypercorn with hypercorn.toml (bench/peers/bare_socketio.py)

Every server runs pinned to core 0 (`taskset -c 0`), every load generator to core 1; one worker each.
Per peer: idle RSS; HTTP req/s with wrk (or bench/_http_load.py) on /health/live and, for ours, an API-key
route; then bench/_sio_load.py holds N raw websocket clients for each N in --capacity-levels (added
incrementally) and measures connect rate, RSS per connection, echo p50/p99 at --capacity-echo-rate and the
server's CPU per echo, and the time until the last of N clients has a broadcast. Every figure is also given
as a ratio to the seeds' stack (value / seeds' value). Results also go to bench/results/capacity.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import harness

NAME = "capacity"
DESCRIPTION = "held Socket.IO clients, echo p50/p99, broadcast to all, trivial HTTP: ours vs seeds vs Node"

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CACHE = BENCH / ".peers"
JSON_OUT = BENCH / "results" / "capacity.json"
SERVER_CORE, LOAD_CORE = harness.SERVER_CORE, harness.LOAD_CORE
PEERS = ("ours", "ours-stock", "seeds", "node", "bare")
LABELS = {
    "ours": "ours (asgi:application, hypercorn.toml)",
    "ours-stock": "ours, stock python-socketio emit",
    "seeds": "seeds: Flask-SocketIO + eventlet, gunicorn -k eventlet -w 1",
    "node": "Node.js socket.io 4",
    "bare": "bare python-socketio on hypercorn",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--capacity-levels", default="100,1000,5000,10000", help="capacity: held clients, ascending (%(default)s)"
    )
    parser.add_argument("--capacity-peers", default=",".join(PEERS), help="capacity: peers to run (%(default)s)")
    parser.add_argument("--capacity-echo-rate", type=float, default=1000, help="capacity: echo msg/s (1000)")
    parser.add_argument("--capacity-echo-seconds", type=float, default=5, help="capacity: echo seconds per level (5)")
    parser.add_argument("--capacity-broadcasts", type=int, default=5, help="capacity: broadcasts per level (5)")
    parser.add_argument("--capacity-http-seconds", type=float, default=5, help="capacity: seconds per HTTP run (5)")
    parser.add_argument("--capacity-http-connections", type=int, default=50, help="capacity: HTTP connections (50)")
    parser.add_argument(
        "--capacity-ours-config", default="hypercorn.toml", help="capacity: hypercorn config of ours/bare (%(default)s)"
    )
    parser.add_argument("--capacity-json", type=Path, default=JSON_OUT, help="capacity: JSON output (%(default)s)")


# ------------------------------------------------------------------------------------------ environments


def _stamp_ok(directory: Path, *sources: Path) -> tuple[bool, str]:
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()
    stamp = directory / ".stamp"
    return stamp.exists() and stamp.read_text() == digest, digest


def seeds_python() -> Path:
    """bench/.peers/seeds: a virtualenv with bench/peers/seeds_requirements.txt (Flask-SocketIO, eventlet, gunicorn)."""
    venv = CACHE / "seeds"
    requirements = BENCH / "peers" / "seeds_requirements.txt"
    ok, digest = _stamp_ok(venv, requirements) if venv.exists() else (False, "")
    if not ok:
        shutil.rmtree(venv, ignore_errors=True)
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "-r", str(requirements)],
            check=True,
        )
        _, digest = _stamp_ok(venv, requirements)
        (venv / ".stamp").write_text(digest)
    return venv / "bin" / "python"


def node_modules() -> Path:
    """bench/.peers/node/node_modules: `npm ci` from bench/peers/node_peer's package.json and lock."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise RuntimeError("node/npm not found: run scripts/setup_system.sh")
    target = CACHE / "node"
    source = BENCH / "peers" / "node_peer"
    files = [source / "package.json", source / "package-lock.json"]
    ok, digest = _stamp_ok(target, *files) if target.exists() else (False, "")
    if not ok:
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for f in files:
            shutil.copy(f, target / f.name)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=target, check=True)
        (target / ".stamp").write_text(digest)
    return target / "node_modules"


# ----------------------------------------------------------------------------------------------- servers


def _raise_nofile() -> None:
    """Soft open-file limit up to the hard one (20 000 here: enough for 10 000 clients and their server)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))


@dataclass
class Peer:
    key: str
    cmd: list[str]
    env: dict[str, str]
    kind: str  # hypercorn | gunicorn | node
    echo_event: str = "echo"
    api_key: str | None = None
    port: int = field(default_factory=harness.free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, log_path: Path, timeout: float = 60.0) -> None:
        self.log_path = log_path
        cmd = [c.replace("{port}", str(self.port)) for c in self.cmd]
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                ["taskset", "-c", SERVER_CORE, *cmd],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_raise_nofile,  # noqa: PLW1509 - only setrlimit, before exec
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.key} exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + "/health/live", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.key} not up in {timeout}s:\n{self.output()}")

    def measured_pid(self) -> int:
        """The process that serves: hypercorn's and gunicorn's single worker, node itself."""
        assert self.proc is not None
        if self.kind == "hypercorn":
            return harness.worker_pid(self.proc.pid)
        if self.kind == "gunicorn":
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                children = harness._children(self.proc.pid)
                if children:
                    return children[0]
                time.sleep(0.05)
        return self.proc.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path and self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(25)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


def make_peer(key: str, tmp: Path, config: str) -> Peer:
    env_common = {"RATE_LIMIT_PER_MINUTE": "100000000"}
    hypercorn = [sys.executable, "-m", "hypercorn", "--config", config, "--bind", "127.0.0.1:{port}"]
    if key in ("ours", "ours-stock"):
        db = f"sqlite+aiosqlite:///{tmp}/{key}.db"
        api_key = harness.create_api_key(db)
        env = harness.clean_env(DATABASE_URL=db, **env_common)
        if key == "ours-stock":
            env["BENCH_STOCK_EMIT"] = "1"
        return Peer(key, [*hypercorn, "bench._ours_app:application"], env, "hypercorn", "ping_server", api_key)
    if key == "bare":
        return Peer(key, [*hypercorn, "bench.peers.bare_socketio:app"], harness.clean_env(), "hypercorn")
    if key == "seeds":
        python = seeds_python()
        cmd = [
            str(python.parent / "gunicorn"),
            "-k",
            "eventlet",
            "-w",
            "1",
            "--worker-connections",
            "20000",
            "--backlog",
            "2048",
            "--bind",
            "127.0.0.1:{port}",
            "--chdir",
            str(BENCH / "peers"),
            "flask_socketio_peer:app",
        ]
        env = harness.clean_env()
        env.pop("VIRTUAL_ENV", None)
        return Peer(key, cmd, env, "gunicorn")
    if key == "node":
        modules = node_modules()
        env = harness.clean_env(NODE_PATH=str(modules), PORT="{port}", NODE_ENV="production")
        peer = Peer(key, ["node", str(BENCH / "peers" / "node_peer" / "server.js")], env, "node")
        peer.env["PORT"] = str(peer.port)
        return peer
    raise ValueError(f"unknown peer {key!r}; known: {', '.join(PEERS)}")


# ------------------------------------------------------------------------------------------------- loads


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def http_load(url: str, pid: int, seconds: float, connections: int, headers: dict[str, str]) -> dict[str, Any]:
    """req/s of 2xx answers: wrk -t1 when installed, else bench/_http_load.py; both on the load core."""
    header_args = [f"{k}: {v}" for k, v in headers.items()]
    server0, load0, started = cpu_seconds(pid), _children_cpu(), time.perf_counter()
    if shutil.which("wrk"):
        cmd = ["taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s"]
        for h in header_args:
            cmd += ["-H", h]
        out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=seconds + 60).stdout
        total = re.search(r"(\d+) requests in", out)
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        bad = int(non2xx.group(1)) if non2xx else 0
        wall = time.perf_counter() - started
        result = {
            "tool": "wrk",
            "requests_per_s": ((int(total.group(1)) if total else 0) - bad) / seconds,
            "non_2xx": bad,
            "errors": sum(int(g) for g in errors.groups()) if errors else 0,
        }
    else:
        cmd = ["taskset", "-c", LOAD_CORE, sys.executable, str(BENCH / "_http_load.py"), url, str(connections)]
        out = subprocess.run([*cmd, str(seconds), *header_args], capture_output=True, text=True, timeout=seconds + 60)
        wall = time.perf_counter() - started
        result = {"tool": "python (bench/_http_load.py)", **json.loads(out.stdout)}
    server_cpu = cpu_seconds(pid) - server0
    requests = result["requests_per_s"] * seconds
    result["load_cpu"] = (_children_cpu() - load0) / wall
    result["server_cpu"] = server_cpu / wall
    result["server_cpu_per_request_ms"] = server_cpu / requests * 1000 if requests else None
    return result


def socket_load(peer: Peer, pid: int, levels: list[int], args: argparse.Namespace) -> list[dict[str, Any]]:
    config = {
        "host": "127.0.0.1",
        "port": peer.port,
        "pids": [pid],
        "levels": levels,
        "echo_event": peer.echo_event,
        "echo_payload": {} if peer.echo_event == "ping_server" else {"seq": 1, "text": "hello"},
        "echo_rate": args.capacity_echo_rate,
        "echo_seconds": args.capacity_echo_seconds,
        "broadcasts": args.capacity_broadcasts,
        "connect_concurrency": 64,
    }
    load0 = _children_cpu()
    out = subprocess.run(
        ["taskset", "-c", LOAD_CORE, sys.executable, str(BENCH / "_sio_load.py"), json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=120 + len(levels) * (60 + args.capacity_echo_seconds + args.capacity_broadcasts * 35),
        cwd=ROOT,
    )
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed ({out.returncode}):\n{out.stderr[-4000:]}")
    rows: list[dict[str, Any]] = json.loads(out.stdout)["levels"]
    if rows:
        rows[-1]["load_cpu_total_s"] = _children_cpu() - load0
    return rows


def measure_peer(key: str, tmp: Path, args: argparse.Namespace, levels: list[int]) -> dict[str, Any]:
    peer = make_peer(key, tmp, args.capacity_ours_config)
    peer.start(tmp / f"{key}.log")
    try:
        pid = peer.measured_pid()
        time.sleep(1.0)
        result: dict[str, Any] = {"peer": key, "label": LABELS[key], "idle_rss": harness.proc_status(pid)["VmRSS"]}
        seconds, conns = args.capacity_http_seconds, args.capacity_http_connections
        result["http_live"] = http_load(peer.url + "/health/live", pid, seconds, conns, {})
        if peer.api_key:
            result["http_api_key"] = http_load(peer.url + "/api/me", pid, seconds, conns, {"x-api-key": peer.api_key})
        result["levels"] = socket_load(peer, pid, levels, args)
        return result
    except Exception as exc:
        raise RuntimeError(f"{key}: {exc}\n--- server log ---\n{peer.output()}") from exc
    finally:
        peer.stop()


# ------------------------------------------------------------------------------------------------ report


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return ""
    return f" ({value / base:.2f}×)"


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}" if abs(value) < 1000 or digits else f"{value:,.0f}"


def _cell(value: float | None, base: float | None, digits: int = 1) -> str:
    return _fmt(value, digits) + _ratio(value, base)


def build_rows(results: list[dict[str, Any]]) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    seeds = next((r for r in results if r["peer"] == "seeds"), None)
    seeds_levels = {lv["clients"]: lv for lv in seeds["levels"]} if seeds else {}
    socket_rows: list[dict[str, object]] = []
    for r in results:
        for lv in r["levels"]:
            base = seeds_levels.get(lv["clients"], {})
            socket_rows.append(
                {
                    "server": LABELS[r["peer"]],
                    "clients": f"{lv['connected_total']:,}" if "connected_total" in lv else lv["clients"],
                    "connect/s": _cell(lv.get("connect_rate"), base.get("connect_rate"), 0),
                    "RSS/conn (KB)": _cell(lv["rss_per_conn"] / 1024, (base.get("rss_per_conn") or 0) / 1024),
                    "server CPU holding them": f"{lv['server_cpu_idle']:.0%}" if "server_cpu_idle" in lv else "—",
                    "echo p50 (ms)": _cell(lv.get("echo_p50_ms"), base.get("echo_p50_ms"), 2),
                    "echo p99 (ms)": _cell(lv.get("echo_p99_ms"), base.get("echo_p99_ms"), 1),
                    "server CPU/echo (ms)": _cell(
                        lv.get("server_cpu_per_echo_ms"), base.get("server_cpu_per_echo_ms"), 3
                    ),
                    "echo answered": f"{lv.get('echo_answered', 0)}/{lv.get('echo_sent', 0)}",
                    "broadcast, last client (ms)": _cell(lv.get("bcast_last_ms"), base.get("bcast_last_ms"), 1),
                    "server CPU/recipient (µs)": _cell(
                        lv.get("server_cpu_per_recipient_us"), base.get("server_cpu_per_recipient_us"), 1
                    ),
                    "got broadcast": f"{lv.get('bcast_received', 0)}/{lv.get('bcast_expected', 0)}",
                    "load CPU echo / bcast": f"{lv.get('load_cpu_echo', 0):.0%} / "
                    f"{_fmt(lv.get('load_cpu_per_recipient_us'))} µs/recipient",
                    "errors": ", ".join(f"{k}: {v}" for k, v in lv.get("errors", {}).items()) or "0",
                }
            )
    http_rows: list[dict[str, object]] = []
    base_live = seeds["http_live"]["requests_per_s"] if seeds else None
    base_cpu = seeds["http_live"]["server_cpu_per_request_ms"] if seeds else None
    base_idle = seeds["idle_rss"] if seeds else None
    for r in results:
        live, api = r["http_live"], r.get("http_api_key")
        http_rows.append(
            {
                "server": LABELS[r["peer"]],
                "idle RSS (MB)": _cell(r["idle_rss"] / harness.MB, (base_idle or 0) / harness.MB),
                "/health/live req/s": _cell(live["requests_per_s"], base_live, 0),
                "server CPU/request (ms)": _cell(live["server_cpu_per_request_ms"], base_cpu, 3),
                "API-key route req/s": _cell(api["requests_per_s"], base_live, 0) if api else "—",
                "load CPU": f"{live['load_cpu']:.0%} ({live['tool']})",
                "non-2xx / errors": f"{live['non_2xx']} / {live['errors']}"
                + (f"; API {api['non_2xx']} / {api['errors']}" if api else ""),
            }
        )
    return socket_rows, http_rows


def add_ratios(results: list[dict[str, Any]]) -> None:
    """Each numeric figure's value / the seeds' value in this run, as `ratio_to_seeds` beside the figures."""
    seeds = next((r for r in results if r["peer"] == "seeds"), None)
    if seeds is None:
        return

    def ratios(mine: dict[str, Any], base: dict[str, Any]) -> dict[str, float]:
        return {
            k: v / base[k]
            for k, v in mine.items()
            if isinstance(v, int | float)
            and not isinstance(v, bool)
            and isinstance(base.get(k), int | float)
            and base[k]
        }

    seeds_levels = {lv["clients"]: lv for lv in seeds["levels"]}
    for r in results:
        r["ratio_to_seeds"] = {"idle_rss": r["idle_rss"] / seeds["idle_rss"]}
        for key in ("http_live", "http_api_key"):
            if key in r:
                r[key]["ratio_to_seeds"] = ratios(r[key], seeds["http_live"])
        for lv in r["levels"]:
            lv["ratio_to_seeds"] = ratios(lv, seeds_levels.get(lv["clients"], {}))


def targets(results: list[dict[str, Any]]) -> list[str]:
    """The issue's targets, checked on this run's figures."""
    by = {r["peer"]: r for r in results}
    ours, seeds, node = by.get("ours"), by.get("seeds"), by.get("node")
    if not ours:
        return []

    def level(r: dict[str, Any] | None, n: int) -> dict[str, Any]:
        return next((lv for lv in r["levels"] if lv["clients"] == n), {}) if r else {}

    def check(name: str, value: float | None, limit: float | None, lower_is_better: bool = True) -> str:
        if value is None or limit is None:
            return f"- {name}: not measured in this run"
        met = value <= limit if lower_is_better else value >= limit
        return f"- {name}: {'**met**' if met else '**missed**'} ({value:,.3g} vs {limit:,.3g})"

    lines = []
    o1, s1, n1 = level(ours, 1000), level(seeds, 1000), level(node, 1000)
    p99 = s1.get("echo_p99_ms")
    lines.append(
        check("echo p99 at 1000 clients ≤ 1/10 of the seeds'", o1.get("echo_p99_ms"), p99 / 10 if p99 else None)
    )
    lines.append(
        check(
            "server CPU per echo at 1000 clients ≤ Node's",
            o1.get("server_cpu_per_echo_ms"),
            n1.get("server_cpu_per_echo_ms"),
        )
    )
    for n in (1000, 10000):
        lines.append(
            check(
                f"broadcast to {n:,} ≤ Node's", level(ours, n).get("bcast_last_ms"), level(node, n).get("bcast_last_ms")
            )
        )
    biggest = max((lv["clients"] for lv in ours["levels"]), default=0)
    lines.append(
        check(
            f"RSS per held connection ≤ 25 KB (at {biggest:,})",
            level(ours, biggest).get("rss_per_conn", 0) / 1024 or None,
            25,
        )
    )
    if seeds:
        lines.append(
            check(
                "trivial HTTP ≥ 2× the seeds'",
                ours["http_live"]["requests_per_s"],
                2 * seeds["http_live"]["requests_per_s"],
                lower_is_better=False,
            )
        )
    return lines


def run(args: argparse.Namespace) -> dict[str, object]:
    levels = sorted(int(x) for x in str(args.capacity_levels).split(",") if x.strip())
    keys = [k.strip() for k in str(args.capacity_peers).split(",") if k.strip()]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as tmp_name:
        for key in keys:
            started = time.perf_counter()
            result = measure_peer(key, Path(tmp_name), args, levels)
            result["seconds"] = time.perf_counter() - started
            results.append(result)
            print(f"capacity: {key} done in {result['seconds']:.0f} s", file=sys.stderr, flush=True)
    add_ratios(results)
    socket_rows, http_rows = build_rows(results)
    lines = targets(results)
    payload = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "levels": levels,
        "echo_rate": args.capacity_echo_rate,
        "results": results,
        "targets": lines,
    }
    out: Path = args.capacity_json
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=1))
    from bench.run import as_table  # the same Markdown table renderer as the main table

    notes = "\n".join(
        [
            "Ratios in parentheses are value / the seeds' value in this run (for req/s higher is better, "
            "otherwise lower). Server pinned to core "
            f"{SERVER_CORE}, load to core {LOAD_CORE}; echo at {args.capacity_echo_rate:g} msg/s for "
            f"{args.capacity_echo_seconds:g} s per level; broadcast = median over {args.capacity_broadcasts} "
            "broadcasts of the time from the trigger until the last client has it; ours acks with the root "
            "namespace's `ping_server`, the peers with `echo`. Server CPU holding them: the worker's CPU over "
            "3 s with the N clients connected and silent (pings and timers only). This machine is shared: "
            "compare within one run, and repeat before believing a difference under ~20 %.",
            "",
            "### HTTP (idle server, before the Socket.IO load)",
            "",
            as_table(http_rows),
            "",
            "API-key route: `GET /api/me` with `x-api-key` (authentication, rate limiter, a database read); "
            "its ratio is to the seeds' trivial route, which has no authentication.",
            "",
            "### Targets",
            "",
            *lines,
            "",
            f"JSON: `{out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}`",
        ]
    )
    return {"rows": socket_rows, "notes": notes}
