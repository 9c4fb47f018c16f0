// Loads the N-API addon and describes its surface. Only src/torch talks to this module.
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

/**
 * A live libtorch tensor as the addon addresses it: a numeric handle (slot and generation), so
 * that a disposed or forged handle is an error rather than another tensor.
 */
export type NativeTensor = number;

/** Opaque c10d objects. */
export interface NativeStore {
  readonly __store: unique symbol;
}
export interface NativeGroup {
  readonly __group: unique symbol;
}
export interface NativeWork {
  readonly __work: unique symbol;
}
export interface NativeReducer {
  readonly bucketSizes: number[];
}
export type ReduceOp = "sum" | "max" | "min" | "product" | "avg";

/** What an op argument can be on the JS side; the addon checks it against the op's schema. */
export type NativeArg =
  | number
  | boolean
  | bigint
  | string
  | null
  | undefined
  | readonly (number | boolean)[]
  | readonly (NativeTensor | null | undefined)[];

/** What an op returns: a tensor, several (tuple), a list, or a plain value. */
export type NativeResult = NativeTensor | boolean | string | undefined | NativeResult[];

export interface NativeModule {
  dispose(t: NativeTensor): void;
  disposeMany(handles: Float64Array, count: number): void;
  isLive(t: NativeTensor): boolean;
  liveCount(): number;
  shape(t: NativeTensor): number[];
  strides(t: NativeTensor): number[];
  dim(t: NativeTensor): number;
  numel(t: NativeTensor): number;
  dtype(t: NativeTensor): number;
  device(t: NativeTensor): string;
  isContiguous(t: NativeTensor): boolean;
  item(t: NativeTensor): number | boolean;
  toBuffer(t: NativeTensor): ArrayBuffer;
  copyInto(t: NativeTensor, dst: ArrayBufferView | ArrayBuffer): void;
  /** An ArrayBuffer over bytes of a contiguous CPU tensor's memory (no copy; keeps it alive). */
  bytesView(t: NativeTensor, byteOffset: number, byteLength: number): ArrayBuffer;
  requiresGrad(t: NativeTensor): boolean;
  setRequiresGrad(t: NativeTensor, on: boolean): void;
  gradOf(t: NativeTensor): NativeTensor | undefined;
  setGrad(t: NativeTensor, g: NativeTensor | undefined): void;
  isLeaf(t: NativeTensor): boolean;
  gradFn(t: NativeTensor): string | undefined;
  retainGrad(t: NativeTensor): void;
  sameStorage(a: NativeTensor, b: NativeTensor): boolean;
  version(t: NativeTensor): number;
  fromBuffer(
    data: ArrayBufferView | ArrayBuffer,
    dtype: number,
    shape: readonly number[],
    device?: string,
  ): NativeTensor;
  opHandle(name: string, overload: string): number;
  opSchema(id: number): string;
  call(id: number, ...args: NativeArg[]): NativeResult;
  callVoid(id: number, ...args: NativeArg[]): void;
  callAsync(id: number, ...args: NativeArg[]): Promise<NativeResult>;
  backward(
    tensors: NativeTensor[],
    grads: (NativeTensor | undefined)[] | undefined,
    retainGraph: boolean | undefined,
    createGraph: boolean,
  ): void;
  backwardAsync(
    tensors: NativeTensor[],
    grads: (NativeTensor | undefined)[] | undefined,
    retainGraph: boolean | undefined,
    createGraph: boolean,
  ): Promise<void>;
  grad(
    outputs: NativeTensor[],
    inputs: NativeTensor[],
    gradOutputs: (NativeTensor | undefined)[] | undefined,
    retainGraph: boolean | undefined,
    createGraph: boolean,
    allowUnused: boolean,
  ): (NativeTensor | undefined)[];
  setGradEnabled(on: boolean): boolean;
  isGradEnabled(): boolean;
  setAutocast(device: "cpu" | "cuda", enabled: boolean, dtype: number, entering: boolean): [boolean, number];
  setNumThreads(n: number): void;
  getNumThreads(): number;
  manualSeed(seed: number | bigint): void;
  getRngState(): NativeTensor;
  setRngState(state: NativeTensor): void;
  tuneMalloc(mmapThreshold: number, trimThreshold: number): boolean;
  // c10d (src/distributed wraps these)
  storeCreate(
    host: string,
    port: number,
    isServer: boolean,
    worldSize: number,
    timeoutMs: number,
  ): NativeStore;
  storeSet(store: NativeStore, key: string, value: string): void;
  storeGet(store: NativeStore, key: string): string;
  storeAdd(store: NativeStore, key: string, delta: number, timeoutMs?: number): number;
  groupGloo(
    store: NativeStore,
    rank: number,
    size: number,
    timeoutMs: number,
    hostname?: string,
  ): NativeGroup;
  groupNccl?(store: NativeStore, rank: number, size: number, timeoutMs: number): NativeGroup;
  groupDestroy(group: NativeGroup): void;
  allreduce(group: NativeGroup, tensors: NativeTensor[], op: ReduceOp): NativeWork;
  allgather(group: NativeGroup, outputs: NativeTensor[], input: NativeTensor): NativeWork;
  broadcast(group: NativeGroup, tensors: NativeTensor[], root: number): NativeWork;
  reduceScatter(group: NativeGroup, output: NativeTensor, inputs: NativeTensor[], op: ReduceOp): NativeWork;
  barrier(group: NativeGroup): NativeWork;
  workWait(work: NativeWork, timeoutMs?: number): void;
  workDone(work: NativeWork): boolean;
  workWaitAsync(work: NativeWork, timeoutMs?: number): Promise<void>;
  /** c10d's Reducer (DDP's bucketed, backward-overlapped all-reduce); absent in libtorch >= 2 builds. */
  reducerCreate?(
    group: NativeGroup,
    params: NativeTensor[],
    bucketCapBytes: number,
    firstBucketBytes: number,
    fp16Compress: boolean,
  ): NativeReducer;
  reducerPrepare?(reducer: NativeReducer): void;
  reducerDestroy?(reducer: NativeReducer): void;
  buildInfo(): { torchVersion: string; cuda: boolean; parallelInfo: string };
  // CUDA devices (a CPU build counts none and throws from the rest)
  cudaDeviceCount(): number;
  cudaSetDevice(index: number): void;
  cudaSynchronize(index?: number): void;
  cudaMemory(
    index: number,
    resetPeak: boolean,
  ): { allocated: number; reserved: number; peakAllocated: number };
  zipRecords(path: string): string[];
  zipRead(path: string, names: string[]): ArrayBuffer[];
  writePth(fd: number, pickle: Uint8Array, tensors: NativeTensor[]): void;
}

function addonPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [
    process.env.MFR_NATIVE_ADDON,
    path.resolve(here, "../../native/build/Release/mfr_native.node"),
  ].filter((p): p is string => typeof p === "string" && p.length > 0);
  for (const p of candidates) if (existsSync(p)) return p;
  throw new Error(
    `mfr: the native addon is not built (looked in ${candidates.join(", ")}); run 'npm run bootstrap'`,
  );
}

// Debian 13's libtorch links Open MPI, whose UCX, once loaded, patches mmap and malloc to watch
// memory for RDMA, racing V8's own threads (an occasional SIGSEGV while the addon loads). mfr never
// uses MPI; these keep UCX from hooking anything (they are read when the library loads).
const ucxOff: [string, string][] = [
  ["UCX_MEM_EVENTS", "no"],
  ["UCX_MEM_MALLOC_HOOKS", "no"],
  ["UCX_MEM_MMAP_HOOK_MODE", "none"],
];
for (const [k, v] of ucxOff) process.env[k] ??= v;

export const native: NativeModule = createRequire(import.meta.url)(addonPath()) as NativeModule;
