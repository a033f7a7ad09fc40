#!/bin/sh
# Fuzz the parsers that take outside input (device frames, MQTT commands, the INI
# configuration, the virtual Moonraker's JSON-RPC, the dial-in handshake and token, the
# printer-source payloads) with libFuzzer under ASan+UBSan, each for SECONDS, starting
# from a copy of the corpus in tests/fuzz/corpus (new inputs go to a temporary directory,
# never into the repo; tools/fuzz-long.sh is the long run that grows that corpus).
# Inputs saved in tests/fuzz/crashes/<target>-*.bin (past findings) are replayed first;
# those listed in tests/fuzz/crashes/OPEN (found in code elsewhere, not fixed yet) must
# still fail with P2M_FUZZ_STRICT=1.
# Exits non-zero on any crash, leak, timeout or out-of-memory; the failing input is kept
# and its path printed. Needs clang and libclang-rt-14-dev (tools/install-deps.sh).
# Usage: tools/run-fuzz.sh [SECONDS]   (default 60 per target)
# Environment: P2M_FUZZ_BUILD_DIR (default build-fuzz), P2M_FUZZ_TARGETS (default
# "frame command config moonraker dialin printer api esp_image"), P2M_FUZZ_KEEP=1 keeps the work
# directory even on success.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)

seconds=${1:-60}
case $seconds in
'' | *[!0-9]*)
	echo "usage: $0 [SECONDS]" >&2
	exit 2
	;;
esac
build=${P2M_FUZZ_BUILD_DIR:-build-fuzz}
targets=${P2M_FUZZ_TARGETS:-frame command config moonraker dialin printer api esp_image}

cc=$(command -v clang || command -v clang-14 || true)
if [ -z "$cc" ]; then
	echo "run-fuzz: clang not found (run tools/install-deps.sh)" >&2
	exit 1
fi
CC=$cc cmake -S . -B "$build" -DP2M_FUZZ=ON -DP2M_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
fuzzers=""
for t in $targets; do
	fuzzers="$fuzzers fuzz_$t"
done
# shellcheck disable=SC2086 # one word per target
cmake --build "$build" -j 2 --target $fuzzers

symbolizer=$(command -v llvm-symbolizer || true)
[ -x /usr/lib/llvm-14/bin/llvm-symbolizer ] && symbolizer=/usr/lib/llvm-14/bin/llvm-symbolizer
if [ -n "$symbolizer" ]; then
	ASAN_SYMBOLIZER_PATH=$symbolizer
	export ASAN_SYMBOLIZER_PATH
fi
# A smaller quarantine keeps the RSS of long runs well under -rss_limit_mb.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:quarantine_size_mb=64}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS UBSAN_OPTIONS

work=$(mktemp -d "${TMPDIR:-/tmp}/p2m-fuzz.XXXXXX")
failed=""
summary=""

for t in $targets; do
	bin=$root/$build/tests/fuzz/fuzz_$t
	dict=$root/tests/fuzz/$t.dict
	log=$work/$t.log
	mkdir -p "$work/$t/corpus" "$work/$t/artifacts" "$work/$t/run"
	cp "$root/tests/fuzz/corpus/$t/"* "$work/$t/corpus/"
	seeds=$(find "$work/$t/corpus" -type f | wc -l)

	# Past findings: each must now run clean.
	crashes=$(find "$root/tests/fuzz/crashes" -type f -name "$t-*" 2>/dev/null | sort || true)
	if [ -n "$crashes" ]; then
		# shellcheck disable=SC2086 # file names have no blanks (checked in by us)
		if ! (cd "$work/$t/run" && "$bin" -timeout=10 -rss_limit_mb=512 $crashes) \
			>"$work/$t.replay.log" 2>&1; then
			echo "run-fuzz: $t: a saved input in tests/fuzz/crashes fails again:" >&2
			grep -E 'Running:|ERROR|runtime error|SUMMARY|FUZZ PROPERTY' "$work/$t.replay.log" >&2 || true
			failed="$failed $t"
			summary="$summary
fuzz_$t: FAILED replaying tests/fuzz/crashes (log: $work/$t.replay.log)"
			continue
		fi
	fi
	# Open findings (tests/fuzz/crashes/OPEN): without their exemption they still fail.
	open=$(awk -v p="$t-" 'index($1, p) == 1 && $1 ~ /\.bin$/ {print $1}' \
		"$root/tests/fuzz/crashes/OPEN")
	for f in $open; do
		if (cd "$work/$t/run" && P2M_FUZZ_STRICT=1 "$bin" -timeout=10 -rss_limit_mb=512 \
			"$root/tests/fuzz/crashes/$f") >"$work/$t.open.log" 2>&1; then
			echo "run-fuzz: $t: the open finding $f no longer fails: remove it from" \
				"tests/fuzz/crashes/OPEN and its exemption (P2M_FUZZ_STRICT)" >&2
			failed="$failed $t"
			summary="$summary
fuzz_$t: FAILED: the open finding $f is fixed; update tests/fuzz/crashes/OPEN"
			continue 2
		fi
	done

	# Run from an empty directory: a relative path in a fuzzed config names nothing.
	set +e
	(cd "$work/$t/run" && "$bin" -max_total_time="$seconds" -rss_limit_mb=512 \
		-max_len=65536 -timeout=10 -dict="$dict" -print_final_stats=1 \
		-artifact_prefix="$work/$t/artifacts/" "$work/$t/corpus") >"$log" 2>&1
	rc=$?
	set -e
	# libFuzzer's last status line: "#N DONE cov: C ft: F corp: U/S ... exec/s: E rss: R"
	done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
	execs=$(grep -E '^stat::number_of_executed_units:' "$log" | awk '{print $2}' || true)
	speed=$(grep -E '^stat::average_exec_per_sec:' "$log" | awk '{print $2}' || true)
	added=$(grep -E '^stat::new_units_added:' "$log" | awk '{print $2}' || true)
	rss=$(grep -E '^stat::peak_rss_mb:' "$log" | awk '{print $2}' || true)
	cov=$(echo "$done_line" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$done_line" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	corp=$(echo "$done_line" | sed -n 's/.* corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p')
	if [ "$rc" -eq 0 ] && [ -n "$done_line" ]; then
		summary="$summary
fuzz_$t: ok ${seconds}s, ${execs:-?} execs (${speed:-?}/s), cov ${cov:-?}, ft ${ft:-?}, corpus ${seeds} seeds -> ${corp:-?} (+${added:-?} new), peak rss ${rss:-?} MB"
	else
		failed="$failed $t"
		artifact=$(find "$work/$t/artifacts" -type f | head -n 1)
		summary="$summary
fuzz_$t: FAILED (exit $rc) after ${execs:-?} execs; input: ${artifact:-none}; log: $log"
		echo "run-fuzz: $t failed; the end of its log:" >&2
		grep -vE '^(INFO|#[0-9]+[[:space:]]+(NEW|REDUCE|pulse|RELOAD|INITED))' "$log" | tail -n 60 >&2
	fi
done

echo "fuzz summary:$summary"
if [ -n "$failed" ]; then
	echo "run-fuzz: FAILED:$failed; inputs and logs kept in $work" >&2
	echo "run-fuzz: reproduce with: $build/tests/fuzz/fuzz_<target> <input>" \
		"(P2M_FUZZ_VERBOSE=1 shows the daemon's log)" >&2
	exit 1
fi
if [ "${P2M_FUZZ_KEEP:-0}" = 1 ]; then
	echo "run-fuzz: work directory kept: $work"
else
	rm -rf "$work"
fi
