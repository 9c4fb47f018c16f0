// A rank (or the single process) of test/train/resume.test.ts: runs the trainer on a tiny
// config; TEST_TRAIN (JSON) sets the run, and may SIGKILL this process at a given step.
import { train, parseConfig, type TrainConfigInput } from "../../src/train/index.ts";

interface Spec {
  runDir: string;
  data: string;
  steps: number;
  stopAfter?: number;
  checkpointEvery: number;
  resume?: boolean;
  killAtStep?: number;
  killRank?: number;
  timeoutS?: number;
  train?: TrainConfigInput["train"];
}
const spec = JSON.parse(process.env.TEST_TRAIN ?? "{}") as Spec;
const rank = Number(process.env.RANK ?? 0);
const input: TrainConfigInput = {
  runDir: spec.runDir,
  data: { path: spec.data, batchSize: 4, workers: 1, maskProb: 0.5 },
  model: { backbone: "[1,1,1,1]", width: 0.125, embeddingSize: 16 },
  head: { sampleRate: 0.5, margin: "cosface" },
  optim: { lr: 0.05, warmupSteps: 2 },
  dist: { timeoutS: spec.timeoutS ?? 60 },
  steps: spec.steps,
  checkpointEvery: spec.checkpointEvery,
  keepCheckpoints: 2,
  train: spec.train,
};
const r = await train(parseConfig(input), {
  resume: !!spec.resume,
  stopAfter: spec.stopAfter,
  onEvent: (e) => {
    if (e.kind === "step" && e.metrics.step === spec.killAtStep && (spec.killRank ?? rank) === rank) {
      process.kill(process.pid, "SIGKILL");
    }
  },
});
console.log(JSON.stringify({ rank, startStep: r.startStep, losses: r.losses }));
r.backbone.dispose();
