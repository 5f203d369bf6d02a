#!/usr/bin/env bash
# Sets up and starts the service on its embedded defaults (SQLite under ./data, in-memory Socket.IO).
#   bash scripts/run.sh            # http://127.0.0.1:8000  (PORT and HOST override)
# Any variable from the README's table may be exported first, e.g. to use Postgres, Redis or the fakes.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements.lock \
  2> >(grep -v "^WARNING: Location" >&2)

python scripts/init_db.py --safe
exec hypercorn --config hypercorn.toml --bind "${HOST:-127.0.0.1}:${PORT:-8000}" asgi:application
