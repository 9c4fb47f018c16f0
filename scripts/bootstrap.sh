#!/usr/bin/env bash
# Brings a fresh machine to a state where mfr runs: Debian packages, npm packages, the native
# addon. Each step is skipped when already done, so every npm script can call this first.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "[bootstrap] $*" >&2; }

# 1. Debian packages: libtorch (unless MFR_LIBTORCH names another build), Gloo's headers, onnx.
need=()
if [[ -z "${MFR_LIBTORCH:-}" ]]; then
  dpkg -s libtorch-dev >/dev/null 2>&1 || need+=(libtorch-dev)
fi
dpkg -s libgloo-dev >/dev/null 2>&1 || need+=(libgloo-dev)
# An optimised BLAS: libtorch's matrix products (linear layers, the classification head, pair
# scoring) go through libblas.so.3, which is Debian's reference BLAS until OpenBLAS is installed
# (measured here: 1.5 -> 26 GFLOP/s for a 512x512x4096 product on one thread).
dpkg -s libopenblas0-pthread >/dev/null 2>&1 || need+=(libopenblas0-pthread)
# Python's onnx checker: the export tests run every exported file through it.
dpkg -s python3-onnx >/dev/null 2>&1 || need+=(python3-onnx)
# PyTorch for the interop tests (arcface_torch weights both ways) and the benchmarks' other side.
dpkg -s python3-torch >/dev/null 2>&1 || need+=(python3-torch)
# Chromium: the browser tests open the run report and the verification page in it (puppeteer-core).
dpkg -s chromium >/dev/null 2>&1 || need+=(chromium)
# iproute2's ip: the two-node test joins two network namespaces with a veth pair.
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v make >/dev/null 2>&1 || need+=(make)
command -v g++ >/dev/null 2>&1 || need+=(g++)
if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    log "missing Debian packages: ${need[*]}; run as root or install them: apt-get install ${need[*]}"
    exit 1
  fi
  log "installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq -o DPkg::Lock::Timeout=600
  apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "${need[@]}" >/dev/null
fi

# 2. npm packages, when node_modules is missing or older than the lockfile.
# onnxruntime-node's postinstall would download GPU providers; its CPU binaries ship inside.
export ONNXRUNTIME_NODE_INSTALL=skip
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error >&2
fi

# 3. The native addon, rebuilt only when its sources or the libtorch it builds against change.
bash scripts/build-native.sh
