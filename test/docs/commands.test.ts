// Docs that cannot rot: every ```sh block of README.md and docs/*.md runs here, and every command in
// them succeeds (or fails exactly as the docs say it does).
//
// The convention (what the docs follow, and the first test checks): a ```sh block holds commands a
// reader can paste and run; a usage synopsis with placeholders (`mfr eval --embeddings E.npy …`)
// and sample output are ```text; TypeScript is ```ts, JSON ```json. Nothing else, and no fence
// without a tag.
//
// How the blocks run: in file order (README.md first, then docs/*.md by name), one after another in
// one scratch folder, as a reader goes through the docs: the README's demo writes runs/demo/,
// which docs/eval.md, export.md and report.md then use; docs/data.md packs data/webface42m,
// which distillation.md and training.md read. The folder holds links to the checkout's bin/,
// configs/, scripts/, src/, native/, node_modules/ and package.json, so `node bin/mfr.js`, `npm run`
// and relative config paths work, and nothing is written into the checkout; `mfr` is on PATH (as
// `npm link` puts it), and every block runs as `bash -euo pipefail` with MFR_NUM_THREADS=1.
// Fixtures stand in for what a reader brings: WebFace42M's download, InsightFace's .bin sets, an
// r600 teacher's run; and stand-ins for srun and mpirun, which start their ranks on this machine
// with the variables the real launchers set.
//
// Commands run verbatim unless listed below: SMALL maps a command's exact text (as extracted:
// continuations joined, trailing comment dropped) to a small form of the same thing; EXEMPT lists
// the few that cannot run here, why, and what is checked instead. A key that no longer matches a
// command of the docs fails the test, so neither table outlives what it describes.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { synthesizeDataset } from "../../src/data/index.ts";
import { freePort } from "../../src/distributed/index.ts";
import { type FencedBlock, blockScript, fencedBlocks, shellCommands } from "../helpers/doc-blocks.ts";
import { writeBinSet } from "../helpers/bin-set.ts";
import { root, tinyTrainConfig } from "../helpers/mfr.ts";

const DOC_FILES = [
  "README.md",
  ...fs
    .readdirSync(path.join(root, "docs"))
    .filter((f) => f.endsWith(".md"))
    .sort()
    .map((f) => `docs/${f}`),
];
const LANGS = new Set(["sh", "text", "ts", "json"]);

const blocks: FencedBlock[] = DOC_FILES.flatMap((f) =>
  fencedBlocks(f, fs.readFileSync(path.join(root, f), "utf8")),
);
const shBlocks = blocks.filter((b) => b.lang === "sh");
const documented = new Set(shBlocks.flatMap((b) => shellCommands(b).map((c) => c.text)));

/** `--set` overrides that shrink a WebFace config to a few steps of a tiny backbone on the fixture data. */
const TINY = [
  "data.batchSize=4",
  "data.workers=1",
  `'model.backbone="[1,1,1,1]"'`,
  "model.width=0.125",
  "model.embeddingSize=16",
  "head.numClasses=0",
  "optim.warmupSteps=1",
  "logEvery=1",
  "verify=null",
]
  .map((s) => `--set ${s}`)
  .join(" ");
/** And for the r240 recipe: bf16 (CPU autocast has no fp16), and no milestones past 2 steps. */
const TINY_R240 = `${TINY} --set train.amp=bf16 --set optim.decay=poly --set steps=2`;

/** Documented command → its small form. */
const SMALL: Record<string, string> = {
  // README: the demo at the size of test/cli/demo.test.ts (its own size is measured in bench/).
  "npm run demo": "node bin/mfr.js demo --identities 8 --images 8 --held-out 6 --steps 3 --teacher-steps 3",
  // docs/distillation.md
  "mfr launch --nproc-per-node 8 -- distill features --teacher runs/r600_teacher --data data/webface42m/train.rec --out stores/r600-8":
    "mfr launch --nproc-per-node 2 -- distill features --teacher runs/r600_teacher --data data/webface42m/train.rec --out stores/r600-8",
  "node --import tsx scripts/distill-experiment.ts --out runs/distill-experiment --seeds 3 --lambdas 9,3":
    "node --import tsx scripts/distill-experiment.ts --out runs/distill-experiment --seeds 1 --lambdas 9 --steps 2 --teacher-steps 2 --identities 8 --images 8 --held-out 6",
  // docs/report.md: a server runs until stopped; start it on a free port, fetch its page, stop it.
  "mfr serve runs/demo/student": [
    "mfr serve runs/demo/student --port 0 > serve.log & server=$!",
    "for _ in $(seq 300); do grep -q '^open ' serve.log && break; sleep 0.1; done",
    `url=$(sed -n 's/^open \\(http[^ ]*\\).*/\\1/p' serve.log)`,
    // Node's fetch rather than curl: the bootstrap installs no curl.
    `status=0; node -e 'fetch(process.argv[1]).then((r) => r.text()).then((t) => process.exit(/<html/i.test(t) ? 0 : 1))' "$url" || status=$?`,
    'kill "$server"; exit $status',
  ].join("\n"),
  // docs/training.md
  "mfr train configs/base.ts --set steps=1000": `mfr train configs/base.ts --set steps=2 --set checkpointEvery=1 ${TINY}`,
  "mfr launch --nproc-per-node 4 -- train configs/base.ts --set steps=1000 --resume": `mfr launch --nproc-per-node 2 -- train configs/base.ts --set steps=4 --set checkpointEvery=1 --resume ${TINY}`,
  // Two machines as two launchers here, one rank each; the first waits for the second.
  "mfr launch --nnodes 2 --node-rank 0 --nproc-per-node 8 --master-addr node0 --master-port 29500 -- train configs/webface42m_r240.ts": `mfr launch --nnodes 2 --node-rank 0 --nproc-per-node 1 --master-addr 127.0.0.1 --master-port $MFR_DOCS_PORT -- train configs/webface42m_r240.ts ${TINY_R240} --set runDir=runs/r240-2nodes & node0=$!`,
  "mfr launch --nnodes 2 --node-rank 1 --nproc-per-node 8 --master-addr node0 --master-port 29500 -- train configs/webface42m_r240.ts": `mfr launch --nnodes 2 --node-rank 1 --nproc-per-node 1 --master-addr 127.0.0.1 --master-port $MFR_DOCS_PORT -- train configs/webface42m_r240.ts ${TINY_R240} --set runDir=runs/r240-2nodes\nwait "$node0"`,
  "export MASTER_PORT=29500": "export MASTER_PORT=$MFR_DOCS_PORT",
  "srun mfr train configs/webface42m_r240.ts": `srun --ntasks 2 mfr train configs/webface42m_r240.ts ${TINY_R240} --set runDir=runs/r240-slurm`,
  "mpirun -np 16 -H node0:8,node1:8 -x MASTER_ADDR=node0 -x MASTER_PORT=29500 mfr train configs/webface42m_r240.ts": `mpirun -np 2 -x MASTER_ADDR=127.0.0.1 -x MASTER_PORT=$MFR_DOCS_PORT mfr train configs/webface42m_r240.ts ${TINY_R240} --set runDir=runs/r240-mpi`,
};

const sh = (cmd: string, cwd = root): { status: number | null; out: string } => {
  const r = spawnSync("bash", ["-euo", "pipefail", "-c", cmd], { cwd, encoding: "utf8" });
  return { status: r.status, out: r.stdout + r.stderr };
};
const parses = (script: string): void =>
  assert.equal(sh(`bash -n ${script}`).status, 0, `${script} does not parse`);
const mentions = (file: string, text: string): void =>
  assert.ok(fs.readFileSync(path.join(root, file), "utf8").includes(text), `${file} does not handle ${text}`);

/** Commands that cannot run here: why, and the cheap check that runs instead. */
const EXEMPT: Record<string, { why: string; check: () => void }> = {
  "npm test": {
    why: "it is this suite (after the bootstrap, type-check and lint); CI runs it through .ci/run",
    check: () => {
      const lines = fs
        .readFileSync(path.join(root, ".ci/run"), "utf8")
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l !== "" && !l.startsWith("#") && !/^(set|cd) /.test(l));
      assert.deepEqual(lines, ["npm test"], ".ci/run runs exactly the README's test command");
    },
  },
  "MFR_LIBTORCH=$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))') npm run bootstrap": {
    why: "it rebuilds the native addon against another libtorch (minutes of compiling; a CUDA PyTorch is the point)",
    check: () => {
      parses("scripts/bootstrap.sh");
      mentions("scripts/build-native.sh", "MFR_LIBTORCH");
      assert.match(
        JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")).scripts.bootstrap,
        /bootstrap\.sh/,
      );
    },
  },
  "bash scripts/gpu-check.sh --prepare": {
    why: "it xz-compresses Node's binary and tsx with esbuild (~150 MB) on every core, about a minute, for a GPU machine",
    check: () => {
      parses("scripts/gpu-check.sh");
      mentions("scripts/gpu-check.sh", "--prepare");
    },
  },
  "bash scripts/gpu-check.sh": {
    why: "it needs an NVIDIA GPU, CUDA's compiler and PyTorch 2.x",
    check: () => {
      parses("scripts/gpu-check.sh");
      mentions("scripts/gpu-check.sh", "--no-bench");
      assert.ok(fs.existsSync(path.join(root, "test-gpu")), "test-gpu/ exists");
    },
  },
};

/** Commands documented to fail: the exit code and what stderr says. */
const FAILS: Record<string, { code: number; stderr: RegExp }> = {
  // docs/cli.md's error example
  "node bin/mfr.js --verbose data info no-such-folder": {
    code: 1,
    stderr: /^mfr: Error: no-such-folder: no such file or folder\n\s+at openDataset \(/,
  },
};

// Stand-ins for the cluster launchers: the ranks start here, with the variables the real ones set.
const SRUN = `#!/usr/bin/env bash
# srun's stand-in: -n/--ntasks tasks (default SLURM_NTASKS, else 1) on this machine.
set -euo pipefail
n=\${SLURM_NTASKS:-1}
while [[ $# -gt 0 && $1 == -* ]]; do
  case $1 in -n | --ntasks) n=$2; shift 2 ;; --ntasks=*) n=\${1#*=}; shift ;; *) shift ;; esac
done
pids=()
for ((r = 0; r < n; r++)); do
  SLURM_PROCID=$r SLURM_NTASKS=$n SLURM_LOCALID=$r SLURM_JOB_NODELIST=127.0.0.1 "$@" &
  pids+=($!)
done
rc=0
for p in "\${pids[@]}"; do wait "$p" || rc=$?; done
exit $rc
`;
const MPIRUN = `#!/usr/bin/env bash
# mpirun's stand-in: -np N processes on this machine; -x VAR=value exported to them, -H ignored.
set -euo pipefail
n=1
while [[ $# -gt 0 && $1 == -* ]]; do
  case $1 in -np | -n) n=$2; shift 2 ;; -x) export "\${2?}"; shift 2 ;; -H | --host) shift 2 ;; *) shift ;; esac
done
pids=()
for ((r = 0; r < n; r++)); do
  OMPI_COMM_WORLD_RANK=$r OMPI_COMM_WORLD_SIZE=$n OMPI_COMM_WORLD_LOCAL_RANK=$r OMPI_COMM_WORLD_LOCAL_SIZE=$n "$@" &
  pids+=($!)
done
rc=0
for p in "\${pids[@]}"; do wait "$p" || rc=$?; done
exit $rc
`;

let work = "";
let binDir = "";

function run(
  script: string,
  env: NodeJS.ProcessEnv,
  timeoutS: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn("bash", ["-euo", "pipefail", "-c", script], {
      cwd: work,
      env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${timeoutS} s]`;
      process.kill(-child.pid!, "SIGKILL");
    }, timeoutS * 1000);
    child.on("close", (code) => {
      clearTimeout(timer);
      // Whatever the block left running in the background (a launcher whose peer failed) goes too.
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // the group is already gone
      }
      resolve({ code, stdout, stderr });
    });
  });
}

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-docs-"));
  for (const f of [
    "bin",
    "configs",
    "scripts",
    "src",
    "native",
    "node_modules",
    "package.json",
    "tsconfig.json",
  ])
    fs.symlinkSync(path.join(root, f), path.join(work, f));
  binDir = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-docs-bin-"));
  const put = (name: string, text: string): void =>
    fs.writeFileSync(path.join(binDir, name), text, { mode: 0o755 });
  put("mfr", `#!/bin/sh\nexec "${process.execPath}" "${path.join(root, "bin/mfr.js")}" "$@"\n`);
  put("srun", SRUN);
  put("mpirun", MPIRUN);

  // WebFace42M as downloaded (docs/data.md): numbered sub-datasets of <identity>/<image>.jpg.
  for (const part of [0, 1])
    await synthesizeDataset({
      out: path.join(work, `WebFace42M/${part}`),
      identities: 3,
      imagesPerIdentity: 4,
      seed: part,
    });
  // InsightFace's verification sets, which docs/data.md has the reader put beside train.rec.
  fs.mkdirSync(path.join(work, "data/webface42m"), { recursive: true });
  for (const [i, set] of ["lfw", "cfp_fp", "agedb_30"].entries())
    writeBinSet(path.join(work, `data/webface42m/${set}.bin`), 20, i);
  // An r600 teacher's run (docs/distillation.md): a few steps of a tiny backbone.
  const cfg = tinyTrainConfig(work, path.join(work, "WebFace42M/0"), path.join(work, "runs/r600_teacher"), {
    steps: 2,
    checkpointEvery: 2,
  });
  const r = await run(
    `mfr train ${cfg}`,
    { ...process.env, PATH: `${binDir}:${process.env.PATH}`, MFR_NUM_THREADS: "1" },
    120,
  );
  assert.equal(r.code, 0, r.stderr);
});

after(() => {
  if (process.env.MFR_KEEP_DOCS_DIR) console.log(`docs scratch folder: ${work}`);
  else fs.rmSync(work, { recursive: true, force: true });
  fs.rmSync(binDir, { recursive: true, force: true });
});

test("every fence is tagged sh, text, ts or json", () => {
  const bad = blocks
    .filter((b) => !LANGS.has(b.lang))
    .map((b) => `${b.file}:${b.line} ${b.lang || "(untagged)"}`);
  assert.deepEqual(bad, []);
  assert.ok(shBlocks.length > 10, "the docs have shell blocks");
});

test("the extractor: fences in list items, continuations, comments outside quotes", () => {
  const md = [
    "text",
    "- item:",
    "  ```sh",
    "  a --x 1 \\",
    "    --y '#not a comment' # a comment",
    "  # only a comment",
    "  b | awk '{ print $1 }'   # c",
    "  ```",
    "```text",
    "not a command",
    "```",
  ].join("\n");
  const [sh, text] = fencedBlocks("x.md", md);
  assert.equal(sh!.lang, "sh");
  assert.equal(sh!.line, 3);
  assert.equal(text!.lang, "text");
  assert.deepEqual(
    shellCommands(sh!).map((c) => [c.line, c.text]),
    [
      [4, "a --x 1 --y '#not a comment'"],
      [7, "b | awk '{ print $1 }'"],
    ],
  );
  assert.equal(
    blockScript(sh!, (t) => (t.startsWith("a ") ? "small" : undefined)),
    "small\n# only a comment\nb | awk '{ print $1 }'   # c\n",
  );
});

test("the README's quick start is `npm run demo` and `npm test`", () => {
  const first = shBlocks.find((b) => b.file === "README.md")!;
  assert.deepEqual(
    shellCommands(first).map((c) => c.text),
    ["npm run demo", "npm test"],
  );
});

test("every substitution, exemption and expected failure names a command of the docs", () => {
  const stale = [...Object.keys(SMALL), ...Object.keys(EXEMPT), ...Object.keys(FAILS)].filter(
    (k) => !documented.has(k),
  );
  assert.deepEqual(stale, [], "commands no longer in the docs: drop or update their entries");
});

for (const [command, { why, check }] of Object.entries(EXEMPT))
  test(`not run here: ${command} (${why})`, () => check());

for (const block of shBlocks) {
  const commands = shellCommands(block);
  const failing = commands.filter((c) => FAILS[c.text]);
  // A block of exempt commands alone has nothing to run: their checks are the tests above.
  if (commands.every((c) => EXEMPT[c.text])) continue;
  test(`${block.file}:${block.line}`, async () => {
    assert.ok(
      failing.length === 0 || commands.length === 1,
      "a command documented to fail stands alone in its block",
    );
    const script = blockScript(block, (text) => (EXEMPT[text] ? `: exempt: ${text}` : SMALL[text]));
    const env = {
      ...process.env,
      PATH: `${binDir}:${process.env.PATH}`,
      MFR_NUM_THREADS: "1",
      MFR_DOCS_PORT: String(await freePort()),
    };
    const r = await run(script, env, 240);
    const expected = failing[0] && FAILS[failing[0].text];
    const shown = `script:\n${script}\nstdout:\n${r.stdout.slice(-4000)}\nstderr:\n${r.stderr.slice(-4000)}`;
    if (expected) {
      assert.equal(r.code, expected.code, shown);
      assert.match(r.stderr, expected.stderr, shown);
    } else assert.equal(r.code, 0, shown);
  });
}
