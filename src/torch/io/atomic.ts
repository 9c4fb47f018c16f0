// Writes that matter: to a temporary name beside the target, fsync, rename, fsync the folder.
// A crash mid-write leaves the previous file intact.
import fs from "node:fs";
import path from "node:path";

/** Calls write(fd) on a temporary file, then atomically replaces `target` with it. */
export function writeAtomic(target: string, write: (fd: number) => void): void {
  const dir = path.dirname(target);
  const tmp = path.join(
    dir,
    `.${path.basename(target)}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`,
  );
  const fd = fs.openSync(tmp, "w");
  try {
    write(fd);
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, target);
  try {
    const dfd = fs.openSync(dir, "r");
    fs.fsyncSync(dfd);
    fs.closeSync(dfd);
  } catch {
    // Some filesystems refuse fsync on a directory; the rename itself is still atomic.
  }
}

/** writeAtomic's temporary names: ".<target>.tmp-<pid>-<random>". */
const TEMP_NAME = /^\..+\.tmp-\d+-[0-9a-z]+$/;

/**
 * Removes the temporary files a killed writeAtomic left in `dir` (only names of that form), for
 * a caller that knows no write into `dir` is under way. Returns the paths removed.
 */
export function removeStaleTemps(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const removed: string[] = [];
  for (const name of fs.readdirSync(dir)) {
    if (!TEMP_NAME.test(name)) continue;
    const file = path.join(dir, name);
    if (!fs.statSync(file).isFile()) continue;
    fs.rmSync(file, { force: true });
    removed.push(file);
  }
  return removed;
}

/** Writes all of buf at the fd's current position. */
export function writeAll(fd: number, buf: Uint8Array): void {
  let off = 0;
  while (off < buf.byteLength) off += fs.writeSync(fd, buf, off, buf.byteLength - off);
}

/**
 * Reads exactly len bytes at position, or throws naming the file. A range past the end is refused
 * before the buffer is allocated: lengths come from the files' own headers.
 */
export function readExactly(fd: number, file: string, position: number, len: number): Buffer {
  const size = fs.fstatSync(fd).size;
  if (!(position >= 0 && len >= 0 && position + len <= size))
    throw new Error(`${file}: truncated (wanted ${len} bytes at offset ${position}, the file has ${size})`);
  const buf = Buffer.allocUnsafe(len);
  let got = 0;
  while (got < len) {
    const n = fs.readSync(fd, buf, got, len - got, position + got);
    if (n === 0)
      throw new Error(`${file}: truncated (wanted ${len} bytes at offset ${position}, file ended)`);
    got += n;
  }
  return buf;
}
