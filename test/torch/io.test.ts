// safetensors, .npy and .pth: round trips, byte layout against the formats' specs, fixtures
// written by PyTorch/NumPy (test/fixtures/torch/make_fixtures.py), and errors on bad files.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as T from "../../src/torch/index.ts";
import { native } from "../../src/torch/native.ts";
import { PickleCall, type PickleOut, pickle } from "../../src/torch/io/pickler.ts";

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), "../fixtures/torch");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-io-"));
const fx = (f: string): string => path.join(fixtures, f);

describe("safetensors", () => {
  test("round-trips every dtype, shape and metadata", () => {
    const tensors = new Map<string, T.Tensor>([
      ["a.f32", T.randn([3, 4])],
      ["b.f16", T.randn([5]).to("f16")],
      ["c.bf16", T.randn([2, 2]).to("bf16")],
      ["d.i64", T.tensor([1, -2, 3], { dtype: "i64" })],
      ["e.u8", T.tensor([0, 255], { dtype: "u8" })],
      ["f.bool", T.tensor([1, 0, 1], { dtype: "bool" })],
      ["g.scalar", T.scalarTensor(3.5, { dtype: "f64" })],
      ["h.empty", T.zeros([0, 4])],
    ]);
    const file = path.join(tmp, "rt.safetensors");
    T.saveSafetensors(file, tensors, { format: "pt", note: "x" });
    const back = T.loadSafetensors(file);
    assert.equal(back.metadata.format, "pt");
    assert.equal(back.metadata.note, "x");
    for (const [k, t] of tensors) {
      const b = back.tensors.get(k)!;
      assert.equal(b.dtype, t.dtype, k);
      assert.deepEqual(b.shape, t.shape, k);
      assert.deepEqual(Buffer.from(b.bytes()), Buffer.from(t.bytes()), k);
    }
  });

  test("file layout follows the spec: u64 LE header size, 8-aligned JSON header, packed data", () => {
    const file = path.join(tmp, "layout.safetensors");
    T.saveSafetensors(file, { w: T.tensor([1, 2, 3], { dtype: "f32" }), i: T.tensor([7], { dtype: "i64" }) });
    const bytes = fs.readFileSync(file);
    const n = Number(bytes.readBigUInt64LE(0));
    assert.equal((8 + n) % 8, 0);
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8")) as Record<
      string,
      { dtype: string; shape: number[]; data_offsets: number[] }
    >;
    // larger elements first: i64 then f32, contiguous offsets
    assert.deepEqual(header.i, { dtype: "I64", shape: [1], data_offsets: [0, 8] });
    assert.deepEqual(header.w, { dtype: "F32", shape: [3], data_offsets: [8, 20] });
    const data = bytes.subarray(8 + n);
    assert.equal(data.length, 20);
    assert.equal(data.readBigInt64LE(0), 7n);
    assert.deepEqual([data.readFloatLE(8), data.readFloatLE(12), data.readFloatLE(16)], [1, 2, 3]);
  });

  test("reads a file assembled by hand from the spec (no mfr checksum)", () => {
    const header = Buffer.from(
      JSON.stringify({ x: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }) + "  ",
    );
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    const data = Buffer.alloc(8);
    data.writeFloatLE(1.5, 0);
    data.writeFloatLE(-2, 4);
    const file = path.join(tmp, "hand.safetensors");
    fs.writeFileSync(file, Buffer.concat([len, header, data]));
    assert.deepEqual(T.loadSafetensors(file).tensors.get("x")!.toArray(), [1.5, -2]);
  });

  test("corruption and truncation give errors naming the file", () => {
    const file = path.join(tmp, "bad.safetensors");
    T.saveSafetensors(file, { w: T.randn([16]) });
    const good = fs.readFileSync(file);
    const flipped = Buffer.from(good);
    flipped.writeUInt8(flipped.readUInt8(flipped.length - 3) ^ 0xff, flipped.length - 3);
    fs.writeFileSync(file, flipped);
    assert.throws(() => T.loadSafetensors(file), /bad\.safetensors: checksum mismatch/);
    fs.writeFileSync(file, good.subarray(0, good.length - 4));
    assert.throws(
      () => T.loadSafetensors(file),
      /bad\.safetensors: tensor 'w' has data_offsets \[0, 64\] outside the 60-byte data section/,
    );
    fs.writeFileSync(file, good.subarray(0, 5));
    assert.throws(() => T.loadSafetensors(file), /bad\.safetensors: not a safetensors file/);
  });

  test("a failed write leaves the previous file intact", () => {
    const file = path.join(tmp, "keep.safetensors");
    T.saveSafetensors(file, { w: T.ones([2]) });
    const before = fs.readFileSync(file);
    const disposed = T.ones([2]);
    disposed.dispose();
    assert.throws(() => T.saveSafetensors(file, { w: T.zeros([2]), x: disposed }), /disposed/);
    assert.deepEqual(fs.readFileSync(file), before);
    assert.deepEqual(
      fs.readdirSync(tmp).filter((f) => f.includes(".tmp-")),
      [],
    );
  });
});

describe(".npy", () => {
  test("reads NumPy's files: C and Fortran order, big-endian, widened unsigned, bool, 0-d", () => {
    const c = T.loadNpy(fx("f32_c.npy"));
    assert.deepEqual([c.dtype, c.shape, c.toArray()], ["f32", [2, 3], [0, 1, 2, 3, 4, 5]]);
    const f = T.loadNpy(fx("f64_fortran.npy"));
    assert.deepEqual([f.dtype, f.shape, f.toArray()], ["f64", [2, 3], [0, 1, 2, 3, 4, 5]]);
    assert.deepEqual(T.loadNpy(fx("i4_big_endian.npy")).toArray(), [-2, -1, 0, 1, 2]);
    const u = T.loadNpy(fx("u2.npy"));
    assert.deepEqual([u.dtype, u.toArray()], ["i32", [0, 1, 65535]]);
    assert.deepEqual(T.loadNpy(fx("bool.npy")).toArray(), [1, 0, 1]);
    const s = T.loadNpy(fx("i8_scalar.npy"));
    assert.deepEqual([s.shape, s.item()], [[], 42]);
  });

  test("writes byte-identical files to numpy.save", () => {
    for (const name of ["f32_c.npy", "bool.npy", "i8_scalar.npy"]) {
      const out = path.join(tmp, name);
      T.saveNpy(out, T.loadNpy(fx(name)));
      assert.deepEqual(fs.readFileSync(out), fs.readFileSync(fx(name)), name);
    }
  });

  test("round-trips f16 and large 2-D arrays", () => {
    const t = T.randn([300, 7]).to("f16");
    const out = path.join(tmp, "h.npy");
    T.saveNpy(out, t);
    const back = T.loadNpy(out);
    assert.deepEqual(Buffer.from(back.bytes()), Buffer.from(t.bytes()));
  });

  test("bad files give errors naming the file", () => {
    const out = path.join(tmp, "trunc.npy");
    fs.writeFileSync(out, fs.readFileSync(fx("f32_c.npy")).subarray(0, 140));
    assert.throws(() => T.loadNpy(out), /trunc\.npy: truncated/);
    fs.writeFileSync(out, Buffer.from("not numpy at all"));
    assert.throws(() => T.loadNpy(out), /trunc\.npy: not a \.npy file/);
    assert.throws(() => T.saveNpy(out, T.ones([2]).to("bf16")), /bf16 has no \.npy equivalent/);
  });
});

describe(".pth", () => {
  test("loads a state dict written by torch.save", () => {
    const sd = T.loadPthStateDict(fx("state_dict.pth"));
    assert.deepEqual(
      [...sd.keys()],
      [
        "conv1.weight",
        "bn1.running_mean",
        "bn1.num_batches_tracked",
        "fc.weight",
        "emb.bf16",
        "view.strided",
      ],
    );
    const w = sd.get("conv1.weight")!;
    assert.deepEqual(w.shape, [2, 3, 3, 3]);
    assert.ok(Math.abs(w.toArray()[53]! - 5.3) < 1e-6);
    assert.deepEqual(sd.get("bn1.running_mean")!.toArray(), [0.5, -0.25]);
    assert.equal(sd.get("bn1.num_batches_tracked")!.item(), 7);
    assert.equal(sd.get("fc.weight")!.dtype, "f16");
    assert.deepEqual(sd.get("fc.weight")!.float().toArray(), [...Array(12).keys()]);
    assert.deepEqual(sd.get("emb.bf16")!.float().toArray(), [1.5, -2, 3.25]);
    assert.deepEqual(sd.get("view.strided")!.toArray(), [2, 5, 8, 11]);
  });

  test("loads arcface_torch-style checkpoints: nested dicts, numbers, 'module.' prefix", () => {
    const obj = T.loadPthObject(fx("checkpoint.pt"));
    assert.ok(obj instanceof Map);
    assert.equal(obj.get("epoch"), 3);
    assert.equal(obj.get("global_step"), 1200);
    const sd = T.loadPthStateDict(fx("checkpoint.pt"), "state_dict_backbone");
    assert.deepEqual([...sd.keys()], ["conv1.weight", "bn1.running_mean", "bn1.num_batches_tracked"]);
    assert.throws(() => T.loadPthStateDict(fx("checkpoint.pt"), "nope"), /no entry 'nope'/);
  });

  test("savePth writes torch.save's layout with only weights_only's globals, and reads back bit-exactly", () => {
    const out = path.join(tmp, "saved.pth");
    const base = T.randn([3, 4]);
    const sd = new Map<string, T.Tensor>([
      ["a.f32", T.randn([3, 2])],
      ["b.i64", T.tensor([5, -(2 ** 40)], { dtype: "i64" })],
      ["c.scalar", T.scalarTensor(7, { dtype: "i64" })],
      ["d.f16", T.randn([5]).to("f16")],
      ["e.bf16", T.randn([2, 2]).to("bf16")],
      ["f.bool", T.tensor([1, 0, 1], { dtype: "bool" })],
      ["g.empty", T.zeros([0, 4])],
      // a transposed view: saved as a contiguous copy of its own
      ["h.view", base.transpose(0, 1)],
    ]);
    T.savePth(out, sd);
    const records = native.zipRecords(out);
    for (const r of ["data.pkl", "byteorder", "version", ...[...sd.keys()].map((_, i) => `data/${i}`)])
      assert.ok(records.includes(r), `${r} in ${records.join(", ")}`);
    // The globals PyTorch >= 2.6's torch.load (weights_only) allows, and no others.
    const seen = new Set<string>();
    const allowed = ["collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch.FloatStorage"];
    const [pkl] = native.zipRead(out, ["data.pkl"]);
    T.unpickle(new Uint8Array(pkl!), {
      source: "data.pkl",
      globals: new Proxy({} as Record<string, (args: T.PickleValue[]) => T.PickleValue>, {
        has: (_, k) => (seen.add(String(k)), true),
        get: () => () => new Map(),
      }),
      persistentLoad: (pid) => (pid as T.PickleValue[])[1]!,
    });
    assert.deepEqual(
      [...seen].filter((g) => !allowed.includes(g) && !/^torch\.(Long|Half|BFloat16|Bool)Storage$/.test(g)),
      [],
    );
    const back = T.loadPthStateDict(out);
    assert.deepEqual([...back.keys()], [...sd.keys()]);
    for (const [k, t] of sd) {
      const b = back.get(k)!;
      assert.equal(b.dtype, t.dtype, k);
      assert.deepEqual(b.shape, t.shape, k);
      assert.deepEqual(Buffer.from(b.contiguous().bytes()), Buffer.from(t.contiguous().bytes()), k);
    }
  });

  test("savePth into a missing folder names the file; a failed save leaves the old file", () => {
    const missing = path.join(tmp, "no-such-dir", "x.pth");
    assert.throws(() => T.savePth(missing, new Map([["a", T.ones([2])]])), /no-such-dir\/x\.pth: /);
    const out = path.join(tmp, "kept.pth");
    T.savePth(out, new Map([["a", T.ones([2])]]));
    const gone = T.ones([3]);
    gone.dispose();
    assert.throws(() => T.savePth(out, new Map([["a", gone]])), /kept\.pth: /);
    assert.deepEqual(T.loadPthStateDict(out).get("a")!.toArray(), [1, 1]);
    assert.deepEqual(
      fs.readdirSync(tmp).filter((f) => f.includes(".tmp-")),
      [],
      "no temporary file left behind",
    );
  });

  test("bad files give errors naming the file", () => {
    const out = path.join(tmp, "junk.pth");
    fs.writeFileSync(out, "definitely not a zip");
    assert.throws(() => T.loadPthObject(out), /junk\.pth is not a zip-format torch\.save file/);
    fs.writeFileSync(out, fs.readFileSync(fx("state_dict.pth")).subarray(0, 600));
    assert.throws(() => T.loadPthObject(out), /junk\.pth: PytorchStreamReader failed/);
    assert.throws(() => T.loadPthObject(path.join(tmp, "missing.pth")), /missing\.pth: no such file/);
  });
});

describe("safe unpickler", () => {
  for (const proto of [2, 4]) {
    test(`reads plain data pickled at protocol ${proto}`, () => {
      const v = T.unpickle(fs.readFileSync(fx(`data_p${proto}.pkl`)), {
        source: "data",
        globals: T.DATA_GLOBALS,
      });
      assert.ok(Array.isArray(v));
      const [bytes, t, f, none, tuple, dict, big, neg, text] = v as T.PickleValue[];
      assert.deepEqual(bytes, new Uint8Array([0x61, 0x62, 0x63, 0, 0xff]));
      assert.deepEqual([t, f, none, tuple, neg, text], [true, false, null, [1, 2.5, -7], -(2 ** 40), "é"]);
      assert.deepEqual(dict, new Map([["k", [1, 2]]]));
      assert.equal(big, 2n ** 70n);
    });
  }

  test("what the pickler writes, the unpickler reads back (ints at every opcode's bounds)", () => {
    const ints = [0, 255, 256, 65535, 65536, 2 ** 31 - 1, -1, -(2 ** 31), 2 ** 31, -(2 ** 31) - 1];
    const big = [2 ** 40, -(2 ** 40), 2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 32, -(2 ** 32), 128 * 2 ** 32];
    const value = new Map<string, PickleOut>([
      ["ints", [...ints, ...big]],
      ["misc", [null, true, false, 2.5, -1e-300, "é ünïcode", [], [[1], "x"]]],
      ["call", new PickleCall(new T.PickleGlobal("collections", "OrderedDict"), [])],
    ]);
    const back = T.unpickle(pickle(value), { source: "rt", globals: T.DATA_GLOBALS });
    assert.deepEqual(
      back,
      new Map<string, T.PickleValue>([
        ["ints", [...ints, ...big]],
        ["misc", [null, true, false, 2.5, -1e-300, "é ünïcode", [], [[1], "x"]]],
        ["call", new Map()],
      ]),
    );
  });

  test("refuses a pickle that would run code, naming the global and the file", () => {
    assert.throws(
      () => T.unpickle(fs.readFileSync(fx("evil.pkl")), { source: "evil.pkl", globals: T.DATA_GLOBALS }),
      /evil\.pkl: pickle refers to global 'posix\.system', which is not allowed/,
    );
  });

  test("truncated input is an error, not a crash", () => {
    const b = fs.readFileSync(fx("data_p4.pkl"));
    assert.throws(
      () => T.unpickle(b.subarray(0, b.length - 10), { source: "cut", globals: T.DATA_GLOBALS }),
      /cut: pickle/,
    );
  });
});
