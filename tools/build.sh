#!/usr/bin/env bash
# Configures (once) and builds into ./build with Ninja and ccache. Extra arguments go to CMake's
# configure step, e.g. tools/build.sh -DXTRACE_WERROR=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -f build/build.ninja || $# -gt 0 ]]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
fi
cmake --build build -j "$(nproc)"
