// libjpeg-turbo's TurboJPEG 3 API, called through koffi (an FFI library) on the libturbojpeg that
// @julusian/jpeg-turbo ships next to its addon on Linux. That addon creates and destroys a
// decompressor per image and always decodes with the fast integer IDCT; through the same library
// this keeps one decompressor per decode worker and chooses the IDCT and chroma upsampling:
//
//   accurate   accurate integer IDCT, fancy (triangle-filter) upsampling: libjpeg's defaults, what
//              PIL and sharp decode (bit-identical to them on the bench's images)
//   fast-idct  fast integer IDCT, fancy upsampling: what @julusian/jpeg-turbo always does, so what
//              mfr decoded before this option existed, and the default
//   fast       fast integer IDCT, nearest-neighbour ("merged") chroma upsampling
//
// Measured on 1000 synthetic 112x112 4:2:0 faces against `accurate`: fast-idct differs by at most
// 16 (mean 1.04) per channel value, fast by at most 75 (mean 1.6; colour edges, where the chroma is
// not interpolated). Per image, decode only: accurate ~55 us, fast-idct ~54, fast ~52; the addon's
// call ~56 (fast-idct).
//
// Where the library or koffi is missing (macOS and Windows, whose @julusian/jpeg-turbo links
// libjpeg-turbo statically), TurboJpeg.open() returns null and ImageDecoder uses the addon.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

export type JpegMode = "accurate" | "fast-idct" | "fast";
export const JPEG_MODES: readonly JpegMode[] = ["accurate", "fast-idct", "fast"];

// turbojpeg.h (libjpeg-turbo 3.x): enum TJINIT, TJPARAM, TJPF.
const TJINIT_DECOMPRESS = 1;
const TJPARAM_JPEGWIDTH = 5;
const TJPARAM_JPEGHEIGHT = 6;
const TJPARAM_FASTUPSAMPLE = 9;
const TJPARAM_FASTDCT = 10;
const TJPF_RGB = 0;

interface Api {
  init: (type: number) => unknown;
  destroy: (h: unknown) => void;
  set: (h: unknown, param: number, value: number) => number;
  get: (h: unknown, param: number) => number;
  header: (h: unknown, jpeg: Uint8Array, size: number) => number;
  decompress: (
    h: unknown,
    jpeg: Uint8Array,
    size: number,
    dst: Uint8Array,
    pitch: number,
    fmt: number,
  ) => number;
  errorStr: (h: unknown) => string;
}

let api: Api | null | undefined;

/** The library's functions, bound once per thread; null where it cannot be loaded. */
function loadApi(): Api | null {
  if (api !== undefined) return api;
  api = null;
  if (process.platform !== "linux") return api;
  try {
    const require = createRequire(import.meta.url);
    const dir = path.dirname(require.resolve("@julusian/jpeg-turbo/package.json"));
    const musl = existsSync(path.join(dir, "prebuilds", `jpeg-turbo-linux-${process.arch}-musl`)) && isMusl();
    const so = path.join(
      dir,
      "prebuilds",
      `jpeg-turbo-linux-${process.arch}${musl ? "-musl" : ""}`,
      "libturbojpeg.so.0",
    );
    if (!existsSync(so)) return api;
    const koffi = require("koffi") as typeof import("koffi");
    const lib = koffi.load(so);
    api = {
      init: lib.func("void *tj3Init(int initType)"),
      destroy: lib.func("void tj3Destroy(void *handle)"),
      set: lib.func("int tj3Set(void *handle, int param, int value)"),
      get: lib.func("int tj3Get(void *handle, int param)"),
      header: lib.func("int tj3DecompressHeader(void *handle, const uint8_t *jpegBuf, size_t jpegSize)"),
      decompress: lib.func(
        "int tj3Decompress8(void *handle, const uint8_t *jpegBuf, size_t jpegSize, uint8_t *dstBuf, int pitch, int pixelFormat)",
      ),
      errorStr: lib.func("const char *tj3GetErrorStr(void *handle)"),
    };
  } catch {
    api = null;
  }
  return api;
}

const handles = new FinalizationRegistry<{ api: Api; handle: unknown }>(({ api: a, handle }) =>
  a.destroy(handle),
);

const isMusl = (): boolean => {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return !report?.header?.glibcVersionRuntime;
};

/** One TurboJPEG decompressor, kept for the life of its decoder (one per worker thread). */
export class TurboJpeg {
  private constructor(
    private readonly api: Api,
    private readonly handle: unknown,
    readonly mode: JpegMode,
  ) {}

  /** A decompressor set up for `mode`, or null where the library cannot be used. */
  static open(mode: JpegMode): TurboJpeg | null {
    const a = loadApi();
    if (!a) return null;
    const h = a.init(TJINIT_DECOMPRESS);
    if (!h) return null;
    if (
      a.set(h, TJPARAM_FASTDCT, mode === "accurate" ? 0 : 1) !== 0 ||
      a.set(h, TJPARAM_FASTUPSAMPLE, mode === "fast" ? 1 : 0) !== 0
    ) {
      a.destroy(h);
      return null;
    }
    const t = new TurboJpeg(a, h, mode);
    // freed with its decoder; a worker's lives as long as the worker
    handles.register(t, { api: a, handle: h });
    return t;
  }

  /**
   * Decodes `jpeg` as RGB into `target` when it is exactly size x size (the target is checked to
   * hold size * size * 3 bytes before libjpeg-turbo writes a byte). Returns false for another
   * size; throws with libjpeg-turbo's message for a JPEG it cannot decode (warnings included,
   * e.g. truncated data).
   */
  decodeInto(jpeg: Uint8Array, target: Uint8Array, size: number): boolean {
    if (target.length < size * size * 3)
      throw new RangeError(`target holds ${target.length} bytes, need ${size * size * 3}`);
    const { api: a, handle: h } = this;
    if (a.header(h, jpeg, jpeg.length) !== 0) throw new Error(a.errorStr(h));
    if (a.get(h, TJPARAM_JPEGWIDTH) !== size || a.get(h, TJPARAM_JPEGHEIGHT) !== size) return false;
    if (a.decompress(h, jpeg, jpeg.length, target, size * 3, TJPF_RGB) !== 0) throw new Error(a.errorStr(h));
    return true;
  }
}
