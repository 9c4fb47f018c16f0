// `mfr export` as a library call: checkpoint → (BatchNorm folding) → ONNX file → verification in
// onnxruntime-node against mfr's own forward → (the challenge's submission rules). Returns a report
// of every step; the caller decides what a failed check means (the CLI exits non-zero).
import { readFileSync, statSync, writeSync } from "node:fs";
import path from "node:path";
import * as T from "../torch/index.ts";
import { BatchNorm1d, BatchNorm2d } from "../nn/index.ts";
import {
  type Backbone,
  type BackboneDescriptor,
  foldBatchNorm,
  loadBackboneCheckpoint,
} from "../models/index.ts";
import { firstImages, randomImages, syntheticFaces } from "./images.ts";
import {
  type BatchSpec,
  DEFAULT_OPSET,
  type OnnxModelInfo,
  MAX_INLINE_WEIGHT_BYTES,
  type OnnxExportOptions,
  backboneToOnnx,
  checkOpset,
  exportMetadata,
} from "./onnx.ts";
import { decodeModel } from "./onnx-proto.ts";
import { type RuleResult, checkMfrRules } from "./rules.ts";
import {
  type CaseResult,
  DEFAULT_TOLERANCE,
  type Tolerance,
  type VerifyCase,
  mfrForward,
  verifyOnnx,
} from "./verify.ts";

export interface ExportOptions {
  /** Backbone checkpoint (.safetensors or .pth; see loadBackboneCheckpoint). */
  checkpoint: string;
  out: string;
  hint?: Partial<BackboneDescriptor>;
  foldBatchNorm?: boolean;
  opset?: number;
  batch?: BatchSpec;
  /** Run the ONNX file in onnxruntime-node and compare with mfr (default true). */
  verify?: boolean;
  /** A dataset or image folder whose first images are the "real" verification inputs (default: synthetic faces). */
  verifyData?: string;
  tolerance?: Tolerance;
  /** Check the challenge's submission rules. */
  checkMfr?: boolean;
  /** onnxruntime intra-op threads during verification. */
  threads?: number;
  /**
   * Weights in `<out>.data` beside the model (ONNX external data) rather than inside it: true,
   * false, or by default only when they would not fit one protobuf (2 GiB).
   */
  externalData?: boolean;
}

export interface ExportReport {
  out: string;
  bytes: number;
  /** The external data file (written beside `out`, which names it), when the weights are there. */
  externalData?: { file: string; bytes: number };
  descriptor: BackboneDescriptor;
  batchNorms: { before: number; after: number };
  info: OnnxModelInfo;
  metadata: Record<string, string>;
  /** Absent when verification was turned off. */
  verification?: CaseResult[];
  rules?: RuleResult[];
  /** Every verification case and rule passed. */
  ok: boolean;
}

/** The float32 bytes the exported weights will take (parameters and buffers). */
const weightBytes = (m: Backbone): number => [...m.stateDict().values()].reduce((a, t) => a + 4 * t.numel, 0);

function writeFile(file: string, bytes: Uint8Array): void {
  T.writeAtomic(file, (fd) => {
    for (let off = 0; off < bytes.byteLength;) off += writeSync(fd, bytes, off);
  });
}

/** Writes the model as ONNX to `out`, its weights to `out`.data when `external`; atomically. */
function writeOnnx(
  model: Backbone,
  out: string,
  external: boolean,
  o: OnnxExportOptions,
): { info: OnnxModelInfo; dataFile?: string } {
  if (!external) {
    const r = backboneToOnnx(model, o);
    writeFile(out, r.bytes);
    return { info: r.info };
  }
  const dataFile = `${out}.data`;
  let r: ReturnType<typeof backboneToOnnx> | undefined;
  T.writeAtomic(dataFile, (fd) => {
    r = backboneToOnnx(model, { ...o, externalData: { fd, location: path.basename(dataFile) } });
  });
  // Only once the data file is in place does the model that names it appear.
  writeFile(out, r!.bytes);
  return { info: r!.info, dataFile };
}

const countBatchNorms = (m: Backbone): number =>
  m.namedModules().filter(([, c]) => c instanceof BatchNorm1d || c instanceof BatchNorm2d).length;

/** Inputs for verification: random noise and faces, at batch sizes the export accepts. */
async function verificationInputs(
  batch: BatchSpec,
  verifyData: string | undefined,
): Promise<Omit<VerifyCase, "expected">[]> {
  const faces = batch === "dynamic" ? 4 : batch;
  const real = verifyData === undefined ? syntheticFaces(faces) : await firstImages(verifyData, faces);
  const realName = verifyData === undefined ? "synthetic faces" : `faces from ${verifyData}`;
  if (batch !== "dynamic")
    return [
      { name: "random", images: randomImages(batch), n: batch },
      { name: realName, images: real, n: batch },
    ];
  // Two batch sizes through the same session show that the batch dimension is really dynamic.
  return [
    { name: "random", images: randomImages(3), n: 3 },
    { name: "random", images: randomImages(1, 2), n: 1 },
    { name: realName, images: real, n: faces },
  ];
}

/** Exports a checkpoint to ONNX and checks the result; see ExportOptions. */
export async function exportCheckpoint(o: ExportOptions): Promise<ExportReport> {
  const opset = checkOpset(o.opset ?? DEFAULT_OPSET);
  const batch = o.batch ?? "dynamic";
  const { model, descriptor } = loadBackboneCheckpoint(o.checkpoint, o.hint);
  try {
    const verify = o.verify !== false;
    const inputs = verify ? await verificationInputs(batch, o.verifyData) : [];
    // Reference embeddings from the model as trained, before folding changes its layers.
    const cases: VerifyCase[] = inputs.map((c) => ({ ...c, expected: mfrForward(model, c.images, c.n) }));
    const before = countBatchNorms(model);
    if (o.foldBatchNorm) foldBatchNorm(model);
    const after = countBatchNorms(model);
    const metadata = exportMetadata(descriptor, o.foldBatchNorm === true);
    const external = o.externalData ?? weightBytes(model) > MAX_INLINE_WEIGHT_BYTES;
    const { info, dataFile } = writeOnnx(model, o.out, external, {
      opset,
      batch,
      metadata,
      docString: `mfr export of ${o.checkpoint}`,
    });
    const verification = verify
      ? await verifyOnnx(o.out, cases, o.tolerance ?? DEFAULT_TOLERANCE, { threads: o.threads })
      : undefined;
    const rules = o.checkMfr ? checkMfrRules(decodeModel(readFileSync(o.out), o.out)) : undefined;
    const ok = (verification ?? []).every((c) => c.ok) && (rules ?? []).every((r) => r.ok);
    return {
      out: o.out,
      bytes: statSync(o.out).size,
      ...(dataFile ? { externalData: { file: dataFile, bytes: statSync(dataFile).size } } : {}),
      descriptor,
      batchNorms: { before, after },
      info,
      metadata,
      ...(verification ? { verification } : {}),
      ...(rules ? { rules } : {}),
      ok,
    };
  } finally {
    model.dispose();
  }
}

/** The submission rules of an existing ONNX file (any producer). */
export function checkOnnxFile(file: string): RuleResult[] {
  return checkMfrRules(decodeModel(readFileSync(file), file));
}
