#!/bin/bash
# User-space instructions per request of a server under valgrind's callgrind:
# a measure the load of a shared machine does not move (the kernel's share,
# syscalls included, is not counted; CPU time is bench/run.py's business).
#
#   bench/callgrind_per_op.sh SERVER PORT TEST P N
#
# SERVER: a sakerd tree (its directory: compiled when built in place), or
# "redis" (redis-server) or "uvloop" (bench/uvloop_server.py). TEST and P are
# redis-benchmark's -t and -P, with 50 clients; N requests are counted, after
# 2000 unmeasured ones (callgrind_control switches the instrumentation on and
# off around them). Needs valgrind, redis-benchmark, redis-cli.
#
#   for s in . uvloop redis; do bench/callgrind_per_op.sh $s 17301 get 16 40000; done
set -euo pipefail
SERVER=$1; PORT=$2; T=$3; P=$4; N=$5
HERE=$(cd "$(dirname "$0")" && pwd)
PY=$(python3 -c 'import sys; print(sys.executable)')
D=$(mktemp -d); mkdir "$D/scripts"
OUT=$D/callgrind.out
cd "$D"
case "$SERVER" in
  redis) valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT" \
           redis-server --port "$PORT" --save "" --appendonly no >"$D/log" 2>&1 & ;;
  uvloop) valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT" \
           "$PY" "$HERE/uvloop_server.py" --port "$PORT" >"$D/log" 2>&1 & ;;
  *) TREE=$(cd "$SERVER" && pwd)
     PYTHONPATH=$TREE valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT" \
       "$PY" -m sakerd --port "$PORT" --scripts-dir "$D/scripts" \
       --user default on nopass '~*' '&*' '+@all' >"$D/log" 2>&1 & ;;
esac
VP=$!
for _ in $(seq 300); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.2; done
redis-benchmark -p "$PORT" -P "$P" -c 50 -n 2000 -t "$T" -q >/dev/null 2>&1
callgrind_control -i on "$VP" >/dev/null
redis-benchmark -p "$PORT" -P "$P" -c 50 -n "$N" -t "$T" -q >/dev/null 2>&1
callgrind_control -i off "$VP" >/dev/null
callgrind_control -d "$VP" >/dev/null
kill "$VP"; wait "$VP" 2>/dev/null || true
TOTAL=$(callgrind_annotate "$OUT".* 2>/dev/null | awk '/PROGRAM TOTALS/ && !n {gsub(",", "", $1); print $1; n = 1}')
echo "$SERVER $T -P $P: $((TOTAL / N)) instructions per request (user space)"
rm -rf "$D"
