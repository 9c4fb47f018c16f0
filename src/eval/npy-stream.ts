// A .npy file written row block by row block, for embedding sets too large to hold twice in memory.
// The shape is known up front (the dataset's length), so the header is final from the start; data
// goes to a temporary name that is renamed into place only when every byte has arrived.
import fs from "node:fs";
import path from "node:path";

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
const ELEMENT_BYTES: Record<string, number> = { "<f4": 4, "<i8": 8, "<i4": 4 };

export class NpyStreamWriter {
  private readonly fd: number;
  private readonly tmp: string;
  private readonly expected: number;
  private written = 0;

  constructor(
    readonly file: string,
    descr: "<f4" | "<i8" | "<i4",
    readonly shape: readonly number[],
  ) {
    const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
    let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
    // Version 1.0; magic, version, length and dict padded to a multiple of 64 bytes.
    const total = Math.ceil((10 + dict.length + 1) / 64) * 64;
    dict = dict.padEnd(total - 10 - 1, " ") + "\n";
    const head = Buffer.alloc(10);
    MAGIC.copy(head, 0);
    head[6] = 1;
    head.writeUInt16LE(dict.length, 8);
    this.expected = shape.reduce((a, b) => a * b, 1) * ELEMENT_BYTES[descr]!;
    this.tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`);
    this.fd = fs.openSync(this.tmp, "w");
    this.write(head, false);
    this.write(Buffer.from(dict, "latin1"), false);
  }

  write(bytes: Uint8Array, counts = true): void {
    let off = 0;
    while (off < bytes.byteLength) off += fs.writeSync(this.fd, bytes, off, bytes.byteLength - off);
    if (counts) this.written += bytes.byteLength;
    if (this.written > this.expected)
      throw new Error(`${this.file}: more data than its shape [${this.shape.join(", ")}] holds`);
  }

  /** Checks that the data fills the shape, then moves the file into place. */
  finish(): void {
    if (this.written !== this.expected) {
      this.abort();
      throw new Error(
        `${this.file}: ${this.written} of ${this.expected} data bytes written for shape [${this.shape.join(", ")}]`,
      );
    }
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    fs.renameSync(this.tmp, this.file);
  }

  /** Drops the partial file. */
  abort(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      // already closed
    }
    fs.rmSync(this.tmp, { force: true });
  }
}
