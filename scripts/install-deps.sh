#!/usr/bin/env bash
# Installs the Debian packages tollgate needs, and only those. Idempotent:
# packages already installed are left alone, and nothing is done when all are.
#
#   scripts/install-deps.sh            build + run dependencies
#   scripts/install-deps.sh --test     also what the tests need
#   scripts/install-deps.sh --fuzz     also clang: libFuzzer (make fuzz) and
#                                      clang-format (make format-check)
#   scripts/install-deps.sh --check    exit 0 if build + run deps are present
#   scripts/install-deps.sh --check --test
set -euo pipefail

build_pkgs=(gcc make pkg-config libevent-dev libssl-dev libyaml-dev
            libjsmn-dev ca-certificates)
test_pkgs=(libcriterion-dev curl valgrind logrotate prometheus)
fuzz_pkgs=(clang libclang-rt-14-dev clang-format)

want=("${build_pkgs[@]}")
check_only=0
for arg in "$@"; do
  case "$arg" in
    --test) want+=("${test_pkgs[@]}") ;;
    --fuzz) want+=("${fuzz_pkgs[@]}") ;;
    --check) check_only=1 ;;
    *) echo "usage: $0 [--test] [--fuzz] [--check]" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$p")
done
# The integration tests are Node scripts (node:test and the official openai
# SDK); any Node 18+ will do, Debian's or one already on the machine.
if [[ " $* " == *" --test "* ]] && ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if ((${#missing[@]} == 0)); then
  exit 0
fi
if ((check_only)); then
  echo "missing: ${missing[*]}" >&2
  exit 1
fi

sudo=()
if ((EUID != 0)); then
  command -v sudo >/dev/null || { echo "need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
