#!/usr/bin/env bash
# The whole test suite: install dependencies, build with warnings as errors, check formatting,
# and run every test (labels unit, pg, e2e). The pg and e2e tests start their own throwaway
# PostgreSQL cluster under build/test-pg; nothing else needs to be running.
# Extra arguments go to ctest, e.g. tools/test.sh -L unit.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/setup.sh
tools/build.sh -DXTRACE_WERROR=ON -DXTRACE_BUILD_TESTS=ON

unformatted=$(git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run 2>&1 | grep -c warning || true)
if [[ "$unformatted" != 0 ]]; then
  git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run 2>&1 | grep warning | head -n 20
  echo "test: $unformatted clang-format findings (run clang-format -i on the files above)" >&2
  exit 1
fi

cd build
ctest --output-on-failure --timeout 300 -j 2 "$@"
