// Loads the N-API addon and describes its surface. Only src/torch talks to this module.
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

/** A libtorch tensor held by the addon. Every method throws a JS Error once disposed. */
export interface NativeTensor {
  dispose(): void;
  isDisposed(): boolean;
  shape(): number[];
  strides(): number[];
  dim(): number;
  numel(): number;
  dtype(): number;
  device(): string;
  isContiguous(): boolean;
  item(): number | boolean;
  toBuffer(): ArrayBuffer;
  copyInto(dst: ArrayBufferView | ArrayBuffer): void;
  requiresGrad(): boolean;
  setRequiresGrad(on: boolean): void;
  grad(): NativeTensor | undefined;
  setGrad(g: NativeTensor | undefined): void;
  isLeaf(): boolean;
  gradFn(): string | undefined;
  retainGrad(): void;
  sameStorage(other: NativeTensor): boolean;
  dataPtr(): bigint;
  version(): number;
}

/** What an op argument can be on the JS side; the addon checks it against the op's schema. */
export type NativeArg =
  | NativeTensor
  | number
  | boolean
  | bigint
  | string
  | null
  | undefined
  | readonly (number | boolean)[]
  | readonly (NativeTensor | null | undefined)[];

/** What an op returns: a tensor, several (tuple), a list, or a plain value. */
export type NativeResult = NativeTensor | number | boolean | string | undefined | NativeResult[];

export interface NativeModule {
  NativeTensor: new () => NativeTensor;
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
  buildInfo(): { torchVersion: string; cuda: boolean; parallelInfo: string };
  zipRecords(path: string): string[];
  zipRead(path: string, names: string[]): ArrayBuffer[];
  savePth(path: string, names: string[], tensors: NativeTensor[]): void;
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

export const native: NativeModule = createRequire(import.meta.url)(addonPath()) as NativeModule;
