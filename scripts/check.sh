#!/usr/bin/env bash
# Static checks, run by scripts/test.sh (and so by CI) before the tests: lint, format, types, layers.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
echo "== ruff check";        "$PY" -m ruff check .
echo "== ruff format";       "$PY" -m ruff format --check .
echo "== mypy quart_app";    "$PY" -m mypy
echo "== import contracts";  .venv/bin/lint-imports
