// PyTorch checkpoints (torch.save's zip format), read and written by libtorch's pickler, so
// arcface_torch's backbone.pth and checkpoint files load without Python.
import fs from "node:fs";
import { native, type PthValue } from "../native.ts";
import { Tensor } from "../tensor.ts";

/** Any value a checkpoint may hold, with tensors wrapped. */
export type PthObject =
  Tensor | number | boolean | string | undefined | PthObject[] | Map<PthObject, PthObject>;

function wrapValue(v: PthValue): PthObject {
  if (Array.isArray(v)) return v.map(wrapValue);
  if (v instanceof Map) return new Map([...v.entries()].map(([k, x]) => [wrapValue(k), wrapValue(x)]));
  if (typeof v === "object" && v !== null) return new Tensor(v);
  return v;
}

/** The whole unpickled object of a torch.save file, tensors on the CPU. */
export function loadPthObject(file: string): PthObject {
  if (!fs.existsSync(file)) throw new Error(`${file}: no such file`);
  return wrapValue(native.loadPth(file));
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
    obj = obj.get(key);
  }
  if (!(obj instanceof Map)) throw new Error(`${file}: top-level object is not a dict of tensors`);
  const out = new Map<string, Tensor>();
  for (const [k, v] of obj) {
    if (typeof k !== "string") throw new Error(`${file}: state dict key ${String(k)} is not a string`);
    if (!(v instanceof Tensor)) continue; // e.g. metadata entries saved beside tensors
    out.set(k, v);
  }
  const keys = [...out.keys()];
  if (keys.length > 0 && keys.every((k) => k.startsWith("module."))) {
    return new Map([...out.entries()].map(([k, v]) => [k.slice("module.".length), v]));
  }
  return out;
}

/** Writes a state dict that torch.load reads (a plain dict of tensors). */
export function savePth(file: string, tensors: Map<string, Tensor>): void {
  const names = [...tensors.keys()];
  native.savePth(
    file,
    names,
    names.map((n) => tensors.get(n)!.native),
  );
}
