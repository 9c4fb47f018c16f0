// Two machines on one host: two network namespaces joined by a veth pair, with addresses of a
// private /30 that exist only inside them (nothing is sent anywhere else). One `mfr launch` per
// namespace runs a 2-node x 1-rank job over that link. It trains; cutting the link mid-run ends
// both sides within the collective timeout (plus the diagnosis) with errors that name the other
// rank; the last checkpoint stays intact; --resume over the restored link continues from it.
// Needs root and iproute2's `ip` (scripts/bootstrap.sh installs it): without them it fails.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { synthesizeDataset } from "../../src/data/index.ts";
import { listCheckpoints } from "../../src/train/index.ts";
import { mfrBin, root, tinyDemoSets, type Outcome } from "../helpers/mfr.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-nodes-"));
const data = path.join(tmp, "data");
const runDir = path.join(tmp, "run");
const id = `${process.pid % 100000}`;
const netns = [`mfr${id}n0`, `mfr${id}n1`];
const veth = [`mfr${id}v0`, `mfr${id}v1`];
const addr = ["10.213.0.1", "10.213.0.2"];
const timeoutS = 10;
const started: number[] = [];

function ip(...args: string[]): void {
  try {
    execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
  } catch (e) {
    const err = e as Error & { stderr?: Buffer };
    throw new Error(
      `ip ${args.join(" ")}: ${err.stderr?.toString().trim() || err.message} ` +
        "(this test needs root and iproute2's ip: scripts/bootstrap.sh installs it)",
      { cause: e },
    );
  }
}

function removeNamespaces(): void {
  // a veth pair not yet moved into the namespaces is still in this one
  for (const n of [...netns, veth[0]!]) {
    try {
      // deleting a namespace deletes its end of the veth pair, and so the pair
      if (n === veth[0]) ip("link", "del", n);
      else ip("netns", "del", n);
    } catch {
      // never made
    }
  }
}

before(async () => {
  removeNamespaces();
  for (const n of netns) ip("netns", "add", n);
  ip("link", "add", veth[0]!, "type", "veth", "peer", "name", veth[1]!);
  for (const i of [0, 1]) {
    ip("link", "set", veth[i]!, "netns", netns[i]!);
    ip("-n", netns[i]!, "addr", "add", `${addr[i]}/30`, "dev", veth[i]!);
    ip("-n", netns[i]!, "link", "set", veth[i]!, "up");
    ip("-n", netns[i]!, "link", "set", "lo", "up");
  }
  await synthesizeDataset({ out: data, identities: 10, imagesPerIdentity: 4, seed: 1 });
});

after(() => {
  for (const pgid of started) {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  removeNamespaces();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Starts `mfr launch` for node `node` inside its namespace: one rank training configs/demo.ts. */
function startNode(
  node: number,
  port: number,
  sets: Record<string, string | number>,
  extra: string[] = [],
  env: NodeJS.ProcessEnv = {},
) {
  const args = [
    ...["netns", "exec", netns[node]!, process.execPath, mfrBin, "launch"],
    ...["--nnodes", "2", "--node-rank", String(node), "--nproc-per-node", "1"],
    ...["--master-addr", addr[0]!, "--master-port", String(port), "--grace", "1"],
    ...["--", "train", "configs/demo.ts", ...extra],
    ...tinyDemoSets(runDir, data, { checkpointEvery: 2, "dist.timeoutS": timeoutS, ...sets }),
  ];
  // Its own process group, so that cleanup reaches the launcher's ranks too.
  const child = spawn("ip", args, {
    cwd: root,
    env: { ...process.env, MFR_NUM_THREADS: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  started.push(child.pid!);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Outcome>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { done, stderr: () => stderr };
}

const steps = (file: string): number[] =>
  fs
    .readFileSync(path.join(runDir, file), "utf8")
    .trim()
    .split("\n")
    .map((l) => (JSON.parse(l) as { step: number }).step);

function verifyChecksums(dir: string): void {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8")) as {
    files: Record<string, string>;
  };
  assert.ok(Object.keys(manifest.files).includes("head-rank1.safetensors"));
  for (const [f, sum] of Object.entries(manifest.files)) {
    const actual = createHash("sha256")
      .update(fs.readFileSync(path.join(dir, f)))
      .digest("hex");
    assert.equal(actual, sum, `${dir}/${f}`);
  }
}

test(
  "2 nodes x 1 rank over a veth link: train, cut the link mid-run, resume",
  { timeout: 240_000 },
  async () => {
    const t0 = Date.now();
    const mark = (what: string): void =>
      console.error(`# ${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    // 1. It trains across the link.
    const first = [0, 1].map((n) => startNode(n, 29500, { steps: 4 }));
    const [a0, a1] = await Promise.all(first.map((n) => n.done));
    assert.equal(a0!.code, 0, a0!.stderr);
    assert.equal(a1!.code, 0, a1!.stderr);
    assert.match(a0!.stderr, /mfr train: 2 rank\(s\), 10 classes/);
    assert.deepEqual(steps("metrics.jsonl"), [1, 2, 3, 4]);
    assert.deepEqual(steps("metrics-rank1.jsonl"), [1, 2, 3, 4]);
    mark("trained 4 steps");

    // 2. The link goes down mid-run, once a checkpoint beyond the first run's exists.
    const second = [0, 1].map((n) => startNode(n, 29501, { steps: 100000 }, ["--resume"]));
    const deadline = Date.now() + 90_000;
    while (!listCheckpoints(runDir).some((c) => c.step >= 6)) {
      assert.ok(Date.now() < deadline, `no checkpoint past step 4:\n${second[0]!.stderr()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    ip("-n", netns[1]!, "link", "set", veth[1]!, "down");
    const cut = Date.now();
    mark("cut the link");
    // A hang fails here with what each node printed, not as the test's bare timeout.
    const hung = new Promise<never>((_, reject) =>
      setTimeout(
        () =>
          reject(
            new Error(
              `a node still runs 60 s after the cut:\n${second.map((n) => n.stderr()).join("\n---\n")}`,
            ),
          ),
        60_000,
      ).unref(),
    );
    const ended = await Promise.race([
      Promise.all(second.map((n) => n.done.then((o) => ({ ...o, s: (Date.now() - cut) / 1000 })))),
      hung,
    ]);
    const [b0, b1] = ended;
    mark("both nodes ended");
    for (const b of ended) {
      assert.equal(b.code, 1, b.stderr);
      // the collective timeout, the wait for the other rank's report (5 s), the launcher's grace
      assert.ok(b.s < timeoutS + 5 + 1 + 10, `ended ${b.s} s after the cut`);
    }
    assert.match(
      b0!.stderr,
      new RegExp(`^mfr: rank 1 did not answer within ${timeoutS} s in .*, seen from rank 0`, "m"),
    );
    assert.match(
      b1!.stderr,
      new RegExp(
        `^mfr: rank 0 did not answer within ${timeoutS} s in .*, seen from rank 1; ` +
          `nor did the store it serves at ${addr[0]}:29501`,
        "m",
      ),
    );
    const last = listCheckpoints(runDir).at(-1)!;
    assert.ok(last.step >= 6);
    verifyChecksums(last.dir);

    // 3. Over the restored link, --resume continues from that checkpoint. (Node 1 names its
    // interface this time; the runs above found it through the route to the master.)
    ip("-n", netns[1]!, "link", "set", veth[1]!, "up");
    const third = [0, 1].map((n) =>
      startNode(n, 29502, { steps: last.step + 2 }, ["--resume"], n ? { GLOO_SOCKET_IFNAME: veth[1] } : {}),
    );
    const [c0, c1] = await Promise.all(third.map((n) => n.done));
    assert.equal(c0!.code, 0, c0!.stderr);
    assert.equal(c1!.code, 0, c1!.stderr);
    assert.match(c0!.stderr, new RegExp(`steps ${last.step}\\.\\.${last.step + 2} \\(resumed\\)`));
    assert.deepEqual(steps("metrics.jsonl").slice(-2), [last.step + 1, last.step + 2]);
    assert.deepEqual(steps("metrics-rank1.jsonl").slice(-2), [last.step + 1, last.step + 2]);
    mark("resumed");
  },
);
