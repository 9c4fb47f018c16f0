#!/usr/bin/env bash
# Checks mfr against libtorch 2.x, the C++ API that CUDA machines carry with PyTorch 2.x, from a
# Debian 12 host whose own libtorch is 1.13. In Debian 13 (trixie) chroots it
#   cpu:  builds the addon against libtorch-dev 2.6 and runs the test suite on CPU
#         (or only the test files/folders given after the stage);
#   cuda: compiles and links (nothing runs: no GPU needed) the CUDA build against contrib's
#         libtorch-cuda-dev 2.6 with NCCL on (MFR_CUDA, USE_C10D_NCCL), in a second chroot, since
#         libtorch-cuda-dev replaces libtorch-dev.
# Not part of CI: the first run downloads ~4 GB of packages; on a busy 2-core machine the CPU build
# took 6-23 minutes, the CUDA build 3 and the test suite about an hour (docs/gpu.md). Later runs
# reuse the chroots and rebuild only what changed. Run as root.
#
#   bash scripts/check-libtorch2.sh [all|cpu|cuda] [test paths for cpu...]     (default: all)
#
# MFR_TRIXIE_ROOT: the CPU chroot (default /var/lib/mfr-trixie; the CUDA one is beside it, -cuda).
# The Debian mirror is the one this host's apt uses (MFR_DEBIAN_MIRROR overrides it). Native
# builds take /tmp/mfr-native.lock so that only one compiles at a time on a shared machine.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
base=${MFR_TRIXIE_ROOT:-/var/lib/mfr-trixie}
lock=/tmp/mfr-native.lock
t0=$SECONDS
mounted=()

log() { echo "[check-libtorch2 +$((SECONDS - t0))s] $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# The Debian mirror this host's apt uses, from deb822 .sources files or one-line .list files.
mirror() {
  [[ -n ${MFR_DEBIAN_MIRROR:-} ]] && { echo "$MFR_DEBIAN_MIRROR"; return; }
  local f url
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $f ]] || continue
    url=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i } /^deb / { print ($2 ~ /^\[/) ? $3 : $2 }' "$f" |
      grep -E '/debian/?$' | grep -v security | head -1)
    [[ -n $url ]] && { echo "${url%/}"; return; }
  done
  die "no Debian mirror found in /etc/apt (set MFR_DEBIAN_MIRROR)"
}

cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
}
bind() { # bind SRC DST [ro]
  mkdir -p "$2"
  mount --bind "$1" "$2"
  mounted+=("$2")
  [[ ${3:-} == ro ]] && mount -o remount,bind,ro "$2"
  return 0
}
in_root() { # in_root ROOT CMD...
  local r=$1
  shift
  chroot "$r" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
    LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}

# A trixie chroot with main, contrib and non-free, /proc and /dev, the host's Node binary and
# headers (node-gyp builds offline against --nodedir) and its packages installed.
setup_root() { # setup_root ROOT PACKAGE...
  local r=$1
  shift
  if [[ ! -f $r/.mfr-bootstrapped ]]; then
    command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
    log "debootstrap trixie into $r from $url"
    debootstrap --variant=minbase --components=main,contrib trixie "$r" "$url" >&2
    touch "$r/.mfr-bootstrapped"
  fi
  printf 'Types: deb\nURIs: %s\nSuites: trixie\nComponents: main contrib non-free\nSigned-By: %s\n' \
    "$url" /usr/share/keyrings/debian-archive-keyring.gpg >"$r/etc/apt/sources.list.d/debian.sources"
  rm -f "$r/etc/apt/sources.list"
  # The root a mount point of its own: `ip netns` (the two-node test) makes / a slave mount.
  mountpoint -q "$r" || bind "$r" "$r"
  mountpoint -q "$r/proc" || { mount -t proc proc "$r/proc" && mounted+=("$r/proc"); }
  mountpoint -q "$r/dev" || bind /dev "$r/dev"
  cp /etc/resolv.conf "$r/etc/resolv.conf"
  install -m 755 "$node_bin" "$r/usr/local/bin/node"
  mkdir -p "$r/opt/node/include"
  rm -rf "$r/opt/node/include/node"
  cp -a "$nodedir/include/node" "$r/opt/node/include/node"
  log "installing $* into $r"
  in_root "$r" apt-get update -qq >&2
  in_root "$r" apt-get install -y -qq --no-install-recommends "$@" >&2
}

# The working tree (tracked and untracked, not ignored) at ROOT/mfr, the host's node_modules
# mounted read-only (pure JS plus prebuilt glibc binaries, which trixie's newer glibc runs). The
# chroot's native/build stays between runs, so only changed sources recompile.
sync_tree() { # sync_tree ROOT
  local t=$1/mfr
  # Never delete through the bind mount of the host's node_modules.
  while mountpoint -q "$t/node_modules"; do umount "$t/node_modules"; done
  mkdir -p "$t"
  find "$t" -mindepth 1 -maxdepth 1 ! -name native -exec rm -rf --one-file-system {} +
  find "$t/native" -mindepth 1 -maxdepth 1 ! -name build -exec rm -rf --one-file-system {} + 2>/dev/null || true
  (cd "$repo" && git ls-files -z --cached --others --exclude-standard | grep -zv '^node_modules$' |
    tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -C "$t" -xf -
  bind "$modules" "$t/node_modules" ro
}

# Through scripts/build-native.sh, as the host builds: it skips an up-to-date addon and keeps the
# source hash that `mfr doctor` checks (a bare node-gyp build left the addon "stale" to it).
build() { # build ROOT LABEL : builds the addon in ROOT's tree
  log "building the addon ($2)"
  local tb=$SECONDS
  flock "$lock" chroot "$1" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin \
    LANG=C.UTF-8 MFR_BUILD_JOBS="${MFR_BUILD_JOBS:-2}" MFR_NODEDIR=/opt/node \
    bash /mfr/scripts/build-native.sh >&2
  log "built in $((SECONDS - tb))s: $(in_root "$1" node -p 'JSON.stringify(require("/mfr/native/build/Release/mfr_native.node").buildInfo())' 2>/dev/null ||
    echo "(not loadable here)")"
}

version() { in_root "$1" dpkg-query -W -f='${Version}' "$2"; }

stage_cpu() { # stage_cpu [test paths...]
  local r=$base rc tt
  # python3-torch, iproute2 and chromium: what the bootstrap installs for the interop, two-node
  # and browser tests.
  setup_root "$r" libtorch-dev libgloo-dev libopenblas0-pthread python3-onnx python3-torch iproute2 chromium g++ \
    make python3 ca-certificates
  sync_tree "$r"
  build "$r" "libtorch-dev $(version "$r" libtorch-dev), CPU"
  tt=$SECONDS
  log "running the test suite on CPU${*:+: $*}"
  set +e
  in_root "$r" bash -c 'cd /mfr && MFR_TEST_CONCURRENCY=${0} bash scripts/run-tests.sh "$@"' \
    "${MFR_TEST_CONCURRENCY:-1}" "$@" >"$r/tmp/mfr-tests.log" 2>&1
  rc=$?
  set -e
  grep -E '^not ok' "$r/tmp/mfr-tests.log" >&2 || true
  tail -n 9 "$r/tmp/mfr-tests.log" >&2
  log "test suite: exit $rc in $((SECONDS - tt))s (full log: $r/tmp/mfr-tests.log)"
  ((rc == 0)) || die "the test suite failed against libtorch 2.x"
}

stage_cuda() {
  local r=$base-cuda
  # Gloo comes in its CUDA build here; CUDA's headers (cuBLAS, cuSPARSE... via ATen/cuda) from non-free.
  if ! setup_root "$r" libtorch-cuda-dev libnccl-dev libgloo-cuda-dev nvidia-cuda-dev g++ make python3; then
    # contrib's nvidia-cudnn fetches cuDNN from NVIDIA in its postinst, which a machine that only
    # reaches Debian's mirrors cannot. Nothing here runs cuDNN (headers are all a compile needs),
    # so that step is skipped and the rest configured.
    [[ -f $r/var/lib/dpkg/info/nvidia-cudnn.postinst ]] || die "installing the CUDA packages failed"
    log "nvidia-cudnn could not download cuDNN; configuring without it"
    printf '#!/bin/sh\nexit 0\n' >"$r/var/lib/dpkg/info/nvidia-cudnn.postinst"
    in_root "$r" dpkg --configure -a >&2
  fi
  log "libtorch-cuda-dev $(version "$r" libtorch-cuda-dev), libnccl-dev $(version "$r" libnccl-dev)"
  sync_tree "$r"
  build "$r" "libtorch-cuda-dev $(version "$r" libtorch-cuda-dev), CUDA + NCCL"
  local flags
  flags=$(in_root "$r" bash -c 'cd /mfr/native && node torch-config.cjs defines')
  [[ $flags == *MFR_CUDA=1*USE_C10D_NCCL* ]] || die "the CUDA build did not define MFR_CUDA and USE_C10D_NCCL ($flags)"
  local syms
  syms=$(in_root "$r" nm -DC /mfr/native/build/Release/mfr_native.node)
  [[ $syms == *"c10d::ProcessGroupNCCL"* && $syms == *"c10::cuda::set_device"* ]] ||
    die "the addon references neither ProcessGroupNCCL nor c10::cuda"
  log "CUDA build: compiled and linked with $flags; links $(in_root "$r" ldd /mfr/native/build/Release/mfr_native.node |
    grep -oE 'lib(torch_cuda|c10_cuda|nccl|cudart)[^ ]*' | sort -u | tr '\n' ' ')"
}

main() {
  [[ $(id -u) -eq 0 ]] || die "run as root (debootstrap, chroot and mounts need it)"
  local what=${1:-all}
  (($#)) && shift
  case $what in all | cpu | cuda) ;; *) die "unknown stage '$what' (all, cpu or cuda)" ;; esac
  url=$(mirror)
  node_bin=$(command -v node)
  nodedir=$(npm config get nodedir 2>/dev/null || true)
  [[ -f $nodedir/include/node/node_api.h ]] || nodedir=/usr
  [[ -f $nodedir/include/node/node_api.h ]] || die "no Node headers under $nodedir/include/node"
  modules=$(readlink -f "$repo/node_modules")
  [[ -d $modules/node-gyp ]] || die "no node_modules with node-gyp at $repo/node_modules (npm ci first)"
  trap cleanup EXIT
  [[ $what == cuda ]] || stage_cpu "$@"
  [[ $what == cpu ]] || stage_cuda
  log "passed ($what) in $((SECONDS - t0))s"
}

# All of the script is read before anything runs, so editing it mid-run is safe.
main "$@"
