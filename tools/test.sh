#!/usr/bin/env bash
# The whole test suite, as CI runs it: install dependencies, then these stages in order, each in a
# build directory of its own (docs/operations.md, "Sanitizers and fuzzing"):
#   normal  build/       warnings as errors, clang-format check, every test (unit, pg, e2e)
#   asan    build-asan/  the same tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   tsan    build-tsan/  the same tests under ThreadSanitizer
#   fuzz    build-fuzz/  every libFuzzer harness of tests/fuzz for XTRACE_FUZZ_SECONDS (20)
# XTRACE_TEST_STAGES picks some, e.g. XTRACE_TEST_STAGES=normal tools/test.sh -L unit. Extra
# arguments go to the ctest runs of the normal, asan and tsan stages. The pg and e2e tests start
# their own throwaway PostgreSQL cluster; nothing else needs to be running.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# tsan is not yet in the default run: Debian's RocksDB is not instrumented, and a report whose
# RocksDB side TSan cannot restore (its write stack lost from the history) still slips past the
# suppressions now and then. Run it with XTRACE_TEST_STAGES=tsan.
stages=${XTRACE_TEST_STAGES:-normal fuzz asan}
jobs=$(nproc)

tools/setup.sh

elapsed() { echo "$(($(date +%s) - $1))s"; }

check_format() {
  local unformatted
  unformatted=$(git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run 2>&1 | grep -c warning || true)
  if [[ "$unformatted" != 0 ]]; then
    git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run 2>&1 | grep warning | head -n 20
    echo "test: $unformatted clang-format findings (run clang-format -i on the files above)" >&2
    exit 1
  fi
}

# configure_and_build <dir> <target> <cmake options...>
configure_and_build() {
  local dir=$1 target=$2
  shift 2
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXTRACE_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs" --target "$target"
}

# run_sanitized <dir> <ctest args...>: every process of the run (tests, the server and the tools
# they start) writes sanitizer reports into <dir>/sanitizer-reports, so a finding in a child
# process fails the stage even when the test that started it passed.
run_sanitized() {
  local dir=$1
  shift
  local reports=$root/$dir/sanitizer-reports
  rm -rf "$reports" && mkdir -p "$reports"
  local status=0
  (
    cd "$dir"
    export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1"
    # print_suppressions=0: a clean run writes no report file (the list of suppressions used would
    # otherwise be one, and any file there fails the stage).
    export LSAN_OPTIONS="suppressions=$root/tests/sanitizers/lsan.supp:print_suppressions=0"
    export UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1"
    export TSAN_OPTIONS="log_path=$reports/tsan:halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/sanitizers/tsan.supp"
    ctest --output-on-failure --timeout 600 -j 2 "$@"
  ) || status=$?
  if compgen -G "$reports/*" >/dev/null; then
    for f in "$reports"/*; do
      echo "=== sanitizer report $f"
      cat "$f"
    done
    echo "test: sanitizer reports in $reports" >&2
    status=1
  fi
  return $status
}

for stage in $stages; do
  start=$(date +%s)
  case $stage in
    normal)
      configure_and_build build all -DXTRACE_BUILD_TESTS=ON
      check_format
      built=$(elapsed "$start")
      (cd build && ctest --output-on-failure --timeout 300 -j 2 "$@")
      ;;
    asan)
      configure_and_build build-asan all -DXTRACE_BUILD_TESTS=ON -DXTRACE_SANITIZE=address,undefined
      built=$(elapsed "$start")
      run_sanitized build-asan "$@"
      ;;
    tsan)
      configure_and_build build-tsan all -DXTRACE_BUILD_TESTS=ON -DXTRACE_SANITIZE=thread
      built=$(elapsed "$start")
      run_sanitized build-tsan "$@"
      ;;
    fuzz)
      configure_and_build build-fuzz xtrace_fuzzers -DXTRACE_BUILD_TESTS=OFF -DXTRACE_FUZZ=ON \
        -DXTRACE_SANITIZE=address,undefined -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
        -DXTRACE_FUZZ_SECONDS="${XTRACE_FUZZ_SECONDS:-20}" -DXTRACE_FUZZ_SEED="${XTRACE_FUZZ_SEED:-1}"
      built=$(elapsed "$start")
      # llvm-symbolizer of the same release, for readable stacks in crash reports.
      (cd build-fuzz && PATH=/usr/lib/llvm-14/bin:$PATH ctest --output-on-failure -L fuzz -j 2)
      ;;
    *)
      echo "test: unknown stage '$stage' in XTRACE_TEST_STAGES (normal, asan, tsan, fuzz)" >&2
      exit 2
      ;;
  esac
  echo "test: stage $stage passed (build ${built}, total $(elapsed "$start"))"
done
