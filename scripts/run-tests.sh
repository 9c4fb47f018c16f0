#!/usr/bin/env bash
# Runs the test files under the given folders (default: test/) with Node's test runner.
# Node 20's --test does not expand globs itself.
set -euo pipefail
cd "$(dirname "$0")/.."
roots=("$@")
((${#roots[@]})) || roots=(test)
mapfile -t files < <(find "${roots[@]}" -name '*.test.ts' | sort)
if ((${#files[@]} == 0)); then
  echo "no test files under ${roots[*]}" >&2
  exit 1
fi
exec node --import tsx --test --test-concurrency="${MFR_TEST_CONCURRENCY:-2}" "${files[@]}"
