#!/bin/sh
# The whole test suite on a fresh Debian machine: install, build twice (plain and
# ASan+UBSan), then run the unit tests on both builds and every test on the sanitized one
# (with the RabbitMQ cluster and aedes tests of tests/brokers), then fuzz every parser
# for a short while (tools/run-fuzz.sh), then the Debian package (tools/test-package.sh),
# the arm64 package under qemu-user (tools/test-cross.sh) and the add-on image
# (tools/test-addon-image.sh).
# Usage: tools/run-tests.sh
set -eu
cd "$(dirname "$0")/.."

tools/install-deps.sh
# The servers the tests use: mosquitto is started per test class by the harness; the
# system D-Bus and avahi-daemon (loopback only) are machine-wide, so they start here.
tools/avahi-up.sh --loopback
jobs=$(nproc 2>/dev/null || echo 2)

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DP2M_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$jobs"

ctest --test-dir build --output-on-failure -R '^unit\.'
ctest --test-dir build-asan --output-on-failure -j "$jobs"

# libFuzzer (clang, ASan+UBSan) on every parser of outside input (tests/fuzz), from the
# seed corpus in tests/fuzz; P2M_FUZZ_SECONDS per target.
tools/run-fuzz.sh "${P2M_FUZZ_SECONDS:-60}"

# Debian package: build, lintian, install, run as the unit does, purge (needs root).
bash tools/test-package.sh

# The arm64 package, cross-built with Debian's multiarch: lintian, its unit tests and its
# daemon under qemu-user against the native simulator, mosquitto and avahi-daemon.
bash tools/test-cross.sh --install-deps arm64

# The add-on image: Dockerfile built on a debootstrapped bookworm base with buildah, and
# the add-on's own run script and daemon run in it.
bash tools/test-addon-image.sh --install-deps
