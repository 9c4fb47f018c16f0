// Verification while training (the config's `verify`): .bin sets with arcface_torch's 10-fold
// protocol, and held-out identities with the MFR protocol (TPR@FPR over every pair, masked probes
// against the unmasked gallery, by subset), both through src/eval's code.
// Every rank embeds its contiguous share of each set with the same backbone (the trainer first
// gives every rank rank 0's BatchNorm statistics: rank 0's backbone is the one checkpoints keep),
// the shares are all-gathered, and the figures computed from all of them: K ranks finish K times
// sooner, and none sits in a collective while rank 0 alone works through the sets, which on a big
// set would outlast the group's timeout.
import * as T from "../torch/index.ts";
import { type Batch, DataLoader } from "../data/index.ts";
import { batchToTensors } from "../data/tensors.ts";
import type { ProcessGroup } from "../distributed/index.ts";
import type { Backbone } from "../models/index.ts";
import {
  type Collectives,
  type EmbedFn,
  type VerificationSet,
  concatFloat32,
  embedWithFlips,
  evaluatePairs,
  loadVerificationSet,
  processGroupCollectives,
  scoreVerificationSet,
  singleProcess,
} from "../eval/index.ts";
import { type TrainConfig, type VerifySetConfig, verifySetName } from "./config.ts";

/** One set's figures at one step: what the trainer logs and emits. */
export interface VerifyResult {
  set: string;
  /** "bin": 10-fold accuracy; "mfr": TPR at each FPR by pair subset. */
  protocol: "bin" | "mfr";
  /**
   * bin: accuracy, std (over folds), xnorm (mean embedding norm). mfr: "<subset>@<fpr>" = TPR at
   * that FPR over that subset's pairs ("masked-unmasked@1e-4": masked probes against the unmasked
   * gallery); a subset without genuine or impostor pairs has no entry.
   */
  results: Record<string, number>;
  /** Pairs evaluated (bin: the set's pairs; mfr: every pair of images). */
  pairs: number;
  seconds: number;
}

/** [from, to) of n rows for this rank: contiguous, so the gathered shares are the rows in order. */
function share(n: number, rank: number, worldSize: number): [number, number] {
  return [Math.floor((n * rank) / worldSize), Math.floor((n * (rank + 1)) / worldSize)];
}

/** Embeds [count, 3, s, s] float images with the backbone as it is (eval mode, no autograd). */
function embedder(backbone: Backbone, device: string, size: number): EmbedFn {
  return (images, count) =>
    T.scope(() =>
      T.noGrad(() => {
        const x = T.toDevice(
          T.tensor(images.subarray(0, count * 3 * size * size), { shape: [count, 3, size, size] }),
          device,
        );
        return backbone.forward(x).to("f32").to("cpu").contiguous().data() as Float32Array;
      }),
    );
}

interface BinSet {
  kind: "bin";
  name: string;
  set: VerificationSet;
}

/** Held-out identities, decoded once: every row's label and mask, this rank's share of pixels. */
interface HeldOut {
  kind: "mfr";
  name: string;
  fpr: string[];
  labels: Int32Array;
  masked: Uint8Array;
  /** This rank's rows [from, to), u8 NHWC. */
  from: number;
  to: number;
  pixels: Uint8Array;
}

type OpenSet = BinSet | HeldOut;

export class Verifier {
  private constructor(
    private readonly sets: OpenSet[],
    private readonly coll: Collectives,
    private readonly device: string,
    private readonly size: number,
    private readonly batchSize: number,
  ) {}

  /**
   * Reads every set named in `verify` (errors name the config key and the file), before the
   * first step. Every rank of the group calls it (each keeps the pixels of its share only).
   */
  static async open(
    v: NonNullable<TrainConfig["verify"]>,
    o: { group: ProcessGroup | Collectives; device: string; imageSize: number },
  ): Promise<Verifier> {
    const g = o.group;
    const coll =
      "allReduceSum" in g ? g : g.worldSize > 1 ? processGroupCollectives(g, o.device) : singleProcess;
    const sets: OpenSet[] = [];
    for (const [i, s] of v.sets.entries()) {
      try {
        sets.push(await openSet(s, o.imageSize, v.batchSize, coll.rank, coll.worldSize));
      } catch (e) {
        throw new Error(`verify.sets[${i}]: ${(e as Error).message}`, { cause: e });
      }
    }
    return new Verifier(sets, coll, o.device, o.imageSize, v.batchSize);
  }

  /** Evaluates the backbone as it is (the caller puts it in eval mode) on every set. */
  async run(backbone: Backbone): Promise<VerifyResult[]> {
    const embed = embedder(backbone, this.device, this.size);
    const out: VerifyResult[] = [];
    for (const s of this.sets) {
      const t0 = performance.now();
      const r = s.kind === "bin" ? await this.bin(s, embed) : await this.mfr(s, backbone);
      out.push({ set: s.name, protocol: s.kind, ...r, seconds: (performance.now() - t0) / 1000 });
    }
    return out;
  }

  private async bin(s: BinSet, embed: EmbedFn): Promise<Pick<VerifyResult, "results" | "pairs">> {
    const n = s.set.images.length;
    const [from, to] = share(n, this.coll.rank, this.coll.worldSize);
    const mine = await embedWithFlips(s.set.images.slice(from, to), embed, {
      batchSize: this.batchSize,
      imageSize: this.size,
      source: s.set.file,
    });
    const first = concatFloat32(await this.coll.allGather(mine.first));
    const second = concatFloat32(await this.coll.allGather(mine.second));
    const [normSum] = await this.coll.allReduceSum(Float64Array.of(mine.normSum));
    const v = scoreVerificationSet(s.set, { first, second, dim: first.length / n, normSum: normSum! });
    return { results: { accuracy: v.accuracy, std: v.std, xnorm: v.xnorm }, pairs: v.pairs };
  }

  private async mfr(s: HeldOut, backbone: Backbone): Promise<Pick<VerifyResult, "results" | "pairs">> {
    const rowBytes = this.size * this.size * 3;
    const parts: Float32Array[] = [];
    for (let a = s.from; a < s.to; a += this.batchSize) {
      const count = Math.min(this.batchSize, s.to - a);
      const images = s.pixels.subarray((a - s.from) * rowBytes, (a - s.from + count) * rowBytes);
      const batch: Batch = {
        epoch: 0,
        step: 0,
        images,
        shape: [count, this.size, this.size, 3],
        labels: s.labels.subarray(a, a + count),
        masked: s.masked.subarray(a, a + count),
        flipped: new Uint8Array(count),
        indices: new Int32Array(count),
      };
      parts.push(
        T.scope(() =>
          T.noGrad(() => {
            const { x } = batchToTensors(batch, this.device);
            return backbone.forward(x).to("f32").to("cpu").contiguous().data() as Float32Array;
          }),
        ),
      );
    }
    const all = concatFloat32(await this.coll.allGather(concatFloat32(parts)));
    const n = s.labels.length;
    const embeddings = T.tensor(all, { shape: [n, all.length / n] });
    const ev = await evaluatePairs(
      { embeddings, labels: s.labels, groups: s.masked },
      { fpr: s.fpr, collectives: this.coll },
    ).finally(() => embeddings.dispose());
    const results: Record<string, number> = {};
    for (const [subset, r] of Object.entries(ev.subsets))
      for (const k of ev.info.fprKeys) {
        const tpr = r.tpr[k];
        if (tpr !== null && tpr !== undefined) results[`${subset}@${k}`] = tpr;
      }
    return { results, pairs: ev.pairs.genuine + ev.pairs.impostor };
  }
}

async function openSet(
  s: VerifySetConfig,
  size: number,
  batchSize: number,
  rank: number,
  worldSize: number,
): Promise<OpenSet> {
  const name = verifySetName(s);
  if ("bin" in s) return { kind: "bin", name, set: loadVerificationSet(s.bin) };
  // One sampler over the whole set on every rank (world size 1, in order): which image wears a
  // mask is then the same whatever the job's world size, so figures compare across runs.
  const loader = await DataLoader.open(s.data, {
    batchSize,
    shuffle: false,
    tail: "pad",
    workers: 1,
    seed: s.seed,
    maskProb: s.maskProb,
    flipProb: 0,
    imageSize: size,
    dtype: "u8",
    layout: "nhwc",
  });
  try {
    const n = loader.dataset.length;
    if (n < 2) throw new Error(`${s.data}: ${n} image(s); pairs need at least 2`);
    const [from, to] = share(n, rank, worldSize);
    const rowBytes = size * size * 3;
    const labels = new Int32Array(n);
    const masked = new Uint8Array(n);
    const pixels = new Uint8Array((to - from) * rowBytes);
    let row = 0;
    for await (const b of loader.epoch(0)) {
      for (let i = 0; i < b.labels.length && row < n; i++, row++) {
        if (b.labels[i]! < 0) throw new Error(`${s.data}: image ${row} has no identity; pairs need labels`);
        labels[row] = b.labels[i]!;
        masked[row] = b.masked[i]!;
        if (row >= from && row < to)
          pixels.set(b.images.subarray(i * rowBytes, (i + 1) * rowBytes), (row - from) * rowBytes);
      }
    }
    return { kind: "mfr", name, fpr: s.fpr, labels, masked, from, to, pixels };
  } finally {
    await loader.close();
  }
}
