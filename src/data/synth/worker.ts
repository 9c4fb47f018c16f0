// A synthesis worker thread: renders and JPEG-encodes the images of the identities it is sent.
import { parentPort } from "node:worker_threads";
import { encodeJpeg, synthFace } from "./write.ts";

export interface SynthJob {
  seed: number;
  id: number;
  images: number;
  size: number;
}

const port = parentPort;
if (!port) throw new Error("synth/worker.ts must run in a worker thread");
port.on("message", (job: SynthJob) => {
  const out: Uint8Array[] = [];
  for (let k = 0; k < job.images; k++) {
    const f = synthFace(job.seed, job.id, k, job.size);
    out.push(new Uint8Array(encodeJpeg(f.rgb, job.size, f.quality)));
  }
  port.postMessage(
    { id: job.id, images: out },
    out.map((b) => b.buffer as ArrayBuffer),
  );
});
