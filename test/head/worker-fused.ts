// A rank of test/head/fused.test.ts: the fused chunked head against the reference PartialFC over
// two SGD steps from the same centres: loss, feature gradients, weights and momentum after each
// update. Modes: "now" (update fused into the gradient pass), "deferred" (update at step()),
// "micro" (two micro-batches, deferred), "skip" (a discarded step changes nothing), "bf16"
// (logits under bf16 autocast against the fp32 reference).
import * as T from "../../src/torch/index.ts";
import { ProcessGroup } from "../../src/distributed/index.ts";
import { headCases } from "./cases.ts";
import { FusedPartialFC, PartialFC, type HeadOptions } from "../../src/head/index.ts";
import { SGD } from "../../src/optim/index.ts";

type Mode = "now" | "deferred" | "micro" | "skip" | "bf16";

const g = ProcessGroup.init(undefined, { timeoutMs: 30000 });
const K = g.worldSize;
const cases = headCases(K, 4);
const modes: Mode[] = ["now", "deferred", "micro", "skip", "bf16"];

const rel = (a: T.Tensor, b: T.Tensor): number =>
  a.sub(b).abs().max().item() / Math.max(1e-30, b.abs().max().item());

function stepOf(
  head: PartialFC,
  opt: SGD,
  mine: T.Tensor,
  labels: T.Tensor,
  mode: Mode | "ref",
): { loss: number; feat: T.Tensor; finite: boolean } {
  return T.scope(() => {
    const x = mine.clone().requiresGrad_();
    let loss = 0;
    const parts = mode === "micro" ? 2 : 1;
    const b = mine.size(0) / parts;
    for (let i = 0; i < parts; i++) {
      const xi = parts === 1 ? x : x.narrow(0, i * b, b);
      const yi = parts === 1 ? labels : labels.narrow(0, i * b, b);
      const forward = (): T.Tensor =>
        head.forward(xi, yi, { gradScale: 1 / parts, stepWith: mode === "now" ? opt : undefined });
      const l = mode === "bf16" ? T.autocast({ dtype: "bf16" }, forward) : forward();
      l.backward();
      loss += l.item() / parts;
    }
    const finite = head.gradientsToCheck().every((t) => t.isfinite().all().item() === 1);
    if (mode === "skip") head.zeroGrad();
    else head.step(opt);
    head.zeroGrad();
    return { loss, feat: x.grad!.clone(), finite };
  });
}

const results = cases.flatMap((c) =>
  modes.map((mode) =>
    T.scope(() => {
      const o: HeadOptions = {
        numClasses: c.classes,
        embeddingSize: c.dim,
        sampleRate: c.sampleRate,
        margin: c.margin,
        featureGradScale: "true",
        seed: 7,
      };
      const ref = new PartialFC(g, o);
      // Blocks of 3 classes: several per shard, the last one short, some without a sampled class.
      const fused = new FusedPartialFC(g, { ...o, chunk: 3 });
      const sgd = (h: PartialFC): SGD => new SGD([h.weight], { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
      const [refOpt, fusedOpt] = [sgd(ref), sgd(fused)];
      const out = {
        name: `${c.name} ${mode}`,
        lossRel: 0,
        featRel: 0,
        weightRel: 0,
        momentumRel: 0,
        finite: true,
        unchanged: true,
      };
      const before = fused.weight.clone();
      for (let step = 0; step < 2; step++) {
        T.manualSeed(123 + step);
        const X = T.randn([c.perRank * K, c.dim]);
        const Y = T.randint(0, c.classes, [c.perRank * K], { dtype: "i64" });
        const mine = X.narrow(0, g.rank * c.perRank, c.perRank);
        const labels = Y.narrow(0, g.rank * c.perRank, c.perRank);
        T.manualSeed(1000 + 10 * g.rank + step); // the same negatives for both heads
        const r = stepOf(ref, refOpt, mine, labels, mode === "micro" ? "micro" : "ref");
        T.manualSeed(1000 + 10 * g.rank + step);
        const f = stepOf(fused, fusedOpt, mine, labels, mode);
        out.finite &&= f.finite;
        // After a skipped step the reference has moved on: compare the first step only.
        if (mode !== "skip" || step === 0) {
          out.lossRel = Math.max(out.lossRel, Math.abs(f.loss - r.loss) / Math.abs(r.loss));
          out.featRel = Math.max(out.featRel, rel(f.feat, r.feat));
        }
        if (mode === "skip") {
          out.unchanged &&= fused.weight.sub(before).abs().max().item() === 0;
          out.unchanged &&= fusedOpt.stateDict().tensors.size === 0;
          continue;
        }
        // The updates (not the weights, which barely move) must agree.
        out.weightRel = Math.max(out.weightRel, rel(fused.weight.sub(before), ref.weight.sub(before)));
        const m = (o: SGD): T.Tensor => o.stateDict().tensors.get("0.momentum_buffer")!;
        out.momentumRel = Math.max(out.momentumRel, rel(m(fusedOpt), m(refOpt)));
      }
      ref.dispose();
      fused.dispose();
      return out;
    }),
  ),
);
console.log(JSON.stringify({ rank: g.rank, world: K, results }));
g.destroy();
