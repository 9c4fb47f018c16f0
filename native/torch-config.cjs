// Prints compiler/linker flags for libtorch, for binding.gyp's command expansions.
// The libtorch folder comes from MFR_LIBTORCH (a folder with include/ and lib/, such as
// .../site-packages/torch of a CUDA PyTorch install); without it, Debian's libtorch-dev layout.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const root = process.env.MFR_LIBTORCH;
const what = process.argv[2];

function debian() {
  const lib = fs.existsSync("/usr/lib/x86_64-linux-gnu") ? "/usr/lib/x86_64-linux-gnu" : "/usr/lib";
  return {
    include: ["/usr/include", "/usr/include/torch/csrc/api/include"],
    libdir: lib,
    // contrib's libtorch-cuda-dev (Debian 13) puts libtorch_cuda.so beside the CPU libraries; its
    // CUDA and NCCL headers are in /usr/include already.
    cuda: fs.existsSync(path.join(lib, "libtorch_cuda.so")),
    abi: 1,
  };
}

// CUDA's and NCCL's headers for a pip-installed PyTorch, which ships neither: the nvidia-* wheels
// beside it (site-packages/nvidia/<package>/include, or nvidia/cu<N>/include), else the toolkit
// (CUDA_HOME, /usr/local/cuda).
function cudaIncludes(torchDir) {
  const found = [];
  const nvidia = path.join(torchDir, "..", "nvidia");
  if (fs.existsSync(nvidia)) {
    for (const pkg of fs.readdirSync(nvidia)) {
      const inc = path.join(nvidia, pkg, "include");
      if (["cuda_runtime_api.h", "nccl.h"].some((h) => fs.existsSync(path.join(inc, h)))) found.push(inc);
    }
  }
  for (const home of [process.env.CUDA_HOME, process.env.CUDA_PATH, "/usr/local/cuda"]) {
    if (home && fs.existsSync(path.join(home, "include", "cuda_runtime_api.h"))) {
      found.push(path.join(home, "include"));
      break;
    }
  }
  return found;
}

function custom(dir) {
  const lib = path.join(dir, "lib");
  if (!fs.existsSync(path.join(dir, "include"))) {
    throw new Error(`MFR_LIBTORCH=${dir}: no include/ folder there`);
  }
  const cuda = fs.existsSync(path.join(lib, "libtorch_cuda.so"));
  // The C++ ABI libtorch was built with is recorded in its CMake config.
  let abi = 1;
  const cfg = path.join(dir, "share/cmake/Torch/TorchConfig.cmake");
  if (fs.existsSync(cfg)) {
    const m = /_GLIBCXX_USE_CXX11_ABI=(\d)/.exec(fs.readFileSync(cfg, "utf8"));
    if (m) abi = Number(m[1]);
  }
  return {
    include: [
      path.join(dir, "include"),
      path.join(dir, "include/torch/csrc/api/include"),
      ...(cuda ? cudaIncludes(dir) : []),
    ],
    libdir: lib,
    cuda,
    abi,
  };
}

const cfg = root ? custom(root) : debian();
// See compat/torch/csrc/distributed/autograd/context/context.h.
const distContext = "torch/csrc/distributed/autograd/context/context.h";
if (!cfg.include.some((dir) => fs.existsSync(path.join(dir, distContext)))) {
  cfg.include.push(path.join(__dirname, "compat"));
}
const libs = ["-ltorch", "-ltorch_cpu", "-lc10"];
if (cfg.cuda) libs.push("-ltorch_cuda", "-lc10_cuda");

switch (what) {
  case "include":
    console.log(cfg.include.join(" "));
    break;
  case "defines":
    console.log(
      [
        `_GLIBCXX_USE_CXX11_ABI=${cfg.abi}`,
        "USE_C10D_GLOO",
        ...(cfg.cuda ? ["MFR_CUDA=1", "USE_C10D_NCCL"] : []),
      ].join(" "),
    );
    break;
  case "ldflags":
    console.log([`-L${cfg.libdir}`, `-Wl,-rpath,${cfg.libdir}`, "-Wl,--no-as-needed", ...libs].join(" "));
    break;
  case "std":
    // libtorch 1.x builds as C++17; recent 2.x releases need C++20 headers.
    console.log(`-std=${process.env.MFR_CXX_STD ?? (root ? "c++20" : "c++17")}`);
    break;
  default:
    throw new Error(`torch-config: unknown query ${what}`);
}
