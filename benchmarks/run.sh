#!/usr/bin/env bash
# Run every benchmark in benchmarks/ (bench_*.py); each writes benchmarks/results/<name>.json.
# Extra arguments are passed to every benchmark script.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
mkdir -p benchmarks/results
status=0
for bench in benchmarks/bench_*.py; do
    echo "== $bench" >&2
    start=$(date +%s)
    if ! "$PY" "$bench" "$@"; then
        echo "!! $bench failed" >&2
        status=1
    fi
    echo "== $bench done in $(( $(date +%s) - start )) s" >&2
done
exit $status
