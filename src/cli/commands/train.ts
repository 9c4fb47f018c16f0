// `mfr train CONFIG [--set key=value ...] [--resume [CHECKPOINT]]`: one process, or one rank under `mfr launch`.
// Rank 0 shows a progress bar (or a line per logged step when stderr is not a terminal).
// Ctrl-C stops every rank after the same step with a complete checkpoint there, prints how to
// resume and exits 130 (the shell's code for SIGINT); a second Ctrl-C stops at once, and the
// atomic writes still leave no half-written file (a partial checkpoint has no manifest).
import { type Command, InvalidArgumentError } from "commander";
import { SingleBar } from "cli-progress";
import { isGlobalRankZero, placementFromEnv } from "../../distributed/index.ts";
import { openOnnxTeacher } from "../../eval/index.ts";
import { writeRunReport } from "../../report/index.ts";
import { integer } from "../flags.ts";
import {
  type MemoryPlan,
  type PlanRow,
  type TrainConfig,
  baseLr,
  loadConfigFile,
  memoryPlan,
  train,
  type TrainEvent,
} from "../../train/index.ts";

const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(2)} GiB`.padStart(11);

/** The base rate a run on `worldSize` ranks uses, and how linear scaling got it from the config. */
function describeLr(cfg: TrainConfig, worldSize: number, rate: number): string {
  const o = cfg.optim;
  const lr = `lr ${rate}`;
  if (o.referenceBatch === undefined) return lr;
  const batch = cfg.data.batchSize * worldSize;
  return `${lr} (optim.lr ${o.lr} × global batch ${batch} / optim.referenceBatch ${o.referenceBatch})`;
}

/** The resolved config as JSON, then the memory plan per rank, on stdout. */
function printConfig(file: string, cfg: TrainConfig, plan: MemoryPlan): void {
  console.log(`# ${file}, resolved and valid`);
  console.log(JSON.stringify(cfg, null, 2));
  const t = cfg.train;
  console.log(
    `\n# memory per rank at ${plan.worldSize} rank(s) (--world-size), amp ${t.amp}, ZeRO-${t.zero}, ` +
      `${t.microBatches} micro-batch(es), checkpointing ${JSON.stringify(t.checkpoint)}; estimates, docs/training.md`,
  );
  const rows = (title: string, rs: readonly PlanRow[]): void => {
    console.log(title);
    for (const r of rs) console.log(`  ${r.item.padEnd(58)} ${gib(r.bytes)}   ${r.how}`);
  };
  rows(`backbone ${cfg.model.backbone}`, plan.backbone);
  if (plan.shardClasses === undefined)
    console.log("head: head.numClasses is 0 (taken from the data): set it for the head's figures");
  else rows(`head: ${plan.shardClasses} classes on the largest shard`, plan.head);
  if (plan.activations) {
    const a = plan.activations;
    rows(
      "activations kept for backward",
      t.checkpoint === "none" ? [a.plain, a.checkpointed] : [a.checkpointed, a.plain],
    );
  } else console.log(`activations: no estimate for ${cfg.model.backbone} (iResNets only)`);
  console.log(`total as configured ${gib(plan.total)}`);
  console.log(`${cfg.optim.name} learning rate at ${plan.worldSize} rank(s): ${baseLr(cfg, plan.worldSize)}`);
  if (cfg.distill?.mode === "online")
    console.log(`plus the teacher ${cfg.distill.teacher} on every rank (its weights; no activations kept)`);
}

interface TrainFlags {
  set: string[];
  resume?: boolean | string;
  printConfig?: boolean;
  worldSize?: number;
}

export function registerTrain(program: Command): void {
  program
    .command("train")
    .description(
      "train a backbone with the model-parallel margin head (configs/*.ts; run under mfr launch for K ranks)",
    )
    .argument("<config>", "config module, e.g. configs/base.ts")
    .option(
      "--set <key=value>",
      "override a config key (repeatable)",
      (v: string, acc: string[]) => [...acc, v],
      [],
    )
    .option(
      "--resume [checkpoint]",
      "continue from the newest complete checkpoint in runDir (there must be one), or from the step-N folder given",
    )
    .option(
      "--print-config",
      "resolve and validate the config, print it and a memory plan per rank, and exit (reads no data)",
    )
    .option(
      "--world-size <k>",
      "ranks the --print-config plan is for (default: the launch's WORLD_SIZE, else 1)",
      integer("--world-size", 1),
    )
    .action(async (file: string, o: TrainFlags) => {
      const cfg = await loadConfigFile(file, o.set);
      if (o.worldSize !== undefined && !o.printConfig)
        throw new InvalidArgumentError(
          "--world-size is for --print-config (a run's world size is the launch's)",
        );
      if (o.printConfig) {
        if (o.resume !== undefined)
          throw new InvalidArgumentError("--print-config starts no run: drop --resume");
        printConfig(file, cfg, memoryPlan(cfg, o.worldSize ?? placementFromEnv().worldSize));
        return;
      }
      const rank0 = isGlobalRankZero();
      const tty = process.stderr.isTTY && rank0;
      const bar = tty
        ? new SingleBar({ format: "train [{bar}] {value}/{total} loss {loss} lr {lr} {ips} img/s" })
        : undefined;
      let lastCheckpoint: string | undefined;
      const onEvent = (e: TrainEvent): void => {
        if (!rank0) return;
        switch (e.kind) {
          case "start":
            console.error(
              `mfr train: ${e.worldSize} rank(s), ${e.numClasses} classes, ${(e.params / 1e6).toFixed(2)} M backbone parameters, ` +
                `steps ${e.startStep}..${e.steps}${e.startStep ? " (resumed)" : ""}, ${describeLr(cfg, e.worldSize, e.lr)}`,
            );
            bar?.start(e.steps, e.startStep, { loss: "-", lr: "-", ips: "-" });
            break;
          case "step": {
            const m = e.metrics;
            const fields = {
              loss:
                m.loss.toFixed(4) +
                (m.distill !== undefined ? ` (ce ${m.ce!.toFixed(4)} distill ${m.distill.toFixed(4)})` : ""),
              lr: m.lr.toExponential(2),
              ips: m.imagesPerSec.toFixed(0),
            };
            if (bar) bar.update(m.step, fields);
            else if (m.step % cfg.logEvery === 0)
              console.error(
                `step ${m.step} loss ${fields.loss} lr ${fields.lr} ${fields.ips} img/s` +
                  (m.lossScale !== undefined ? ` loss scale ${m.lossScale}` : ""),
              );
            break;
          }
          case "verify":
            bar?.stop();
            console.error(
              `step ${e.step} verify ${e.set} (${e.pairs} pairs, ${e.seconds.toFixed(1)} s): ` +
                Object.entries(e.results)
                  .map(([k, v]) => `${k} ${v.toFixed(4)}`)
                  .join(", "),
            );
            break;
          case "checkpoint":
            lastCheckpoint = e.dir;
            if (!bar) console.error(`checkpoint ${e.dir}`);
            break;
          case "warning":
            console.error(`warning: ${e.message}`);
            break;
        }
      };
      const stop = new AbortController();
      const onInterrupt = (): void => {
        bar?.stop();
        if (rank0)
          console.error(
            `mfr train: stopping after this step${cfg.checkpointEvery > 0 ? " and saving a checkpoint there" : ""} (Ctrl-C again to stop at once)`,
          );
        stop.abort();
      };
      process.once("SIGINT", onInterrupt);
      let r: Awaited<ReturnType<typeof train>>;
      try {
        r = await train(cfg, {
          resume: o.resume ?? false,
          onEvent,
          signal: stop.signal,
          onnxTeacher: openOnnxTeacher,
        });
      } finally {
        process.off("SIGINT", onInterrupt);
      }
      bar?.stop();
      r.backbone.dispose();
      if (rank0) console.error(`report: ${await writeRunReport(cfg.runDir, { config: cfg })}`);
      if (r.interruptedAt !== undefined) {
        if (rank0) console.error(resumeHint(file, o.set, r.interruptedAt, lastCheckpoint));
        process.exitCode = 130;
        return;
      }
      if (rank0 && r.losses.length) {
        console.error(
          `loss ${r.losses[0]!.loss.toFixed(4)} -> ${r.losses.at(-1)!.loss.toFixed(4)}; metrics in ${cfg.runDir}/metrics.jsonl`,
        );
      }
    });
}

/** What to type to continue an interrupted run (the same config and overrides, plus --resume). */
function resumeHint(file: string, sets: string[], step: number, checkpoint: string | undefined): string {
  if (!checkpoint)
    return `mfr train: interrupted after step ${step}; checkpointEvery is 0, so there is nothing to resume from`;
  const quote = (a: string): string => (/^[\w./:=,+-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`);
  const args = ["mfr", "train", file, ...sets.flatMap((s) => ["--set", s]), "--resume"].map(quote).join(" ");
  const launched = Number(process.env.WORLD_SIZE ?? "1") > 1 ? " (under mfr launch with the same flags)" : "";
  return (
    `mfr train: interrupted after step ${step}; the newest checkpoint, ${checkpoint}, is complete.\n` +
    `Resume with${launched}:\n  ${args}`
  );
}
