// A safe unpickler: Python's pickle machine for the binary opcodes (protocols 2–5), where every
// GLOBAL must be on the caller's allowlist and REDUCE/BUILD only run the caller's own handlers.
// Nothing from the file is ever executed. It reads torch.save's data.pkl (OrderedDict, tensor
// rebuilds, persistent storages) and InsightFace's .bin verification sets (lists of bytes).
// No npm package offers an allowlisting unpickler, and libtorch 1.13's lacks opcodes Python emits.

/** A Python value as the unpickler returns it (tuples become arrays, dicts Maps, None null). */
export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleValue[]
  | Map<PickleValue, PickleValue>
  | Set<PickleValue>
  | PickleGlobal
  | object;

/** A reference to an allowlisted Python global, e.g. collections.OrderedDict. */
export class PickleGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

export interface UnpickleOptions {
  /** Where the bytes came from, for error messages. */
  source: string;
  /** Globals that may appear, by "module.name", each with what calling it (REDUCE/NEWOBJ) returns. */
  globals?: Record<string, ((args: PickleValue[]) => PickleValue) | null>;
  /** Resolves BINPERSID ids (torch.save's storages). Without it persistent ids are refused. */
  persistentLoad?: (pid: PickleValue) => PickleValue;
}

/** The globals every data pickle may use: dicts and bytes as Python 2 and 3 write them. */
export const DATA_GLOBALS: Record<string, (args: PickleValue[]) => PickleValue> = {
  "collections.OrderedDict": () => new Map(),
  // Python 3 pickles bytes at protocol 2 as _codecs.encode(latin-1 text, "latin1").
  "_codecs.encode": (args) => {
    const [text, enc] = args;
    if (typeof text !== "string" || (enc !== "latin1" && enc !== "latin-1")) {
      throw new Error("_codecs.encode: only latin1 text is accepted");
    }
    return Uint8Array.from(text, (c) => c.charCodeAt(0));
  },
  "builtins.bytearray": (args) => (args[0] instanceof Uint8Array ? args[0] : new Uint8Array()),
  "__builtin__.set": (args) => new Set(Array.isArray(args[0]) ? args[0] : []),
  "builtins.set": (args) => new Set(Array.isArray(args[0]) ? args[0] : []),
};

export function unpickle(input: Uint8Array, opts: UnpickleOptions): PickleValue {
  const src = opts.source;
  // A plain Uint8Array view, so that slices of a Buffer come out as Uint8Arrays too.
  const bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = new TextDecoder("utf-8");
  const latin1 = new TextDecoder("latin1");
  let pos = 0;
  const stack: PickleValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PickleValue>();

  const fail = (msg: string): never => {
    throw new Error(`${src}: pickle ${msg} (at byte ${pos})`);
  };
  const need = (n: number): void => {
    if (pos + n > bytes.byteLength) fail("is truncated");
  };
  const u8 = (): number => (need(1), bytes[pos++]!);
  const u16 = (): number => (need(2), (pos += 2), view.getUint16(pos - 2, true));
  const u32 = (): number => (need(4), (pos += 4), view.getUint32(pos - 4, true));
  const i32 = (): number => (need(4), (pos += 4), view.getInt32(pos - 4, true));
  const u64 = (): number => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(bytes.byteLength)) fail("declares a length longer than the file");
    return Number(v);
  };
  const take = (n: number): Uint8Array => {
    need(n);
    pos += n;
    return bytes.slice(pos - n, pos);
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail("is truncated inside a text line");
    const s = latin1.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = (): PickleValue => {
    if (stack.length === 0) fail("pops from an empty stack");
    return stack.pop()!;
  };
  const top = (): PickleValue => {
    if (stack.length === 0) fail("reads an empty stack");
    return stack[stack.length - 1]!;
  };
  const popMark = (): PickleValue[] => {
    const m = marks.pop();
    if (m === undefined) fail("has no MARK to pop to");
    return stack.splice(m!);
  };
  const resolveGlobal = (module: string, name: string): PickleGlobal => {
    const q = `${module}.${name}`;
    if (!opts.globals || !(q in opts.globals))
      fail(`refers to global '${q}', which is not allowed (refusing to run code from a file)`);
    return new PickleGlobal(module, name);
  };
  const call = (fn: PickleValue, args: PickleValue): PickleValue => {
    if (!(fn instanceof PickleGlobal)) fail("calls something that is not an allowed global");
    const impl = opts.globals?.[(fn as PickleGlobal).qualified];
    if (!impl) fail(`calls '${(fn as PickleGlobal).qualified}', which is allowed only as a value`);
    return impl!(Array.isArray(args) ? args : [args]);
  };
  const setItems = (target: PickleValue, items: PickleValue[]): void => {
    if (!(target instanceof Map)) fail("sets items on a non-dict");
    for (let i = 0; i + 1 < items.length; i += 2)
      (target as Map<PickleValue, PickleValue>).set(items[i]!, items[i + 1]!);
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        u8();
        break;
      case 0x95: // FRAME
        u64();
        break;
      case 0x2e: // STOP
        return pop();
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x29: // EMPTY_TUPLE
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        break;
      case 0x74: // TUPLE
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: {
        const b = pop();
        stack.push([pop(), b]);
        break;
      }
      case 0x87: {
        const c = pop();
        const b = pop();
        stack.push([pop(), b, c]);
        break;
      }
      case 0x64: {
        // DICT
        const m = new Map<PickleValue, PickleValue>();
        setItems(m, popMark());
        stack.push(m);
        break;
      }
      case 0x91: // FROZENSET
        stack.push(new Set(popMark()));
        break;
      case 0x61: {
        // APPEND
        const v = pop();
        const l = top();
        if (!Array.isArray(l)) fail("appends to a non-list");
        (l as PickleValue[]).push(v);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const l = top();
        if (!Array.isArray(l)) fail("appends to a non-list");
        for (const v of items) (l as PickleValue[]).push(v);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: // SETITEMS
        {
          const items = popMark();
          setItems(top(), items);
        }
        break;
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof Set)) fail("adds items to a non-set");
        for (const v of items) (s as Set<PickleValue>).add(v);
        break;
      }
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88:
        stack.push(true);
        break;
      case 0x89:
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
      case 0x8b: {
        // LONG4
        const n = op === 0x8a ? u8() : u32();
        const b = take(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
        if (n > 0 && b[n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
        stack.push(
          v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v,
        );
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x58: // BINUNICODE
        stack.push(text.decode(take(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text.decode(take(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(text.decode(take(u64())));
        break;
      case 0x42: // BINBYTES
      case 0x54: // BINSTRING (Python 2 str: bytes)
        stack.push(take(u32()));
        break;
      case 0x43: // SHORT_BINBYTES
      case 0x55: // SHORT_BINSTRING
        stack.push(take(u8()));
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        stack.push(take(u64()));
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const k = op === 0x68 ? u8() : u32();
        if (!memo.has(k)) fail(`reads memo ${k}, never stored`);
        stack.push(memo.get(k)!);
        break;
      }
      case 0x63: {
        // GLOBAL
        const module = line();
        stack.push(resolveGlobal(module, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string") fail("STACK_GLOBAL needs two strings");
        stack.push(resolveGlobal(module as string, name as string));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        stack.push(call(pop(), args));
        break;
      }
      case 0x81: {
        // NEWOBJ
        const args = pop();
        stack.push(call(pop(), args));
        break;
      }
      case 0x62: {
        // BUILD: state for an object. Dicts (OrderedDict's _metadata) ignore it.
        pop();
        if (!(top() instanceof Map)) fail("BUILD on an object other than a dict is not allowed");
        break;
      }
      case 0x51: {
        // BINPERSID
        if (!opts.persistentLoad) fail("uses persistent ids, not allowed here");
        stack.push(opts.persistentLoad!(pop()));
        break;
      }
      case 0x30: // POP
        if (marks.length > 0 && marks[marks.length - 1] === stack.length) marks.pop();
        else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      default:
        fail(`opcode 0x${op.toString(16)} is not supported`);
    }
  }
}
