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
# The tests run with the heap settings every mfr process gets (src/torch/heap.ts: ~30% faster
# training steps on VMs where page faults are slow).
GLIBC_TUNABLES="$(node --import tsx --input-type=module \
  -e 'import { heapEnv } from "./src/torch/heap.ts"; process.stdout.write(heapEnv().GLIBC_TUNABLES ?? "")')"
export GLIBC_TUNABLES
exec node --import tsx --test --test-concurrency="${MFR_TEST_CONCURRENCY:-2}" "${files[@]}"
