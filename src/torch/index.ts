// mfr's tensor library: the public face of the libtorch addon.
import { native } from "./native.ts";
import { readFileSync } from "node:fs";
import { threadsFromEnv } from "./autograd.ts";
import { heapTuningEnabled } from "./heap.ts";

export {
  Tensor,
  callOp,
  wrap,
  wrapMany,
  isDType,
  type Scalar,
  type Device,
  type IndexSpec,
} from "./tensor.ts";
export { type DType, ELEMENT_SIZE, isFloating, AMP_MODES, type AmpMode } from "./dtype.ts";
export * from "./creation.ts";
export * from "./functional.ts";
export * from "./autograd.ts";
export * from "./device.ts";
export { scope, scopeSize } from "./scope.ts";
export { opId } from "./ops.ts";
export {
  saveSafetensors,
  saveSafetensorsHashed,
  loadSafetensors,
  readSafetensorsMetadata,
  type SafetensorsFile,
  type TensorMap,
} from "./io/safetensors.ts";
export { saveNpy, loadNpy } from "./io/npy.ts";
export { loadPthObject, loadPthStateDict, savePth, type PthObject } from "./io/pth.ts";
export { removeStaleTemps, writeAll, writeAtomic } from "./io/atomic.ts";
export { readJsonFile, sha256File, verifyChecksums } from "./io/checksums.ts";
export { checkEnvironment, type Check, type CheckStatus } from "./environment.ts";
export { unpickle, PickleGlobal, DATA_GLOBALS, type PickleValue, type UnpickleOptions } from "./io/pickle.ts";

/** The mfr version (package.json's), written into exported models and run.json. */
export function mfrVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version?: string;
  };
  return pkg.version ?? "unknown";
}

/** Facts about the libtorch the addon was built against. */
export function buildInfo(): { torchVersion: string; cuda: boolean; parallelInfo: string } {
  return native.buildInfo();
}

const threads = threadsFromEnv();
if (threads !== undefined) native.setNumThreads(threads);

// libtorch's CPU allocator does not cache: with glibc's defaults every activation above 128 KiB
// is mmapped and unmapped each step, its pages faulted in and zeroed again (about a third of a
// conv step's time on this machine). Keeping blocks up to 32 MiB on the heap and not trimming it
// below 1 GiB of free space removes most of that; heap.ts has the rest of the heap's settings.
if (heapTuningEnabled()) native.tuneMalloc(32 << 20, 1 << 30);
