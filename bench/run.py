#!/usr/bin/env python3
"""Run the benchmarks in bench/ and print one Markdown table each; also written to bench/results/latest.md.

    python bench/run.py                      every benchmark
    python bench/run.py upload_memory        only the named ones
    python bench/run.py --list               what exists

A benchmark is any module `bench/<file>.py` that defines `NAME` and `run(args)` (see bench/README.md);
modules without them (harness.py, this file) are skipped, so new benchmarks need no registration here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.chdir(ROOT)  # servers run `hypercorn --config hypercorn.toml` relative to the repo root

RESULTS = BENCH / "results" / "latest.md"


def discover() -> dict[str, ModuleType]:
    """NAME -> module for every bench/*.py that follows the contract, in file-name order."""
    found: dict[str, ModuleType] = {}
    for path in sorted(BENCH.glob("*.py")):
        if path.stem in ("run", "__init__") or path.stem.startswith("_"):
            continue
        module = importlib.import_module(f"bench.{path.stem}")
        if isinstance(getattr(module, "NAME", None), str) and callable(getattr(module, "run", None)):
            found[module.NAME] = module
    return found


def build_parser(benchmarks: dict[str, ModuleType]) -> argparse.ArgumentParser:
    listing = "\n".join(f"  {name:<20} {getattr(m, 'DESCRIPTION', '')}" for name, m in benchmarks.items())
    parser = argparse.ArgumentParser(
        prog="python bench/run.py",
        description="Run benchmarks; print Markdown tables; write " + str(RESULTS.relative_to(ROOT)),
        epilog="benchmarks:\n" + listing,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--out", type=Path, default=RESULTS, help="Markdown file to write (default: %(default)s)")
    for module in benchmarks.values():  # each benchmark may add its own, prefixed, options
        if hasattr(module, "add_arguments"):
            module.add_arguments(parser)
    return parser


def as_table(rows: list[dict[str, object]]) -> str:
    """A Markdown table whose columns are the union of the rows' keys, in first-seen order."""
    if not rows:
        return "_no rows_"
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def render(module: ModuleType, result: object, seconds: float) -> str:
    """`run()` may return a list of row dicts, or a dict {"rows": [...], "notes": "..."} for extra text."""
    rows, notes = (result.get("rows", []), result.get("notes")) if isinstance(result, dict) else (result, None)
    parts = [f"## {module.NAME}", "", getattr(module, "DESCRIPTION", ""), "", as_table(list(rows))]
    if notes:
        parts += ["", str(notes)]
    parts += ["", f"_{seconds:.1f} s_", ""]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    benchmarks = discover()
    parser = build_parser(benchmarks)
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(f"{name}\t{getattr(m, 'DESCRIPTION', '')}" for name, m in benchmarks.items()))
        return 0
    unknown = [n for n in args.names if n not in benchmarks]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(benchmarks)}")
    selected = args.names or list(benchmarks)

    header = (
        f"# Benchmarks {dt.datetime.now().isoformat(timespec='seconds')}\n\n"
        f"{platform.node()} · Python {platform.python_version()} · {os.cpu_count()} CPUs · "
        f"{platform.platform()}\n"
    )
    sections, failed = [header], []
    print(header)
    for name in selected:
        started = time.perf_counter()
        try:
            result = benchmarks[name].run(args)
        except Exception:  # one broken benchmark must not lose the others' results
            failed.append(name)
            section = f"## {name}\n\nFAILED\n\n```\n{traceback.format_exc()}```\n"
        else:
            section = render(benchmarks[name], result, time.perf_counter() - started)
        print(section, flush=True)
        sections.append(section)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(sections))
    print(f"written to {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
