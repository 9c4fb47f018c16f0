// PyTorch checkpoints (torch.save's zip format): libtorch reads the archive, our safe unpickler
// interprets data.pkl with only the globals a checkpoint needs (no code from the file runs),
// so arcface_torch's backbone.pth and training checkpoints load without Python.
import fs from "node:fs";
import { native } from "../native.ts";
import { type DType, ELEMENT_SIZE, dtypeCode } from "../dtype.ts";
import { O } from "../ops.ts";
import { Tensor, wrap } from "../tensor.ts";
import { writeAtomic } from "./atomic.ts";
import { DATA_GLOBALS, PickleGlobal, type PickleValue, unpickle } from "./pickle.ts";
import { PickleCall, type PickleOut, PicklePersistent, pickle } from "./pickler.ts";

/** Any value a checkpoint may hold: tensors, numbers, strings, bytes, lists, dicts (Maps). */
export type PthObject = PickleValue;

const STORAGE_DTYPES: Record<string, DType> = {
  FloatStorage: "f32",
  DoubleStorage: "f64",
  HalfStorage: "f16",
  BFloat16Storage: "bf16",
  LongStorage: "i64",
  IntStorage: "i32",
  ShortStorage: "i16",
  CharStorage: "i8",
  ByteStorage: "u8",
  BoolStorage: "bool",
};

class Storage {
  constructor(
    readonly key: string,
    readonly flat: Tensor,
  ) {}
}

const isCount = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;

function asList(v: PickleValue, what: string, file: string): number[] {
  if (!Array.isArray(v) || !v.every(isCount))
    throw new Error(`${file}: tensor ${what} ${JSON.stringify(v)} is not a list of non-negative ints`);
  return v as number[];
}

/**
 * A tensor's view of its storage, checked to lie inside it (libtorch would refuse too, but in
 * words that name neither the file nor the storage).
 */
function checkView(file: string, s: Storage, size: number[], stride: number[], offset: PickleValue): number {
  if (!isCount(offset)) throw new Error(`${file}: tensor offset ${String(offset)} is not a non-negative int`);
  if (size.length !== stride.length)
    throw new Error(
      `${file}: tensor size [${size.join(", ")}] and stride [${stride.join(", ")}] differ in rank`,
    );
  const numel = s.flat.shape[0]!;
  const last = size.includes(0) ? -1 : size.reduce((a, n, i) => a + (n - 1) * stride[i]!, offset);
  if (last >= numel)
    throw new Error(
      `${file}: tensor of size [${size.join(", ")}], stride [${stride.join(", ")}], offset ${offset} ` +
        `reaches element ${last} of storage data/${s.key}, which holds ${numel}`,
    );
  return offset;
}

/** The whole unpickled object of a torch.save file, tensors on the CPU. */
export function loadPthObject(file: string): PthObject {
  if (!fs.existsSync(file)) throw new Error(`${file}: no such file`);
  const magic = Buffer.alloc(2);
  const fd = fs.openSync(file, "r");
  fs.readSync(fd, magic, 0, 2, 0);
  fs.closeSync(fd);
  if (magic.toString("latin1") !== "PK") {
    throw new Error(
      `${file} is not a zip-format torch.save file (legacy format: re-save it with PyTorch >= 1.6)`,
    );
  }
  const records = native.zipRecords(file);
  if (!records.includes("data.pkl")) throw new Error(`${file}: archive has no data.pkl`);
  const [pkl] = native.zipRead(file, ["data.pkl"]);
  const storages = new Map<string, Storage>();
  const globals: Record<string, ((args: PickleValue[]) => PickleValue) | null> = {
    ...DATA_GLOBALS,
    "torch._utils._rebuild_tensor_v2": ([storage, offset, size, stride]) => {
      if (!(storage instanceof Storage))
        throw new Error(`${file}: tensor rebuilt from something other than a storage`);
      const sizes = asList(size!, "size", file);
      const strides = asList(stride!, "stride", file);
      const at = checkView(file, storage, sizes, strides, offset!);
      return wrap(native.call(O.asStrided, storage.flat.native, sizes, strides, at));
    },
    "torch._utils._rebuild_parameter": ([data]) => data!,
    // .pth files from earlier mfr versions (libtorch's own pickler) tag their dict.
    "torch.jit._pickle.restore_type_tag": ([value]) => value!,
    "torch._utils._rebuild_parameter_with_state": ([data]) => data!,
  };
  for (const name of Object.keys(STORAGE_DTYPES)) globals[`torch.${name}`] = null;
  const persistentLoad = (pid: PickleValue): PickleValue => {
    if (!Array.isArray(pid) || pid[0] !== "storage" || !(pid[1] instanceof PickleGlobal)) {
      throw new Error(`${file}: unsupported persistent id ${JSON.stringify(pid)}`);
    }
    const [, type, key, , numel] = pid as [string, PickleGlobal, string, string, number];
    const dtype = STORAGE_DTYPES[type.name];
    if (dtype === undefined) throw new Error(`${file}: unsupported storage type ${type.qualified}`);
    let s = storages.get(key);
    if (s === undefined) {
      if (typeof key !== "string" || !isCount(numel))
        throw new Error(`${file}: storage ${JSON.stringify(key)} has no valid element count`);
      if (!records.includes(`data/${key}`)) throw new Error(`${file}: archive has no data/${key}`);
      const [bytes] = native.zipRead(file, [`data/${key}`]);
      const need = numel * ELEMENT_SIZE[dtype];
      if (bytes!.byteLength < need)
        throw new Error(
          `${file}: storage data/${key} claims ${numel} ${type.name} elements (${need} bytes) but holds ${bytes!.byteLength} bytes`,
        );
      s = new Storage(key, new Tensor(native.fromBuffer(bytes!.slice(0, need), dtypeCode(dtype), [numel])));
      storages.set(key, s);
    }
    return s;
  };
  try {
    return unpickle(new Uint8Array(pkl!), { source: `${file}:data.pkl`, globals, persistentLoad });
  } finally {
    // The rebuilt tensors are views that keep what they need of each storage alive.
    for (const s of storages.values()) s.flat.dispose();
  }
}

/**
 * A flat state dict from a .pth/.pt file: the top-level dict of tensors, or the dict under
 * `key` (e.g. arcface_torch's "state_dict_backbone"). A "module." prefix left by DDP is removed.
 */
export function loadPthStateDict(file: string, key?: string): Map<string, Tensor> {
  let obj = loadPthObject(file);
  if (key !== undefined) {
    if (!(obj instanceof Map) || !obj.has(key))
      throw new Error(`${file}: no entry '${key}' at the top level`);
    obj = obj.get(key)!;
  }
  if (!(obj instanceof Map)) throw new Error(`${file}: top-level object is not a dict of tensors`);
  const out = new Map<string, Tensor>();
  for (const [k, v] of obj) {
    if (typeof k !== "string") throw new Error(`${file}: state dict key ${String(k)} is not a string`);
    if (v instanceof Tensor) out.set(k, v);
  }
  const keys = [...out.keys()];
  if (keys.length > 0 && keys.every((k) => k.startsWith("module."))) {
    return new Map([...out.entries()].map(([k, v]) => [k.slice("module.".length), v]));
  }
  return out;
}

const STORAGE_OF = Object.fromEntries(Object.entries(STORAGE_DTYPES).map(([name, d]) => [d, name])) as Record<
  DType,
  string
>;
const REBUILD = new PickleGlobal("torch._utils", "_rebuild_tensor_v2");

/**
 * Writes a state dict as torch.save(state_dict) does (an OrderedDict of tensors, each with a
 * storage of its own), so torch.load reads it, with weights_only too. Replaces `file` atomically.
 */
export function savePth(file: string, tensors: Map<string, Tensor>): void {
  try {
    const state = new Map<string, PickleOut>(
      [...tensors].map(([name, t], i) => {
        const storage = new PicklePersistent([
          "storage",
          new PickleGlobal("torch", STORAGE_OF[t.dtype]),
          String(i),
          "cpu",
          t.numel,
        ]);
        const strides = t.shape.map((_, d) => t.shape.slice(d + 1).reduce((a, n) => a * n, 1));
        // (storage, offset, size, stride, requires_grad, backward_hooks)
        return [name, new PickleCall(REBUILD, [storage, 0, t.shape, strides, false, new Map()])];
      }),
    );
    const bytes = pickle(state);
    writeAtomic(file, (fd) =>
      native.writePth(
        fd,
        bytes,
        [...tensors.values()].map((t) => t.native),
      ),
    );
  } catch (e) {
    throw new Error(`${file}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}
