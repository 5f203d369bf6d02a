#!/usr/bin/env bash
# Regenerates the hash-pinned lock files from requirements*.txt (run after changing a pin).
#   requirements.lock      runtime: the image and Render install from it
#   requirements-dev.lock  runtime + tests + static checks: scripts/test.sh and CI install from it
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-.venv/bin/uv}
common=(--python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes --index-url https://pypi.org/simple
        --no-header --quiet)
"$UV" pip compile "${common[@]}" requirements.txt -o requirements.lock
"$UV" pip compile "${common[@]}" requirements-dev.txt -o requirements-dev.lock
echo "wrote requirements.lock and requirements-dev.lock"
