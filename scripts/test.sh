#!/usr/bin/env bash
# The test command: installs what the tests need, type-checks, then runs every test with vitest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
npm test
