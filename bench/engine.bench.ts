// The engine against PyTorch on this machine, same libtorch, same threads, interleaved rounds,
// medians: (a) the cost of one small op call (add of two 4-element tensors), (b) forward +
// backward of a 3-layer conv net (conv-BN-ReLU x3, stride 2) at batch 32 on 112x112 inputs.
// `npm run bench engine`, or `node --import tsx bench/engine.bench.ts`.
// Knobs: BENCH_ROUNDS (5), BENCH_THREADS (all cores), BENCH_PYTHON (/usr/bin/python3).
import { spawn } from "node:child_process";
import { availableParallelism } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import * as T from "../src/torch/index.ts";

const env = process.env;
const rounds = Number(env.BENCH_ROUNDS ?? 5);
const threads = Number(env.BENCH_THREADS ?? availableParallelism());
const python = env.BENCH_PYTHON ?? "/usr/bin/python3";
const here = path.dirname(fileURLToPath(import.meta.url));
const SMALL_N = 200_000;
const BATCH = 32;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function torchSide(): {
  ask: (msg: object) => Promise<Record<string, number | number[]>>;
  close: () => void;
} {
  const child = spawn(python, [path.join(here, "engine_torch.py")], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    async ask(msg) {
      child.stdin.write(JSON.stringify({ threads, ...msg }) + "\n");
      const r = await lines.next();
      if (r.done) throw new Error("the PyTorch side exited");
      return JSON.parse(r.value as string) as Record<string, number | number[]>;
    },
    close: () => child.stdin.end(),
  };
}

function smallOp(n: number): number {
  const a = T.randn([4]);
  const b = T.randn([4]);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) a.add(b).dispose();
  const us = ((performance.now() - t0) * 1000) / n;
  a.dispose();
  b.dispose();
  return us;
}

function convNet(iters: number): number[] {
  T.manualSeed(0);
  const ws = [
    T.randn([32, 3, 3, 3]).mul(0.1),
    T.randn([64, 32, 3, 3]).mul(0.05),
    T.randn([128, 64, 3, 3]).mul(0.05),
  ];
  for (const w of ws) w.requiresGrad = true;
  const bns = [32, 64, 128].map(
    (c) => [T.ones([c], { requiresGrad: true }), T.zeros([c], { requiresGrad: true })] as const,
  );
  const x = T.randn([BATCH, 3, 112, 112]);
  const out: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    T.scope(() => {
      let h = x;
      ws.forEach((w, j) => {
        const [g, b] = bns[j]!;
        h = T.batchNorm(T.conv2d(h, w, undefined, { stride: 2, padding: 1 }), {
          weight: g,
          bias: b,
          training: true,
        }).relu();
      });
      h.mean().backward();
      for (const w of ws) w.grad = undefined;
      for (const [g, b] of bns) {
        g.grad = undefined;
        b.grad = undefined;
      }
    });
    out.push((performance.now() - t0) / 1000);
  }
  return out;
}

async function main(): Promise<void> {
  T.setNumThreads(threads);
  const torch = torchSide();
  const small: { mfr: number[]; torch: number[] } = { mfr: [], torch: [] };
  const conv: { mfr: number[]; torch: number[] } = { mfr: [], torch: [] };
  smallOp(20_000); // warm-up
  convNet(1);
  await torch.ask({ what: "small_op", n: 20_000 });
  await torch.ask({ what: "conv", batch: BATCH, iters: 1 });
  for (let r = 0; r < rounds; r++) {
    small.mfr.push(smallOp(SMALL_N));
    small.torch.push((await torch.ask({ what: "small_op", n: SMALL_N })).us as number);
    conv.mfr.push(median(convNet(3)));
    conv.torch.push(median((await torch.ask({ what: "conv", batch: BATCH, iters: 3 })).seconds as number[]));
  }
  torch.close();
  const sm = median(small.mfr);
  const st = median(small.torch);
  const cm = median(conv.mfr);
  const ct = median(conv.torch);
  console.log(
    `engine vs PyTorch ${T.buildInfo().torchVersion}, ${threads} threads, ${rounds} rounds, medians`,
  );
  console.log(`| measure | mfr | PyTorch | mfr/PyTorch time |`);
  console.log(`| --- | --- | --- | --- |`);
  console.log(
    `| add of two 4-element tensors (µs/call) | ${sm.toFixed(2)} | ${st.toFixed(2)} | ${(sm / st).toFixed(2)} |`,
  );
  console.log(
    `| 3-layer conv net fwd+bwd, batch ${BATCH}, 112x112 (ms/step) | ${(cm * 1000).toFixed(1)} | ${(ct * 1000).toFixed(1)} | ${(cm / ct).toFixed(2)} |`,
  );
}

await main();
