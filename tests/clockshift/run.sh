#!/usr/bin/env bash
# Runs the test suite with the wall clock moved so that it reads WHEN at the start
# (default: 2026-12-31 23:57:30 UTC, so the hour, the day, the month and the year all turn
# during the run). Every process started (PostgreSQL servers, tmux, moto) shares the move;
# monotonic time and timeouts stay real.   tests/clockshift/run.sh ['2027-02-28 23:58'] [pytest args]
set -euo pipefail
cd "$(dirname "$0")/../.."
when="${1:-2026-12-31 23:57:30}"
shift || true
lib="$(mktemp -d)/shiftclock.so"
gcc -shared -fPIC -O2 -o "$lib" tests/clockshift/shiftclock.c -ldl
export PGDECK_SHIFT_SECONDS=$(( $(date -u -d "$when" +%s) - $(date -u +%s) ))
export LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}"
echo "clock moved by ${PGDECK_SHIFT_SECONDS} s: it reads $(date -u) now" >&2
exec .venv/bin/python -m pytest -q "$@"
