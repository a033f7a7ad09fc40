#!/bin/sh
# Run a command while unrelated processes keep CPU cores busy: the suite must pass on a
# machine that is doing other work (CI runners, a developer's laptop), not only when it
# has the machine to itself.
#
# Usage: tools/busy-core.sh [-n N] [--] COMMAND [ARG]...
#   -n N   cores to keep busy (default 1): N plain busy loops at normal priority
# Exits with COMMAND's status; the loops are stopped whatever happens.
# Example (docs/RELIABILITY.md): tools/busy-core.sh -- tools/busy-suite.sh 3
set -eu

n=1
if [ "${1:-}" = -n ]; then
	n=${2:?-n needs a number}
	shift 2
fi
[ "${1:-}" = -- ] && shift
if [ $# -eq 0 ]; then
	echo "usage: $0 [-n N] [--] COMMAND [ARG]..." >&2
	exit 2
fi

pids=""
stop() {
	# shellcheck disable=SC2086 # one word per pid
	[ -n "$pids" ] && kill $pids 2>/dev/null
	pids=""
}
trap stop EXIT INT TERM

i=0
while [ "$i" -lt "$n" ]; do
	sh -c 'while :; do :; done' &
	pids="$pids $!"
	i=$((i + 1))
done
echo "busy-core: $n busy loop(s) running (pids$pids) on $(nproc) core(s)" >&2
status=0
"$@" || status=$?
stop
exit "$status"
