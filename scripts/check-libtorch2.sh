#!/usr/bin/env bash
# Checks mfr against libtorch 2.x, the C++ API that CUDA machines carry with PyTorch 2.x, from a
# Debian 12 host whose own libtorch is 1.13. In a Debian 13 (trixie) chroot it
#   1. builds the addon against libtorch-dev 2.6 and runs the test suite on CPU, then
#   2. compiles (and links; nothing runs) the CUDA build against contrib's libtorch-cuda-dev 2.6
#      with NCCL on (MFR_CUDA, USE_C10D_NCCL).
# Not part of CI: the first run downloads ~3 GB of packages and takes about an hour on a 2-core
# machine (docs/gpu.md has measured times); later runs reuse the chroot. Run as root.
#
#   bash scripts/check-libtorch2.sh [cpu|cuda|all]      (default: all)
#
# MFR_TRIXIE_ROOT: the chroot (default /var/lib/mfr-trixie). The Debian mirror is the one this
# host's apt already uses (MFR_DEBIAN_MIRROR overrides it). Native builds take /tmp/mfr-native.lock
# so that only one compiles at a time on a shared machine.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
root=${MFR_TRIXIE_ROOT:-/var/lib/mfr-trixie}
what=${1:-all}
lock=/tmp/mfr-native.lock
t0=$SECONDS

log() { echo "[check-libtorch2 +$((SECONDS - t0))s] $*" >&2; }
die() {
  log "error: $*"
  exit 1
}
[[ $(id -u) -eq 0 ]] || die "run as root (debootstrap, chroot and mounts need it)"
case $what in cpu | cuda | all) ;; *) die "unknown stage '$what' (cpu, cuda or all)" ;; esac

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

mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
bind() { # bind SRC DST [ro]
  mkdir -p "$2"
  mount --bind "$1" "$2"
  mounted+=("$2")
  [[ ${3:-} == ro ]] && mount -o remount,bind,ro "$2"
  return 0
}
in_root() { chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
  LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }

# --- the chroot ---------------------------------------------------------------------------------
url=$(mirror)
if [[ ! -f $root/.mfr-bootstrapped ]]; then
  command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
  log "debootstrap trixie into $root from $url"
  debootstrap --variant=minbase --components=main,contrib trixie "$root" "$url" >&2
  touch "$root/.mfr-bootstrapped"
fi
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $url
Suites: trixie
Components: main contrib non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
rm -f "$root/etc/apt/sources.list"
mountpoint -q "$root/proc" || { mount -t proc proc "$root/proc" && mounted+=("$root/proc"); }
bind /dev "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf"

# Node: the host's binary and headers (node-gyp builds offline against --nodedir), the host's
# node_modules (pure JS plus prebuilt binaries for glibc, which trixie's newer glibc runs).
node_bin=$(command -v node)
nodedir=$(npm config get nodedir 2>/dev/null || true)
[[ -d $nodedir/include/node ]] || nodedir=/usr
[[ -f $nodedir/include/node/node_api.h ]] || die "no Node headers under $nodedir/include/node"
install -m 755 "$node_bin" "$root/usr/local/bin/node"
mkdir -p "$root/opt/node/include"
rm -rf "$root/opt/node/include/node"
cp -a "$nodedir/include/node" "$root/opt/node/include/node"
modules=$(readlink -f "$repo/node_modules")
[[ -d $modules/node-gyp ]] || die "no node_modules with node-gyp at $repo/node_modules (npm ci first)"

# The working tree (tracked and untracked, not ignored), copied so the chroot's build output never
# touches the host's native/build.
sync_tree() {
  # Never delete through the bind mount of the host's node_modules.
  while mountpoint -q "$root/mfr/node_modules"; do umount "$root/mfr/node_modules"; done
  rm -rf --one-file-system "$root/mfr"
  mkdir -p "$root/mfr"
  (cd "$repo" && git ls-files -z --cached --others --exclude-standard | grep -zv '^node_modules$' |
    tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -C "$root/mfr" -xf -
  bind "$modules" "$root/mfr/node_modules" ro
}

apt_in() { # apt_in PACKAGE... : installs into the chroot, updating lists once per run
  if [[ -z ${apt_updated:-} ]]; then
    in_root apt-get update -qq >&2
    apt_updated=1
  fi
  in_root apt-get install -y -qq --no-install-recommends "$@" >&2
}

build() { # build LABEL : builds the addon in the chroot's tree, logging its compiler lines
  log "building the addon ($1)"
  flock "$lock" chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin \
    LANG=C.UTF-8 MFR_BUILD_JOBS="${MFR_BUILD_JOBS:-2}" bash -c \
    'cd /mfr/native && node /mfr/node_modules/node-gyp/bin/node-gyp.js configure --nodedir=/opt/node >&2 &&
     node /mfr/node_modules/node-gyp/bin/node-gyp.js build -j "$MFR_BUILD_JOBS" --nodedir=/opt/node >&2'
}

torch_version() { in_root dpkg-query -W -f='${Version}' "$1"; }

# --- 1. CPU: libtorch-dev 2.x, the test suite -----------------------------------------------------
if [[ $what == cpu || $what == all ]]; then
  log "installing libtorch-dev and the test suite's tools"
  apt_in libtorch-dev libgloo-dev libopenblas0-pthread python3-onnx g++ make python3 git ca-certificates
  log "libtorch-dev $(torch_version libtorch-dev)"
  sync_tree
  tb=$SECONDS
  build "libtorch $(torch_version libtorch-dev), CPU"
  log "CPU build: $((SECONDS - tb))s"
  tt=$SECONDS
  log "running the test suite on CPU"
  set +e
  in_root bash -c "cd /mfr && MFR_TEST_CONCURRENCY=${MFR_TEST_CONCURRENCY:-1} bash scripts/run-tests.sh" \
    >"$root/tmp/mfr-tests.log" 2>&1
  rc=$?
  set -e
  tail -n 12 "$root/tmp/mfr-tests.log" >&2
  log "test suite: exit $rc in $((SECONDS - tt))s (full log: $root/tmp/mfr-tests.log)"
  ((rc == 0)) || die "the test suite failed against libtorch 2.x"
fi

# --- 2. CUDA: libtorch-cuda-dev 2.x with NCCL, compiled only ----------------------------------------
if [[ $what == cuda || $what == all ]]; then
  log "installing libtorch-cuda-dev and libnccl-dev (replaces libtorch-dev)"
  apt_in libtorch-cuda-dev libnccl-dev g++ make python3
  log "libtorch-cuda-dev $(torch_version libtorch-cuda-dev), libnccl-dev $(torch_version libnccl-dev)"
  sync_tree
  tb=$SECONDS
  build "libtorch $(torch_version libtorch-cuda-dev), CUDA + NCCL"
  grep -q MFR_CUDA "$root/mfr/native/build/Release/obj.target/mfr_native/src/dist.o.d" 2>/dev/null ||
    grep -rq 'MFR_CUDA' "$root/mfr/native/build/mfr_native.target.mk" ||
    die "the CUDA build did not define MFR_CUDA"
  log "CUDA build (MFR_CUDA, USE_C10D_NCCL): compiled and linked in $((SECONDS - tb))s"
  in_root ldd /mfr/native/build/Release/mfr_native.node | grep -E 'torch_cuda|c10_cuda|nccl' >&2 || true
fi
log "passed ($what) in $((SECONDS - t0))s"
