#!/usr/bin/env bash
# Runs every bench script present, each writing eventuali-bench/1 JSON into bench/results/,
# then bench/report.py, which writes bench/results.md and bench/results.png.
#
#   bash bench/run_all.sh [--quick] [--postgres URL]
#
# Every script takes --quick and --json PATH (the convention in bench/README.md); the
# PostgreSQL ones also get --postgres URL when it is given here.  A script that fails does
# not stop the others (its failure is listed and the exit status is non-zero), and old JSON
# is removed first so the report never shows numbers from an earlier run as current.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=bench/results
QUICK=()
POSTGRES=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=(--quick); shift ;;
        --postgres) POSTGRES=${2:?--postgres needs a URL}; shift 2 ;;
        --postgres=*) POSTGRES=${1#--postgres=}; shift ;;
        *) echo "run_all.sh: unknown argument '$1' (use --quick, --postgres URL)" >&2; exit 2 ;;
    esac
done
mkdir -p "$OUT"
rm -f "$OUT"/*.json
failed=()

run() {  # name, then the command
    local name=$1; shift
    echo "== $name: $*" >&2
    if ! "$@"; then failed+=("$name"); echo "== $name FAILED" >&2; fi
}

pg_args=()
[ -n "$POSTGRES" ] && pg_args=(--postgres "$POSTGRES")

run bench_e2e "$PY" bench/bench_e2e.py "${QUICK[@]}" "${pg_args[@]}" --json "$OUT/e2e.json"
[ -f bench/bench_records.py ] && run bench_records "$PY" bench/bench_records.py "${QUICK[@]}" --json "$OUT/bench_records.json"
# bench_features prints its own tables (no JSON yet): keep its output beside the report.
[ -f bench/bench_features.py ] && run bench_features bash -c "$PY bench/bench_features.py ${QUICK[*]} | tee $OUT/bench_features.txt"
if [ -f bench/bench_postgres.py ]; then
    if [ -n "$POSTGRES" ]; then
        run bench_postgres "$PY" bench/bench_postgres.py "${QUICK[@]}" "${pg_args[@]}" --json "$OUT/bench_postgres.json"
    else
        echo "== bench_postgres skipped: give --postgres URL (e.g. postgresql://postgres@127.0.0.1/postgres)" >&2
    fi
fi
run report "$PY" bench/report.py "$OUT"/*.json

if [ ${#failed[@]} -gt 0 ]; then
    echo "failed: ${failed[*]}" >&2
    exit 1
fi
