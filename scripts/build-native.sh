#!/usr/bin/env bash
# Builds native/ with node-gyp when its sources, or the libtorch it targets, changed since the
# last build (a hash of both is kept beside the built addon). With --check it builds nothing and
# says whether the addon is up to date (exit 0) or missing/stale (exit 1): \`mfr doctor\` asks it,
# so the staleness rule lives here only.
set -euo pipefail
cd "$(dirname "$0")/../native"

stamp=build/Release/.mfr-source-hash
hash=$( (cat binding.gyp torch-config.cjs src/* compat/torch/csrc/distributed/autograd/context/*; echo "${MFR_LIBTORCH:-debian}") | sha256sum | cut -d' ' -f1)
if [[ -f build/Release/mfr_native.node && -f $stamp && $(cat "$stamp") == "$hash" ]]; then
  [[ ${1:-} == --check ]] && echo "up to date"
  exit 0
fi
if [[ ${1:-} == --check ]]; then
  [[ -f build/Release/mfr_native.node ]] && echo "stale: native/ sources or the libtorch they target changed since the build" || echo "not built"
  exit 1
fi
echo "[build-native] building the libtorch addon (a few minutes)" >&2
# MFR_NODEDIR: Node's headers where npm is not there to say (scripts/check-libtorch2.sh's chroots).
nodedir=${MFR_NODEDIR:-$(npm config get nodedir 2>/dev/null || true)}
flags=()
[[ -n "$nodedir" && "$nodedir" != "undefined" && -d "$nodedir/include/node" ]] && flags+=(--nodedir="$nodedir")
# configure + build rather than rebuild: only what changed recompiles, and a failed compile leaves
# the previous addon in place for whatever is using it. (Configure reruns the libtorch lookup.)
../node_modules/.bin/node-gyp configure "${flags[@]}" >&2
../node_modules/.bin/node-gyp build -j "${MFR_BUILD_JOBS:-2}" "${flags[@]}" >&2
echo "$hash" >"$stamp"
