#!/bin/sh
# The integration suite, several times over, under ASan+UBSan: the proof that it does not
# depend on having the machine to itself when run inside tools/busy-core.sh.
#
# Usage: tools/busy-suite.sh [RUNS]   (default 3; as root: the mdns tests need avahi)
#   environment: P2M_BUSY_BUILD (default build-asan; configured and built when missing),
#                P2M_BUSY_TESTS (ctest -R regex, default "integration|tools")
# Prints one line per run (passed or failed, duration, failed tests) and a summary;
# exits 1 when any run failed. Example: tools/busy-core.sh -- tools/busy-suite.sh 3
set -eu
cd "$(dirname "$0")/.."

runs=${1:-3}
build=${P2M_BUSY_BUILD:-build-asan}
tests=${P2M_BUSY_TESTS:-integration|tools}
jobs=$(nproc 2>/dev/null || echo 2)

if [ ! -f "$build/CMakeCache.txt" ]; then
	cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DP2M_SANITIZE=ON >/dev/null
fi
cmake --build "$build" -j "$jobs" >/dev/null
tools/avahi-up.sh --loopback >/dev/null

failed=0
i=1
while [ "$i" -le "$runs" ]; do
	log=$(mktemp "${TMPDIR:-/tmp}/p2m-busy-run$i.XXXXXX")
	start=$(date +%s)
	if ctest --test-dir "$build" -R "$tests" -j "$jobs" --output-on-failure >"$log" 2>&1; then
		result=passed
	else
		result=FAILED
		failed=$((failed + 1))
	fi
	took=$(($(date +%s) - start))
	summary=$(grep -E '^[0-9]+% tests passed' "$log" || echo "no ctest summary")
	echo "busy-suite: run $i/$runs: $result in ${took} s: $summary"
	if [ "$result" = FAILED ]; then
		grep -E '\*\*\*Failed|\*\*\*Timeout|^(FAIL|ERROR):' "$log" | sed 's/^/busy-suite:   /'
		echo "busy-suite:   log kept: $log"
	else
		rm -f "$log"
	fi
	i=$((i + 1))
done
echo "busy-suite: $((runs - failed))/$runs runs passed (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
[ "$failed" -eq 0 ]
