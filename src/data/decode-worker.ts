// A decode worker thread: reads samples (it opens the .rec or image files itself), decodes, masks,
// flips and writes rows of the shared batch buffer. Tasks run one after another; a bad sample
// becomes a failed result, never a dead worker.
import { parentPort } from "node:worker_threads";
import sharp from "sharp";
import { FileCache, readSample } from "./dataset.ts";
import { ImageDecoder, flipInPlace, sampleElements, writeSample } from "./decode.ts";
import { MaskBank } from "./mask/render.ts";
import type { ItemResult, WorkerInit, WorkerReply, WorkerTask } from "./worker-protocol.ts";

// One worker = one core: libvips must not spawn its own threads on top.
sharp.concurrency(1);
sharp.cache(false);

const port = parentPort;
if (!port) throw new Error("decode-worker.ts must run in a worker thread");

let init: WorkerInit | undefined;
let decoder: ImageDecoder | undefined;
let bank: MaskBank | null = null;
const files = new FileCache();
let queue: Promise<void> = Promise.resolve();

const reply = (m: WorkerReply): void => port.postMessage(m);
const maskBank = (): MaskBank => {
  if (!bank) throw new Error("mask requested but the worker has no mask bank");
  return bank;
};

async function setup(m: WorkerInit): Promise<void> {
  init = m;
  decoder = new ImageDecoder(m.spec.size, m.decoder);
  bank =
    m.maskVariants > 0
      ? await MaskBank.create({ seed: m.maskBankSeed, variants: m.maskVariants, size: m.spec.size })
      : null;
  reply({ type: "ready" });
}

async function run(task: WorkerTask): Promise<void> {
  if (!init || !decoder) throw new Error("task before init");
  const t0 = performance.now();
  const spec = init.spec;
  const out = spec.dtype === "f32" ? new Float32Array(task.buffer) : new Uint8Array(task.buffer);
  // u8 NHWC rows have exactly the decoder's layout: decode, mask and flip in the batch itself.
  const direct = spec.dtype === "u8" && spec.layout === "nhwc";
  const row = sampleElements(spec);
  const results: ItemResult[] = [];
  for (const it of task.items) {
    try {
      const { label, bytes } = readSample(it.loc, files);
      if (direct) {
        const target = Buffer.from(task.buffer, it.slot * row, row);
        const d = decoder.decodeInto(bytes, target);
        if (d instanceof Promise) await d;
        if (it.mask >= 0) maskBank().apply(target, spec.size, it.mask);
        if (it.flip) flipInPlace(target, spec.size);
      } else {
        const d = decoder.decode(bytes);
        const rgb = d instanceof Promise ? await d : d;
        if (it.mask >= 0) maskBank().apply(rgb, spec.size, it.mask);
        writeSample(rgb, it.flip, out, it.slot, spec);
      }
      results.push({ slot: it.slot, ok: true, label });
    } catch (e) {
      results.push({
        slot: it.slot,
        ok: false,
        label: -1,
        error: e instanceof Error ? e.message : String(e),
      });
    }
  }
  reply({ type: "done", id: task.id, results, busyMs: performance.now() - t0 });
}

port.on("message", (m: WorkerInit | WorkerTask | { type: "close" }) => {
  if (m.type === "close") {
    // after the queued work, so no decode is cut off mid-call
    void queue.then(() => {
      files.close();
      port.close();
    });
    return;
  }
  queue = queue
    .then(() => (m.type === "init" ? setup(m) : run(m)))
    .catch((e: unknown) => reply({ type: "fatal", error: e instanceof Error ? e.message : String(e) }));
});
