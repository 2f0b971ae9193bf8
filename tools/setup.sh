#!/usr/bin/env bash
# Installs every build, test and run dependency from Debian 12 packages. Idempotent: packages
# already present are skipped, so running it on every `run`/`test` costs about a second.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git ca-certificates curl
  librocksdb-dev
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libpqxx-dev libpq-dev
  capnproto libcapnp-dev
  libspdlog-dev libfmt-dev
  libgtest-dev googletest libgmock-dev libbenchmark-dev
  libcli11-dev
  postgresql postgresql-contrib postgresql-common
  clang-format clang-tidy
  clang-14 libclang-rt-14-dev llvm-14
  wrk procps bc
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi
