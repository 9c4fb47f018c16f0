// Hostile or broken weight and array files: every claim a header makes (shapes, offsets, lengths,
// storage sizes) is checked against the file before memory is allocated from it, and the error
// names the file, never a bare JavaScript or ATen message.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as T from "../../src/torch/index.ts";

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), "../fixtures/torch");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-io-errors-"));

/** A safetensors file with this header (as JSON text) and `data` bytes after it. */
function safetensors(name: string, header: string, data = Buffer.alloc(0)): string {
  const json = Buffer.from(header);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const file = path.join(tmp, name);
  fs.writeFileSync(file, Buffer.concat([len, json, data]));
  return file;
}

/** Asserts fn throws a message that starts with the file's path and matches `rest`. */
function throwsNaming(fn: () => unknown, file: string, rest: RegExp): void {
  assert.throws(fn, (e: Error) => {
    assert.ok(e.message.startsWith(`${file}: `), `"${e.message}" does not start with the file`);
    assert.match(e.message.slice(file.length + 2), rest);
    return true;
  });
}

describe("safetensors headers", () => {
  const eight = Buffer.alloc(8);
  const cases: [string, string, RegExp][] = [
    ["array", "[]", /^header is \[\], not a JSON object of tensors$/],
    ["null", "null", /^header is null, not a JSON object of tensors$/],
    ["number", "7", /^header is 7, not a JSON object of tensors$/],
    ["entry-null", '{"w":null}', /^tensor 'w' is null, not \{dtype, shape, data_offsets\}$/],
    [
      "no-offsets",
      '{"w":{"dtype":"F32","shape":[2]}}',
      /^tensor 'w' has data_offsets undefined, not \[begin, end\] byte offsets$/,
    ],
    [
      "negative-shape",
      '{"w":{"dtype":"F32","shape":[-1,-2],"data_offsets":[0,8]}}',
      /^tensor 'w' has shape \[-1,-2\], not a list of non-negative integers$/,
    ],
    [
      "fractional-shape",
      '{"w":{"dtype":"F32","shape":[0.5,4],"data_offsets":[0,8]}}',
      /^tensor 'w' has shape \[0\.5,4\], not a list of non-negative integers$/,
    ],
    [
      "outside",
      '{"w":{"dtype":"F32","shape":[1000],"data_offsets":[0,4000]}}',
      /^tensor 'w' has data_offsets \[0, 4000\] outside the 8-byte data section$/,
    ],
    [
      "negative-offsets",
      '{"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}',
      /^tensor 'w' has data_offsets \[-8,0\], not \[begin, end\] byte offsets$/,
    ],
    [
      // r1200-sized claims on 8 bytes: refused from the header, before anything is allocated
      "huge-shape",
      '{"w":{"dtype":"F32","shape":[100000,100000,100000],"data_offsets":[0,8]}}',
      /^tensor 'w': shape \[100000, 100000, 100000\] of F32 needs 4000000000000000 bytes, data_offsets \[0, 8\] hold 8$/,
    ],
    [
      "overlap",
      '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
      /^tensor 'b' starts at byte 4 of the data, expected 8/,
    ],
    [
      "dtype",
      '{"w":{"dtype":"F128","shape":[],"data_offsets":[0,8]}}',
      /^tensor 'w' has unsupported dtype "F128"$/,
    ],
    ["metadata", '{"__metadata__":{"step":3}}', /^header's __metadata__ is not an object of strings$/],
  ];
  for (const [name, header, rest] of cases) {
    test(`${name}: ${header.slice(0, 60)}`, () => {
      const file = safetensors(`${name}.safetensors`, header, eight);
      throwsNaming(() => T.loadSafetensors(file), file, rest);
      // The metadata reader checks the same header (ZeRO resharding reads only that).
      throwsNaming(() => T.readSafetensorsMetadata(file), file, rest);
    });
  }

  test("a header that is fine still loads", () => {
    const data = Buffer.alloc(8);
    data.writeFloatLE(2.5, 4);
    const file = safetensors(
      "ok.safetensors",
      '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}',
      data,
    );
    assert.deepEqual(T.loadSafetensors(file).tensors.get("w")!.toArray(), [0, 2.5]);
  });
});

describe(".npy headers", () => {
  test("a v2 header length of 4 GB is refused before it is read", () => {
    const file = path.join(tmp, "huge-header.npy");
    const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0, 0, 0, 0, 0]);
    pre.writeUInt32LE(0xfffffff0, 8);
    fs.writeFileSync(
      file,
      Buffer.concat([pre, Buffer.from("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n")]),
    );
    throwsNaming(
      () => T.loadNpy(file),
      file,
      /^\.npy header length 4294967280 is invalid for a 70-byte file/,
    );
  });

  test("a v1 header running past the end of the file", () => {
    const file = path.join(tmp, "short-header.npy");
    const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
    pre.writeUInt16LE(500, 8);
    fs.writeFileSync(file, Buffer.concat([pre, Buffer.from("{'descr': '<f4'")]));
    throwsNaming(() => T.loadNpy(file), file, /^\.npy header length 500 is invalid for a 25-byte file/);
  });
});

describe(".pth storages", () => {
  const src = fs.readFileSync(path.join(fixtures, "state_dict.pth"));
  /**
   * The fixture with bytes of its data.pkl replaced in place (same length; libtorch's zip reader
   * does not check CRCs, as torch.load does not).
   */
  function mutated(name: string, find: number[], repl: number[]): string {
    const b = Buffer.from(src);
    const i = b.indexOf(Buffer.from(find));
    assert.ok(i >= 0 && b.indexOf(Buffer.from(find), i + 1) < 0, "pattern found exactly once");
    Buffer.from(repl).copy(b, i);
    const file = path.join(tmp, name);
    fs.writeFileSync(file, b);
    return file;
  }
  // conv1.weight: storage '0' of 54 floats ('cpu', BININT1 54), size (2, 3, 3, 3)
  const storage = [0x58, 3, 0, 0, 0, 0x63, 0x70, 0x75, 0x71, 7, 0x4b];
  const size = [0x28, 0x4b, 2, 0x4b, 3, 0x4b, 3, 0x4b, 3, 0x74];

  test("the fixture loads as it is", () => {
    assert.deepEqual(
      T.loadPthStateDict(path.join(fixtures, "state_dict.pth")).get("conv1.weight")!.shape,
      [2, 3, 3, 3],
    );
  });

  test("a storage claiming more elements than its record holds", () => {
    const file = mutated("numel.pth", [...storage, 54], [...storage, 200]);
    throwsNaming(
      () => T.loadPthObject(file),
      file,
      /^storage data\/0 claims 200 FloatStorage elements \(800 bytes\) but holds 216 bytes$/,
    );
  });

  test("a tensor whose size reaches past its storage", () => {
    const file = mutated("size.pth", size, [0x28, 0x4b, 9, 0x4b, 3, 0x4b, 3, 0x4b, 3, 0x74]);
    throwsNaming(
      () => T.loadPthObject(file),
      file,
      /^tensor of size \[9, 3, 3, 3\], stride \[27, 9, 3, 1\], offset 0 reaches element 242 of storage data\/0, which holds 54$/,
    );
  });

  test("a storage key with no record in the archive", () => {
    // storage key '0' -> '9' (BINUNICODE of length 1 after 'torch FloatStorage' q 5)
    const file = mutated("key.pth", [0x71, 5, 0x58, 1, 0, 0, 0, 0x30], [0x71, 5, 0x58, 1, 0, 0, 0, 0x39]);
    throwsNaming(() => T.loadPthObject(file), file, /^archive has no data\/9$/);
  });
});
