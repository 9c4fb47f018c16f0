// Autograd entry points and the thread-local switches (grad mode, autocast). Both switches
// are per OS thread in libtorch, so they follow the JS thread that sets them; async ops carry
// the caller's state to the pool thread that runs them.
import { native } from "./native.ts";
import { type DType, dtypeCode } from "./dtype.ts";
import { Tensor, noteBackward } from "./tensor.ts";

export interface BackwardOptions {
  retainGraph?: boolean;
  createGraph?: boolean;
}

/** Accumulates d(sum of tensors·grads)/d(leaf) into every leaf's .grad. */
export function backward(
  tensors: readonly Tensor[],
  grads?: readonly (Tensor | undefined)[],
  o: BackwardOptions = {},
): void {
  noteBackward();
  native.backward(
    tensors.map((t) => t.native),
    grads?.map((g) => g?.native),
    o.retainGraph,
    !!o.createGraph,
  );
}

/** Gradients of outputs with respect to inputs, returned rather than accumulated. */
export function grad(
  outputs: readonly Tensor[],
  inputs: readonly Tensor[],
  gradOutputs?: readonly (Tensor | undefined)[],
  o: BackwardOptions & { allowUnused?: boolean } = {},
): (Tensor | undefined)[] {
  return native
    .grad(
      outputs.map((t) => t.native),
      inputs.map((t) => t.native),
      gradOutputs?.map((g) => g?.native),
      o.retainGraph,
      !!o.createGraph,
      !!o.allowUnused,
    )
    .map((g) => (g === undefined ? undefined : new Tensor(g)));
}

function withGradMode<T>(on: boolean, fn: () => T): T {
  const prev = native.setGradEnabled(on);
  try {
    const r = fn();
    if (r instanceof Promise) {
      throw new Error("noGrad/enableGrad: fn must be synchronous (grad mode is thread-local state)");
    }
    return r;
  } finally {
    native.setGradEnabled(prev);
  }
}

/** Runs fn with gradient recording off. */
export function noGrad<T>(fn: () => T): T {
  return withGradMode(false, fn);
}
export function enableGrad<T>(fn: () => T): T {
  return withGradMode(true, fn);
}
export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}

export interface AutocastOptions {
  /** bf16 on CPU (the only CPU autocast type); f16 or bf16 on CUDA. */
  dtype?: DType;
  device?: "cpu" | "cuda";
  enabled?: boolean;
}

/** Runs fn under automatic mixed precision, as torch.autocast. */
export function autocast<T>(o: AutocastOptions, fn: () => T): T {
  const device = o.device ?? "cpu";
  const dtype = o.dtype ?? (device === "cpu" ? "bf16" : "f16");
  if (device === "cpu" && dtype !== "bf16") throw new Error(`autocast: CPU supports bf16 only, got ${dtype}`);
  const [wasOn, wasDtype] = native.setAutocast(device, o.enabled ?? true, dtypeCode(dtype), true);
  try {
    const r = fn();
    if (r instanceof Promise)
      throw new Error("autocast: fn must be synchronous (autocast is thread-local state)");
    return r;
  } finally {
    native.setAutocast(device, wasOn, wasDtype, false);
  }
}

export function manualSeed(seed: number | bigint): void {
  native.manualSeed(seed);
}
/** The default CPU generator's state (a u8 tensor), for exact resume. */
export function getRngState(): Tensor {
  return new Tensor(native.getRngState());
}
export function setRngState(state: Tensor): void {
  native.setRngState(state.native);
}

export function setNumThreads(n: number): void {
  native.setNumThreads(n);
}
export function getNumThreads(): number {
  return native.getNumThreads();
}

/** Honour MFR_NUM_THREADS, then OMP_NUM_THREADS, at start. */
export function threadsFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  for (const key of ["MFR_NUM_THREADS", "OMP_NUM_THREADS"]) {
    const v = env[key];
    if (v === undefined || v === "") continue;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${key}=${v}: expected a positive integer`);
    return n;
  }
  return undefined;
}
