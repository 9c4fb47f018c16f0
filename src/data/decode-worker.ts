// A decode worker thread: reads samples (it opens the .rec or image files itself), decodes, masks,
// flips and writes rows of the shared batch buffer. Tasks run one after another; a bad sample
// becomes a failed result, never a dead worker.
import { parentPort } from "node:worker_threads";
import sharp from "sharp";
import { FileCache } from "./dataset.ts";
import { ImageDecoder } from "./decode.ts";
import { type ItemContext, decodeItem } from "./decode-item.ts";
import { MaskBank } from "./mask/render.ts";
import type { ItemResult, WorkerInit, WorkerReply, WorkerTask } from "./worker-protocol.ts";

// One worker = one core: libvips must not spawn its own threads on top.
sharp.concurrency(1);
sharp.cache(false);

const port = parentPort;
if (!port) throw new Error("decode-worker.ts must run in a worker thread");

let ctx: ItemContext | undefined;
const files = new FileCache();
let queue: Promise<void> = Promise.resolve();

const reply = (m: WorkerReply): void => port.postMessage(m);

async function setup(m: WorkerInit): Promise<void> {
  const bank =
    m.maskVariants > 0
      ? await MaskBank.create({ seed: m.maskBankSeed, variants: m.maskVariants, size: m.spec.size })
      : null;
  ctx = { spec: m.spec, decoder: new ImageDecoder(m.spec.size, m.decoder, m.jpegMode), bank, files };
  reply({ type: "ready" });
}

async function run(task: WorkerTask): Promise<void> {
  if (!ctx) throw new Error("task before init");
  const t0 = performance.now();
  const results: ItemResult[] = [];
  for (const it of task.items) {
    try {
      const r = decodeItem(ctx, it, task.buffer);
      // no await on the synchronous path: it would cost a microtask per image
      const label = typeof r === "number" ? r : await r;
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
