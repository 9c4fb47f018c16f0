// File checksums and JSON run-state files: what a checkpoint's manifest.json records (the sha256
// of every file beside it) is checked here by everything that reads a checkpoint, the trainer on
// resume as well as export, embed and eval, so an edited or damaged file is refused by name.
import fs from "node:fs";
import path from "node:path";
import { createHash } from "node:crypto";

/** sha256 of a file's bytes, read in chunks (checkpoint files can be gigabytes). */
export function sha256File(file: string): string {
  const hash = createHash("sha256");
  const fd = fs.openSync(file, "r");
  try {
    const buf = Buffer.allocUnsafe(1 << 22);
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) hash.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest("hex");
}

/** A JSON file's value; a missing or malformed file is an error naming it. */
export function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`${file}: cannot be read (${(e as Error).message})`, { cause: e });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message}); the file is corrupt`, { cause: e });
  }
}

/**
 * Checks files in `dir` against their recorded sha256 (`sums`: file name -> hex digest); `only`
 * limits the check to those names, each of which must be recorded. Errors name the file.
 */
export function verifyChecksums(dir: string, sums: Record<string, string>, only?: readonly string[]): void {
  for (const name of only ?? Object.keys(sums)) {
    const file = path.join(dir, name);
    const want = sums[name];
    if (want === undefined) throw new Error(`${file}: not listed in ${path.join(dir, "manifest.json")}`);
    if (!fs.existsSync(file)) throw new Error(`${file}: missing (listed in the checkpoint's manifest)`);
    if (sha256File(file) !== want)
      throw new Error(
        `${file}: checksum mismatch with the checkpoint's manifest (the file is corrupt or was edited)`,
      );
  }
}
