#!/usr/bin/env bash
# The whole test suite, one pytest worker per CPU (pytest-xdist). Sets up .venv on first use.
# Extra arguments go to pytest (e.g. `-n 0` runs in one process).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup-venv.sh
exec .venv/bin/python -m pytest -n auto "$@"
