#!/usr/bin/env bash
# scripts/test.sh -- THE test command: installs what is missing, builds the
# extension and migctl, and runs every test through ctest (GoogleTest unit
# tests, the pg_regress suite and the integration tests, each against a
# sandbox primary + streaming standby of its own). Ends with ctest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
make -s -j2 >/dev/null
make -s install >/dev/null
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2 >/dev/null
ctest --test-dir build --output-on-failure "$@"
