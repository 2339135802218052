#!/usr/bin/env bash
# Quick start, step 2: the whole test suite. Builds the normal tree and an
# AddressSanitizer+UBSan tree, runs every C test and busted spec (GPU tests
# skip without a device) and ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
scripts/build.sh || { echo "0 passed, 1 failed"; exit 1; }
ICL_BUILD_DIR=build-asan ICL_CMAKE_ARGS="-DICL_SANITIZE=ON -DICL_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo" \
  scripts/build.sh || { echo "0 passed, 1 failed"; exit 1; }
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
[ -f tests/lsan.supp ] && export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp
status=0
ctest --test-dir build -j2 --timeout 900 -V >"$log" 2>&1 || status=1
ctest --test-dir build-asan -L c -j2 --timeout 900 -V 2>&1 | sed 's/^\([0-9]*\): /\1: [asan] /' >>"$log" || status=1
# per-case counts from the TAP-style lines of the C harness and busted
passed=$(grep -cE '^[0-9]+: (\[asan\] )?ok ' "$log")
failed=$(grep -cE '^[0-9]+: (\[asan\] )?not ok ' "$log")
# a test program that died without reporting its cases still counts as a failure
crashed=$(grep -E 'Test +#[0-9]+: .*\*\*\*(Failed|Exception|Timeout)' "$log" | wc -l)
grep -E '^[0-9]+: (\[asan\] )?not ok |\*\*\*(Failed|Exception|Timeout)|ERROR: (Address|Leak)Sanitizer|runtime error:' "$log" | head -50
grep -E '(tests passed|tests failed)' "$log" | sed 's/^/ctest: /'
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=$((crashed > 0 ? crashed : 1)); fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
