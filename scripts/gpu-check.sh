#!/usr/bin/env bash
# The GPU check, for a machine with one NVIDIA GPU, CUDA's compiler and PyTorch 2.x but no network
# and perhaps no Node (docs/gpu.md). In one run, within 10 minutes:
#   1. builds the addon against that PyTorch's libtorch (MFR_LIBTORCH=<site-packages/torch>),
#      compiling binding.gyp's target directly (no node-gyp, no headers to download);
#   2. runs test-gpu/ (a CUDA step equals the CPU step, fp16 loss scaling skips an overflowing
#      step, NCCL collectives and the head on CUDA tensors);
#   3. benchmarks training side by side with PyTorch (bench/gpu_train.ts: r100, batch 128, bf16
#      and fp16, a 1 M-class head at sampleRate 1.0 and 0.2, images/s and peak GPU memory).
#
#   bash scripts/gpu-check.sh --prepare   on a machine with Node 20 and node_modules: writes gpu-kit/
#                                         (Node, its N-API headers, tsx and node-addon-api; ~40 MiB)
#   bash scripts/gpu-check.sh [--no-bench] on the GPU machine, with gpu-kit/ beside the tree
#
# MFR_PYTHON: the Python with PyTorch (default python3); GPU_CHECK_STEPS: timed steps per
# benchmark case (default 10); MFR_BUILD_JOBS: parallel compiles (default: all cores).
set -euo pipefail
cd "$(dirname "$0")/.."
kit=gpu-kit
t0=$SECONDS
log() { echo "[gpu-check +$((SECONDS - t0))s] $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# --- --prepare: what the GPU machine lacks, in at most 64 MiB --------------------------------
if [[ ${1:-} == --prepare ]]; then
  command -v node >/dev/null || die "--prepare needs Node on this machine"
  [[ -d node_modules/tsx && -d node_modules/node-addon-api ]] || die "--prepare needs node_modules (npm ci)"
  rm -rf "$kit"
  mkdir -p "$kit/include/node"
  xz -T0 -6 -c "$(command -v node)" >"$kit/node.xz"
  # node-addon-api needs only Node's N-API headers, not the whole of include/node.
  nodedir=$(npm config get nodedir 2>/dev/null || true)
  [[ -f $nodedir/include/node/node_api.h ]] || nodedir=/usr
  cp "$nodedir"/include/node/{node_api,node_api_types,js_native_api,js_native_api_types}.h "$kit/include/node/"
  # tsx and node-addon-api with every package they need (the test and bench code imports only
  # node: modules beside these), as one archive: esbuild's binary is there twice, hard-linked.
  mapfile -t pkgs < <(node -e '
    const fs = require("fs"), path = require("path");
    const seen = new Set();
    const visit = (name) => {
      const dir = path.join("node_modules", name);
      if (seen.has(name) || !fs.existsSync(dir)) return;
      seen.add(name);
      const pj = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
      for (const d of Object.keys({ ...pj.dependencies, ...pj.optionalDependencies })) visit(d);
    };
    ["tsx", "node-addon-api"].forEach(visit);
    console.log([...seen].map((n) => "node_modules/" + n).join("\n"));')
  tar -C "$(readlink -f node_modules)/.." -cf - "${pkgs[@]}" | xz -T0 -6 >"$kit/node_modules.tar.xz"
  log "wrote $kit/: $(du -sh "$kit" | cut -f1) (${pkgs[*]#node_modules/})"
  (($(du -sm "$kit" | cut -f1) < 64)) || die "$kit/ is over 64 MiB"
  exit 0
fi
bench=1
[[ ${1:-} == --no-bench ]] && bench=0

# --- Node: this machine's if it is 20 or later, else the kit's --------------------------------
work=$(mktemp -d /tmp/mfr-gpu-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
if command -v node >/dev/null && (($(node -p 'process.versions.node.split(".")[0]') >= 20)); then
  nodedir=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
else
  [[ -f $kit/node.xz ]] || die "no Node 20 here and no $kit/node.xz (run --prepare where Node is, carry $kit/)"
  mkdir -p "$work/bin"
  xz -dc "$kit/node.xz" >"$work/bin/node"
  chmod +x "$work/bin/node"
  export PATH="$work/bin:$PATH"
  nodedir=$PWD/$kit
fi
[[ -f $nodedir/include/node/node_api.h ]] || nodedir=$PWD/$kit
[[ -f $nodedir/include/node/node_api.h ]] || die "no Node N-API headers (include/node/node_api.h)"
if [[ ! -d node_modules/tsx ]]; then
  [[ -f $kit/node_modules.tar.xz ]] || die "no node_modules/tsx and no $kit/node_modules.tar.xz"
  rm -rf node_modules
  xz -dc "$kit/node_modules.tar.xz" | tar -xf -
fi
log "node $(node --version), headers from $nodedir"

# --- PyTorch and the GPU ------------------------------------------------------------------------
py=${MFR_PYTHON:-python3}
MFR_LIBTORCH=$("$py" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
export MFR_LIBTORCH
"$py" -c 'import sys, torch; print(f"torch {torch.__version__}, CUDA {torch.version.cuda}:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU visible"); sys.exit(0 if torch.cuda.is_available() else 1)' >&2 ||
  die "PyTorch sees no CUDA device"
# libtorch_cuda finds the nvidia-* wheels' libraries through its RUNPATH; the path helps where not.
nvlibs=$(find "$MFR_LIBTORCH/../nvidia" -maxdepth 3 -type d -name lib 2>/dev/null | tr '\n' ':')
export LD_LIBRARY_PATH="${nvlibs}${LD_LIBRARY_PATH:-}"

# --- 1. the addon, binding.gyp's target compiled directly ---------------------------------------
log "building the addon against $MFR_LIBTORCH"
NODEDIR=$nodedir "$py" - <<'PY'
import ast, concurrent.futures as cf, os, re, shlex, subprocess, sys, time

os.chdir("native")
target = ast.literal_eval(re.sub(r"#[^\n]*", "", open("binding.gyp").read()))["targets"][0]

def expand(items):
    # gyp's command expansions: <!(cmd) is one value, <!@(cmd) a whitespace-split list.
    out = []
    for v in items:
        m = re.fullmatch(r"<!(@?)\((.*)\)", v)
        if not m:
            out.append(v)
            continue
        text = subprocess.run(m.group(2), shell=True, check=True, capture_output=True, text=True).stdout.strip()
        out += text.split() if m.group(1) else [text]
    return out

cxx = os.environ.get("CXX", "g++")
incs = expand(target["include_dirs"]) + [os.path.join(os.environ["NODEDIR"], "include", "node")]
flags = (["-fPIC", "-pthread"] + expand(target["cflags_cc"]) + [f"-D{d}" for d in expand(target["defines"])]
         + [f"-I{i}" for i in incs])
os.makedirs("build/Release/obj", exist_ok=True)
print("defines:", " ".join(expand(target["defines"])), file=sys.stderr)

def compile(src):
    obj = os.path.join("build/Release/obj", os.path.basename(src) + ".o")
    t = time.time()
    r = subprocess.run([cxx, *flags, "-c", src, "-o", obj], capture_output=True, text=True)
    if r.returncode:
        sys.stderr.write(r.stderr[-20000:])
        raise SystemExit(f"compiling {src} failed")
    print(f"  {src}: {time.time() - t:.0f}s", file=sys.stderr)
    return obj

jobs = int(os.environ.get("MFR_BUILD_JOBS", os.cpu_count() or 4))
with cf.ThreadPoolExecutor(jobs) as ex:
    objs = list(ex.map(compile, target["sources"]))
link = [cxx, "-shared", "-pthread", "-o", "build/Release/mfr_native.node", *objs, *expand(target["ldflags"])]
subprocess.run(link, check=True)
PY
node --import tsx --input-type=module -e '
  const { buildInfo, cudaDeviceCount } = await import("./src/torch/index.ts");
  const b = buildInfo();
  console.error(`addon: libtorch ${b.torchVersion}, cuda ${b.cuda}, ${cudaDeviceCount()} GPU(s) visible`);
  if (!b.cuda || cudaDeviceCount() < 1) process.exit(1);' || die "the addon does not see the GPU"

# --- 2. the GPU tests ---------------------------------------------------------------------------
log "test-gpu/"
MFR_TEST_CONCURRENCY=1 bash scripts/run-tests.sh test-gpu | tee "$work/tests.log" | grep -E '^(not )?ok|^# (tests|pass|fail|skipped)' >&2 ||
  true
grep -q '^# fail 0' "$work/tests.log" && grep -q '^# skipped 0' "$work/tests.log" || die "GPU tests failed (or were not applicable)"

# --- 3. the benchmark, side by side with PyTorch -----------------------------------------------
if ((bench)); then
  log "training benchmark, mfr vs PyTorch"
  node --import tsx bench/gpu_train.ts --python "$py" --steps "${GPU_CHECK_STEPS:-10}"
fi
log "passed"
