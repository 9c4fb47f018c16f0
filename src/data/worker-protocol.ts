// Messages between the loader (trainer's thread) and its decode worker threads. Plain data only.
import type { SampleLocator } from "./dataset.ts";
import type { DecoderChoice, JpegMode, OutputSpec } from "./decode.ts";

export interface WorkerInit {
  type: "init";
  spec: OutputSpec;
  decoder: DecoderChoice;
  jpegMode: JpegMode;
  /** Mask tiles to render (0: masks never drawn, skip the work). */
  maskVariants: number;
  maskBankSeed: number;
}

export interface TaskItem {
  /** Row of the batch buffer to fill. */
  slot: number;
  loc: SampleLocator;
  flip: boolean;
  /** Seed choosing the mask tile and colours; -1 = no mask. */
  mask: number;
}

export interface WorkerTask {
  type: "task";
  id: number;
  /** The batch's image buffer; typed by spec.dtype. */
  buffer: SharedArrayBuffer;
  items: TaskItem[];
}

export interface ItemResult {
  slot: number;
  ok: boolean;
  label: number;
  error?: string;
}

export type WorkerReply =
  | { type: "ready" }
  | { type: "done"; id: number; results: ItemResult[]; busyMs: number }
  | { type: "fatal"; error: string };
