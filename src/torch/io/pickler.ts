// A pickler for the one shape mfr writes: torch.save's data.pkl of a state dict (an OrderedDict of
// tensors rebuilt by torch._utils._rebuild_tensor_v2 from persistent-id storages), at protocol 2
// as torch.save itself writes it. Only globals that PyTorch's weights_only unpickler allows
// (torch.load's default since 2.6) ever appear. No npm package writes Python pickles with
// persistent ids, and libtorch's own pickler tags typed containers with torch.jit globals that
// weights_only refuses; this is the few opcodes the shape needs.
import { PickleGlobal } from "./pickle.ts";

/** A call of an allowed global with positional arguments (GLOBAL, args tuple, REDUCE). */
export class PickleCall {
  constructor(
    readonly fn: PickleGlobal,
    readonly args: readonly PickleOut[],
  ) {}
}

/** A persistent id (BINPERSID): torch.save's reference to a storage record. */
export class PicklePersistent {
  constructor(readonly id: readonly PickleOut[]) {}
}

/**
 * What can be written: integers, floats, strings, booleans, None (null), tuples (arrays),
 * OrderedDicts (Maps, in insertion order), globals, calls and persistent ids.
 */
export type PickleOut =
  | null
  | boolean
  | number
  | string
  | readonly PickleOut[]
  | ReadonlyMap<string, PickleOut>
  | PickleGlobal
  | PickleCall
  | PicklePersistent;

const ORDERED_DICT = new PickleGlobal("collections", "OrderedDict");
// Python's pickler sets dict items in batches of this size.
const BATCH = 1000;

/** The protocol-2 pickle of `value`. */
export function pickle(value: PickleOut): Uint8Array {
  const chunks: Uint8Array[] = [];
  const latin1 = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
  const op = (...bytes: number[]): void => void chunks.push(Uint8Array.from(bytes));
  const u32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];

  const int = (n: number): void => {
    if (n >= 0 && n < 0x100)
      op(0x4b, n); // BININT1
    else if (n >= 0 && n < 0x10000)
      op(0x4d, n & 0xff, n >>> 8); // BININT2
    else if (n >= -0x80000000 && n < 0x80000000)
      op(0x4a, ...u32(n >>> 0)); // BININT
    else {
      // LONG1: little-endian two's complement, as short as the sign allows
      const bytes: number[] = [];
      let v = BigInt(n);
      let sign: number;
      do {
        bytes.push(Number(v & 0xffn));
        v >>= 8n;
        sign = bytes.at(-1)! & 0x80;
      } while (!((v === 0n && sign === 0) || (v === -1n && sign !== 0)));
      op(0x8a, bytes.length, ...bytes);
    }
  };
  const str = (s: string): void => {
    const b = new TextEncoder().encode(s);
    op(0x58, ...u32(b.byteLength)); // BINUNICODE
    chunks.push(b);
  };
  const global = (g: PickleGlobal): void => {
    // GLOBAL: "module\nname\n" (protocol 2 has no STACK_GLOBAL)
    op(0x63);
    chunks.push(latin1(`${g.module}\n${g.name}\n`));
  };
  const tuple = (items: readonly PickleOut[]): void => {
    if (items.length === 0) return op(0x29); // EMPTY_TUPLE
    op(0x28); // MARK
    for (const v of items) put(v);
    op(0x74); // TUPLE
  };
  const call = (fn: PickleGlobal, args: readonly PickleOut[]): void => {
    global(fn);
    tuple(args);
    op(0x52); // REDUCE
  };
  const put = (v: PickleOut): void => {
    if (v === null) op(0x4e);
    else if (typeof v === "boolean") op(v ? 0x88 : 0x89);
    else if (typeof v === "number") {
      if (Number.isSafeInteger(v)) int(v);
      else {
        const b = new Uint8Array(9);
        b[0] = 0x47; // BINFLOAT, big-endian
        new DataView(b.buffer).setFloat64(1, v, false);
        chunks.push(b);
      }
    } else if (typeof v === "string") str(v);
    else if (v instanceof PickleGlobal) global(v);
    else if (v instanceof PickleCall) call(v.fn, v.args);
    else if (v instanceof PicklePersistent) {
      tuple(v.id);
      op(0x51); // BINPERSID
    } else if (v instanceof Map) {
      call(ORDERED_DICT, []);
      const entries = [...(v as ReadonlyMap<string, PickleOut>)];
      for (let i = 0; i < entries.length; i += BATCH) {
        op(0x28); // MARK
        for (const [k, x] of entries.slice(i, i + BATCH)) {
          str(k);
          put(x);
        }
        op(0x75); // SETITEMS
      }
    } else tuple(v as readonly PickleOut[]);
  };

  op(0x80, 2); // PROTO 2
  put(value);
  op(0x2e); // STOP
  return Buffer.concat(chunks);
}
