#!/usr/bin/env bash
# Runs the integration tests against the binary in $TG_BIN (default
# build/tollgate) and the mock upstream in $TG_MOCK_BIN. Installs the test client (the official openai SDK) from
# the lock file on first use.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export TG_BIN=$(realpath "${TG_BIN:-$here/../../build/tollgate}")
export TG_MOCK_BIN=$(realpath "${TG_MOCK_BIN:-$here/../../build/mock-upstream}")
cd "$here"
if [ ! -d node_modules/openai ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
exec node --test --test-concurrency=1 --test-reporter=spec *.test.mjs
