#!/bin/sh
# Long fuzzing runs (not CI): each libFuzzer target in turn, on one core, to at least RUNS
# executions, from the committed corpus; then the corpus is minimised (-merge=1) back
# into tests/fuzz/corpus/<target>/, so that CI (tools/run-fuzz.sh) starts where the long
# run ended. Hand-written seeds (any name that is not a 40-hex-digit libFuzzer name) are
# always kept; the libFuzzer-named files are replaced by the minimised set.
#
# Records per target: executions, wall time, libFuzzer's coverage (cov: edges, ft:
# features) of the seed corpus, at the end of the run and of the minimised corpus, and
# the corpus before, after the run and after minimising (files/bytes). The table is
# printed and kept in the work directory (summary.md), for docs/RELIABILITY.md.
#
# A target that finds something stops there: its input is kept in the work directory and
# its corpus is left as it was (the run fails at the end); the next target still runs.
# Past findings (tests/fuzz/crashes/<target>-*.bin) are replayed first, as in CI (an open
# one, tests/fuzz/crashes/OPEN, that no longer fails strictly is only reported here).
#
# Usage: tools/fuzz-long.sh [-n RUNS] [-j JOBS] [TARGET...]
#   -n RUNS   executions per target (default 10000000)
#   -j JOBS   processes per target (default 1; more: libFuzzer's -fork=JOBS, whose
#             children share the corpus; for a slow target on an otherwise idle machine.
#             The fork mode reports no peak RSS, and its seed coverage is measured by a
#             separate pass over the starting corpus)
#   TARGET    frame command config moonraker dialin printer api esp_image (default: all)
# Environment: P2M_FUZZ_BUILD_DIR (default build-fuzz), P2M_FUZZ_LONG_DIR (work
# directory, default a new one under ${TMPDIR:-/var/tmp}), P2M_FUZZ_NICE (default 10),
# P2M_FUZZ_NO_MERGE=1 (leave the committed corpus alone).
# One process at a time by default: on a 2-core machine the other core stays free.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)

runs=10000000
jobs=1
while getopts n:j: opt; do
	case $opt in
	n) runs=$OPTARG ;;
	j) jobs=$OPTARG ;;
	*)
		sed -n 's/^# Usage: //p' "$0" >&2
		exit 2
		;;
	esac
done
shift $((OPTIND - 1))
case $runs$jobs in
'' | *[!0-9]*)
	echo "fuzz-long: -n and -j take numbers" >&2
	exit 2
	;;
esac
targets=${*:-frame command config moonraker dialin printer api esp_image}
build=${P2M_FUZZ_BUILD_DIR:-build-fuzz}
nice=${P2M_FUZZ_NICE:-10}
work=${P2M_FUZZ_LONG_DIR:-$(mktemp -d "${TMPDIR:-/var/tmp}/p2m-fuzz-long.XXXXXX")}
mkdir -p "$work"

cc=$(command -v clang || command -v clang-14 || true)
if [ -z "$cc" ]; then
	echo "fuzz-long: clang not found (run tools/install-deps.sh)" >&2
	exit 1
fi
CC=$cc cmake -S . -B "$build" -DP2M_FUZZ=ON -DP2M_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
fuzzers=""
for t in $targets; do
	[ -f "tests/fuzz/fuzz_$t.c" ] || {
		echo "fuzz-long: no target $t" >&2
		exit 2
	}
	fuzzers="$fuzzers fuzz_$t"
done
# shellcheck disable=SC2086 # one word per target
cmake --build "$build" -j 1 --target $fuzzers

symbolizer=$(command -v llvm-symbolizer || true)
[ -x /usr/lib/llvm-14/bin/llvm-symbolizer ] && symbolizer=/usr/lib/llvm-14/bin/llvm-symbolizer
if [ -n "$symbolizer" ]; then
	ASAN_SYMBOLIZER_PATH=$symbolizer
	export ASAN_SYMBOLIZER_PATH
fi
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:quarantine_size_mb=64}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS UBSAN_OPTIONS

# "FILES/BYTES" of a directory's regular files.
size_of() {
	printf '%s/%s' "$(find "$1" -maxdepth 1 -type f | wc -l | tr -d ' ')" \
		"$(find "$1" -maxdepth 1 -type f -exec cat {} + | wc -c | tr -d ' ')"
}
# cov and ft of libFuzzer's last line of a kind (INITED, DONE) in a log.
cov_of() {
	line=$(grep -E "^#[0-9]+[[:space:]]+$2 " "$1" | tail -n 1 || true)
	c=$(echo "$line" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	f=$(echo "$line" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	echo "${c:-?}/${f:-?}"
}
stat_of() {
	grep -E "^stat::$2:" "$1" | awk '{print $2}' | tail -n 1
}
is_libfuzzer_name() {
	echo "$1" | grep -Eq '^[0-9a-f]{40}$'
}

summary=$work/summary.md
{
	echo "| target | executions | time | exec/s | cov/ft seeds | cov/ft end of run | cov/ft minimised | corpus before | after run | minimised | new units | peak RSS MB | result |"
	echo "|---|---:|---:|---:|---|---|---|---|---|---|---:|---:|---|"
} >"$summary"
failed=""

for t in $targets; do
	bin=$root/$build/tests/fuzz/fuzz_$t
	dict=$root/tests/fuzz/$t.dict
	committed=$root/tests/fuzz/corpus/$t
	d=$work/$t
	rm -rf "$d"
	mkdir -p "$d/corpus" "$d/merged" "$d/artifacts" "$d/run"
	cp "$committed"/* "$d/corpus/"
	before=$(size_of "$committed")
	echo "fuzz-long: $t: $runs executions from $before (files/bytes); log $d/run.log"

	crashes=$(find "$root/tests/fuzz/crashes" -type f -name "$t-*" | sort)
	if [ -n "$crashes" ]; then
		# shellcheck disable=SC2086 # file names have no blanks (checked in by us)
		if ! (cd "$d/run" && "$bin" -timeout=10 -rss_limit_mb=2048 $crashes) >"$d/replay.log" 2>&1; then
			echo "fuzz-long: $t: a saved input in tests/fuzz/crashes fails again ($d/replay.log)" >&2
			failed="$failed $t"
			echo "| \`fuzz_$t\` | | | | | | | $before | | | | | FAILED replaying tests/fuzz/crashes |" >>"$summary"
			continue
		fi
	fi
	open=$(awk -v p="$t-" 'index($1, p) == 1 && $1 ~ /\.bin$/ {print $1}' \
		"$root/tests/fuzz/crashes/OPEN")
	for f in $open; do
		if (cd "$d/run" && P2M_FUZZ_STRICT=1 "$bin" -timeout=10 "$root/tests/fuzz/crashes/$f") \
			>"$d/open.log" 2>&1; then
			echo "fuzz-long: $t: the open finding $f no longer fails (tests/fuzz/crashes/OPEN)" >&2
		fi
	done

	if [ "$jobs" -gt 1 ]; then
		# the seeds' coverage, as the single-process run's INITED line gives it
		(cd "$d/run" && "$bin" -runs=0 -max_len=65536 -rss_limit_mb=2048 "$d/corpus") \
			>"$d/seeds.log" 2>&1
	fi
	start=$(date +%s)
	set +e
	if [ "$jobs" -gt 1 ]; then
		(cd "$d/run" && nice -n "$nice" "$bin" -fork="$jobs" -runs="$runs" -max_len=65536 \
			-rss_limit_mb=2048 -timeout=10 -dict="$dict" -artifact_prefix="$d/artifacts/" \
			"$d/corpus") >"$d/run.log" 2>&1
	else
		(cd "$d/run" && nice -n "$nice" "$bin" -runs="$runs" -max_len=65536 -rss_limit_mb=2048 \
			-timeout=10 -dict="$dict" -print_final_stats=1 -artifact_prefix="$d/artifacts/" \
			"$d/corpus") >"$d/run.log" 2>&1
	fi
	rc=$?
	set -e
	secs=$(($(date +%s) - start))
	after=$(size_of "$d/corpus")
	if [ "$jobs" -gt 1 ]; then
		# "#EXECS: cov: C ft: F corp: N exec/s ..." per finished job
		last=$(grep -E '^#[0-9]+: cov: ' "$d/run.log" | tail -n 1 || true)
		execs=$(echo "$last" | sed -n 's/^#\([0-9]*\):.*/\1/p')
		speed=$((${execs:-0} / (secs > 0 ? secs : 1)))
		added=$((${after%%/*} - ${before%%/*}))
		rss="?"
		seeds_cov=$(cov_of "$d/seeds.log" INITED)
		# the fork mode's own "cov" is not edges: replay the corpus the run ended with
		(cd "$d/run" && "$bin" -runs=0 -max_len=65536 -rss_limit_mb=2048 "$d/corpus") \
			>"$d/end.log" 2>&1
		end_cov=$(cov_of "$d/end.log" INITED)
	else
		execs=$(stat_of "$d/run.log" number_of_executed_units)
		speed=$(stat_of "$d/run.log" average_exec_per_sec)
		added=$(stat_of "$d/run.log" new_units_added)
		rss=$(stat_of "$d/run.log" peak_rss_mb)
		seeds_cov=$(cov_of "$d/run.log" INITED)
		end_cov=$(cov_of "$d/run.log" DONE)
	fi
	time_s=$(printf '%dh%02dm%02ds' $((secs / 3600)) $((secs % 3600 / 60)) $((secs % 60)))

	if [ "$rc" -ne 0 ]; then
		artifact=$(find "$d/artifacts" -type f | head -n 1)
		failed="$failed $t"
		echo "fuzz-long: $t FAILED (exit $rc) after ${execs:-?} executions; input: ${artifact:-none}" >&2
		grep -vE '^(INFO|#[0-9]+[[:space:]]+(NEW|REDUCE|pulse|RELOAD|INITED))' "$d/run.log" | tail -n 40 >&2
		echo "| \`fuzz_$t\` | ${execs:-?} | $time_s | ${speed:-?} | $seeds_cov | | | $before | $after | | ${added:-?} | ${rss:-?} | FAILED: $(basename "${artifact:-none}") |" >>"$summary"
		continue
	fi

	# Minimise: the hand-written seeds, then whatever of the run's corpus (the committed
	# libFuzzer-named files included) adds coverage.
	for f in "$committed"/*; do
		is_libfuzzer_name "$(basename "$f")" || cp "$f" "$d/merged/"
	done
	(cd "$d/run" && nice -n "$nice" "$bin" -merge=1 -max_len=65536 -rss_limit_mb=2048 \
		-timeout=10 "$d/merged" "$d/corpus") >"$d/merge.log" 2>&1
	(cd "$d/run" && nice -n "$nice" "$bin" -runs=0 -max_len=65536 -rss_limit_mb=2048 \
		"$d/merged") >"$d/minimised.log" 2>&1
	min_cov=$(cov_of "$d/minimised.log" INITED)
	minimised=$(size_of "$d/merged")
	if [ "${P2M_FUZZ_NO_MERGE:-0}" != 1 ]; then
		for f in "$committed"/*; do
			if is_libfuzzer_name "$(basename "$f")"; then rm -f "$f"; fi
		done
		for f in "$d/merged"/*; do
			if is_libfuzzer_name "$(basename "$f")"; then cp "$f" "$committed/"; fi
		done
	fi
	echo "| \`fuzz_$t\` | $execs | $time_s | $speed | $seeds_cov | $end_cov | $min_cov | $before | $after | $minimised | $added | $rss | ok |" >>"$summary"
	echo "fuzz-long: $t: ok, $execs executions in $time_s, cov/ft $seeds_cov -> $end_cov (minimised $min_cov), corpus $before -> $after -> $minimised"
done

echo
cat "$summary"
echo
echo "fuzz-long: $runs executions per target, one target at a time, $jobs process(es) each (nice -n $nice); work directory $work"
if [ -n "$failed" ]; then
	echo "fuzz-long: FAILED:$failed" >&2
	exit 1
fi
