#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# run-tests.sh — installs what is missing, builds, and runs the tests:
#   1. the whole suite (C, stress, soak, examples, docs, Python and GJS
#      bindings) in build/;
#   2. the C and stress tests under valgrind (the 'valgrind' test setup);
#   3. everything again built with AddressSanitizer and UBSan in build-asan/
#      (introspection off: the interpreters are not built with ASan);
#   4. the soak tests (threads, faults) and the stress tests (the model drops
#      references on a worker thread) under ThreadSanitizer in build-tsan/;
#   5. the libFuzzer targets, built with clang in build-fuzz/, for a bounded
#      time each.
# It goes on after a failure, ends with the line "N passed, N failed"
# counted over all runs, and exits non-zero if anything failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source tools/deps.sh

iops_ensure_packages "${IOPS_BUILD_DEPS[@]}" "${IOPS_TEST_DEPS[@]}" "${IOPS_BENCH_DEPS[@]}" \
  "${IOPS_BRIDGE_DEPS[@]}"

passed=0
failed=0
logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT

# summary_count LOG KEY: the number on meson test's "KEY: N" summary line.
summary_count ()
{
  local n
  n=$(sed -n "s/^$2:[[:space:]]*\([0-9][0-9]*\).*/\1/p" "$1" | tail -n 1)
  echo "${n:-0}"
}

# build STEP DIR [OPTION...]: configures and compiles DIR; a failure counts
# as one failed test and returns 1.
build ()
{
  local step=$1 dir=$2
  shift 2
  echo "==> $step: building $dir"
  if iops_meson_setup "$dir" "$@" && meson compile -C "$dir"; then
    return 0
  fi
  echo "==> $step: build FAILED"
  failed=$((failed + 1))
  return 1
}

# run_tests STEP DIR [MESON TEST OPTION...]: runs meson test and adds its
# results to the totals.
run_tests ()
{
  local step=$1 dir=$2 log rc=0 ok bad
  shift 2
  log="$logdir/$step.log"
  echo "==> $step: meson test -C $dir $*"
  meson test -C "$dir" --no-rebuild --print-errorlogs "$@" 2>&1 | tee "$log" || rc=$?

  ok=$(summary_count "$log" "Ok")
  bad=$(( $(summary_count "$log" "Fail") + $(summary_count "$log" "Timeout") +
          $(summary_count "$log" "Unexpected Pass") ))
  # A run that failed without naming a failing test still failed.
  if (( rc != 0 && bad == 0 )); then
    bad=1
  fi
  echo "==> $step: $ok passed, $bad failed"
  passed=$((passed + ok))
  failed=$((failed + bad))
}

start=$SECONDS

# Every bridge is required here: a missing client library fails the build.
bridges=(-Dbridge_hiredis=enabled -Dbridge_curl=enabled -Dbridge_cares=enabled
         -Dbridge_mosquitto=enabled)

if build suite build -Dtests=true -Dintrospection=enabled -Ddocs=enabled -Dvapi=enabled \
     "${bridges[@]}"; then
  run_tests suite build
  run_tests valgrind build --setup=valgrind --suite c --suite stress --suite bridges
fi

if build asan build-asan -Dtests=true -Dintrospection=disabled \
     -Db_sanitize=address,undefined -Db_lundef=false; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  G_SLICE=always-malloc \
    run_tests asan build-asan
fi

# ThreadSanitizer over the soak tests (threads hammering stop_watching) and
# the stress tests (references dropped on a worker while the context runs).
if build tsan build-tsan -Dtests=true -Dintrospection=disabled \
     -Ddocs=disabled -Dvapi=disabled -Dgtk_demo=disabled -Db_sanitize=thread; then
  TSAN_OPTIONS='halt_on_error=1 second_deadlock_stack=1' \
  G_SLICE=always-malloc \
    run_tests tsan build-tsan --suite soak --suite stress
fi

# libFuzzer needs clang: the fuzz targets run for a bounded time each.
if CC=clang build fuzz build-fuzz -Dtests=true -Dintrospection=disabled \
     -Ddocs=disabled -Dvapi=disabled -Dgtk_demo=disabled; then
  run_tests fuzz build-fuzz --suite libfuzzer
fi

echo "==> all runs took $((SECONDS - start)) s"
echo "$passed passed, $failed failed"
(( failed == 0 ))
