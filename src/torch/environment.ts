// What this machine gives mfr, as `mfr doctor` shows it: the libtorch the addon runs on (read from
// the loaded libraries, not from the build's guess), CUDA and NCCL, threads, the heap settings of
// heap.ts, whether the addon is older than native/'s sources (scripts/build-native.sh decides,
// so the rule lives in one place), the PyTorch the interop tests and benchmarks compare against,
// and Node. Each fact says whether mfr cannot work without it.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { native } from "./native.ts";
import { HUGE_PAGE_TUNABLE, heapTuningEnabled, startedWithHeapEnv } from "./heap.ts";

export type CheckStatus = "ok" | "warn" | "fail";

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** The Python whose torch the interop tests and benchmarks use (they name it the same way). */
export const REFERENCE_PYTHON = "/usr/bin/python3";
const MIN_NODE_MAJOR = 20;

/** Paths of the shared objects this process has mapped whose file name matches `pattern`. */
function loadedLibraries(pattern: RegExp): string[] {
  let maps: string;
  try {
    maps = fs.readFileSync("/proc/self/maps", "utf8");
  } catch {
    return [];
  }
  const found = new Set<string>();
  for (const line of maps.split("\n")) {
    const file = line.slice(line.indexOf("/"));
    if (line.includes("/") && pattern.test(path.basename(file))) found.add(file);
  }
  return [...found];
}

function libtorch(): Check {
  const info = native.buildInfo();
  const libs = loadedLibraries(/^libtorch_cpu\.so/);
  return {
    name: "libtorch",
    status: "ok",
    detail: `${info.torchVersion} (${info.cuda ? "CUDA" : "CPU"} build) at ${libs[0] ?? "an unknown path"}`,
  };
}

function cuda(): Check[] {
  const info = native.buildInfo();
  if (!info.cuda)
    return [
      {
        name: "CUDA",
        status: "warn",
        detail: "not built in: the addon targets a CPU libtorch (training runs on CPU)",
      },
      { name: "NCCL", status: "warn", detail: "not built in (CPU libtorch): multi-rank runs use Gloo" },
    ];
  const count = native.cudaDeviceCount();
  const nccl = loadedLibraries(/^libnccl\.so/)[0];
  return [
    {
      name: "CUDA",
      status: count > 0 ? "ok" : "warn",
      detail:
        count > 0
          ? `${count} device(s) visible`
          : "built in, but no device visible (driver, CUDA_VISIBLE_DEVICES)",
    },
    {
      name: "NCCL",
      status: count > 0 ? "ok" : "warn",
      detail: `built in${nccl ? ` (${nccl})` : " (linked into libtorch_cuda)"}${count > 0 ? "" : "; no GPU to run it on"}`,
    },
  ];
}

/** The lines of at::get_parallel_info() that say how many threads do what. */
function threads(): Check {
  const info = native.buildInfo().parallelInfo;
  const read = (re: RegExp): string => re.exec(info)?.[1]?.trim() ?? "?";
  const env = ["MFR_NUM_THREADS", "OMP_NUM_THREADS"]
    .filter((k) => process.env[k])
    .map((k) => `${k}=${process.env[k]}`);
  return {
    name: "threads",
    status: "ok",
    detail:
      `intra-op ${read(/get_num_threads\(\) : (\d+)/)}, inter-op ${read(/get_num_interop_threads\(\) : (\d+)/)}, ` +
      `OpenMP max ${read(/omp_get_max_threads\(\) : (\d+)/)}, backend ${read(/ATen parallel backend: (.+)/)}, ` +
      `${read(/hardware_concurrency\(\) : (\d+)/)} hardware threads; ${env.length ? env.join(" ") : "MFR_NUM_THREADS/OMP_NUM_THREADS not set"}`,
  };
}

function heap(): Check {
  if (process.platform !== "linux")
    return { name: "heap", status: "ok", detail: "no glibc tuning off Linux" };
  if (!heapTuningEnabled())
    return {
      name: "heap",
      status: "warn",
      detail: "MFR_MALLOC_TUNING=0: glibc's defaults (slower steps on VMs)",
    };
  let thp = "unknown";
  try {
    thp =
      /\[(\w+)\]/.exec(fs.readFileSync("/sys/kernel/mm/transparent_hugepage/enabled", "utf8"))?.[1] ?? thp;
  } catch {
    // No THP knob (not Linux's sysfs, a container hiding it): say unknown.
  }
  const tunables = process.env.GLIBC_TUNABLES ?? "";
  const started = startedWithHeapEnv();
  return {
    name: "heap",
    // The tunable asks for huge pages through madvise; with THP "never" it does nothing.
    status: started && thp !== "never" ? "ok" : "warn",
    detail:
      `GLIBC_TUNABLES=${tunables || "(unset)"}` +
      (started ? "" : ` (expected ${HUGE_PAGE_TUNABLE}; start mfr through bin/mfr.js)`) +
      `, transparent huge pages: ${thp}, mallopt mmap/trim thresholds raised at load`,
  };
}

function addon(): Check {
  const file = loadedLibraries(/^mfr_native\.node$/)[0] ?? "native/build/Release/mfr_native.node";
  const r = spawnSync("bash", [path.join(root, "scripts/build-native.sh"), "--check"], { encoding: "utf8" });
  const said = (r.stdout || r.stderr || "").trim();
  if (r.status === 0) return { name: "addon", status: "ok", detail: `${file}: ${said}` };
  return {
    name: "addon",
    status: "fail",
    detail: `${file}: ${said || `build check failed (${r.error?.message ?? `exit ${r.status}`})`}; run 'npm run build:native'`,
  };
}

/** The PyTorch of REFERENCE_PYTHON: needed by the interop tests and benchmarks, not by training. */
function pytorch(): Check {
  const r = spawnSync(REFERENCE_PYTHON, ["-c", "import torch; print(torch.__version__, torch.__file__)"], {
    encoding: "utf8",
  });
  if (r.status !== 0) {
    const why = r.error?.message ?? r.stderr.trim().split("\n").at(-1) ?? `exit ${r.status}`;
    return {
      name: "PyTorch",
      status: "warn",
      detail: `${REFERENCE_PYTHON} cannot import torch (${why}): interop tests and benchmarks need python3-torch`,
    };
  }
  const [version = "?", file = "?"] = r.stdout.trim().split(" ");
  // Debian's python3-torch calls itself 1.13.0a0 where its libtorch says 1.13.0: compare releases.
  const release = (v: string): string => /^\d+\.\d+\.\d+/.exec(v)?.[0] ?? v;
  const same = release(version) === release(native.buildInfo().torchVersion);
  return {
    name: "PyTorch",
    status: "ok",
    detail: `${version} at ${path.dirname(file)} (${REFERENCE_PYTHON}; ${same ? "same version as libtorch" : "differs from libtorch's version"})`,
  };
}

function node(): Check {
  const major = Number(process.versions.node.split(".")[0]);
  return {
    name: "Node",
    status: major >= MIN_NODE_MAJOR ? "ok" : "fail",
    detail: `${process.version} at ${process.execPath}${major >= MIN_NODE_MAJOR ? "" : `; mfr needs Node >= ${MIN_NODE_MAJOR}`}`,
  };
}

/** Every check, in the order a reader wants them; "fail" means mfr cannot work as it is. */
export function checkEnvironment(): Check[] {
  return [libtorch(), ...cuda(), threads(), heap(), addon(), pytorch(), node()];
}
