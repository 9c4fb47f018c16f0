// `mfr launch` refuses flag values it cannot use, naming the flag, before starting any rank.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseError } from "../helpers/cli.ts";
import { mfr } from "../helpers/mfr.ts";

// Ranks running `true` start only when the flags were accepted.
const launchError = (flags: string[]): Promise<string> => parseError(["launch", ...flags, "--", "true"]);

test("mfr launch: out-of-range and non-numeric flags are errors naming the flag", async () => {
  const cases: [string[], RegExp][] = [
    [["--nproc-per-node", "0"], /--nproc-per-node must be an integer >= 1/],
    [["--nproc-per-node", "1.5"], /--nproc-per-node must be an integer >= 1/],
    [["--nproc-per-node", "two"], /--nproc-per-node must be an integer >= 1/],
    [["--nproc-per-node", "1", "--nnodes", "0"], /--nnodes must be an integer >= 1/],
    [["--nproc-per-node", "1", "--node-rank", "-1"], /--node-rank must be an integer >= 0/],
    [["--nproc-per-node", "1", "--master-port", "0"], /--master-port must be an integer in 1\.\.65535/],
    [["--nproc-per-node", "1", "--master-port", "65536"], /--master-port must be an integer in 1\.\.65535/],
    [["--nproc-per-node", "1", "--master-port", ""], /--master-port must be an integer in 1\.\.65535/],
    [["--nproc-per-node", "1", "--grace", "-1"], /--grace must be a number of seconds >= 0/],
    [["--nproc-per-node", "1", "--grace", "1s"], /--grace must be a number of seconds >= 0/],
  ];
  for (const [flags, want] of cases) assert.match(await launchError(flags), want, flags.join(" "));
});

test("mfr launch: --node-rank must be below --nnodes", async () => {
  const flags = ["--nproc-per-node", "1", "--nnodes", "2", "--master-port", "29500", "--node-rank"];
  assert.match(await launchError([...flags, "2"]), /--node-rank 2 must be below --nnodes 2/);
});

test("node bin/mfr.js launch refuses --master-port 99999 and --grace abc", async () => {
  for (const [flag, value, want] of [
    [
      "--master-port",
      "99999",
      /option '--master-port <port>' argument '99999' is invalid\. --master-port must be an integer in 1\.\.65535/,
    ],
    [
      "--grace",
      "abc",
      /option '--grace <seconds>' argument 'abc' is invalid\. --grace must be a number of seconds >= 0/,
    ],
  ] as const) {
    const r = await mfr(["launch", "--nproc-per-node", "1", flag, value, "--", "models"]);
    assert.equal(r.code, 2, "a usage error (docs/cli.md)");
    assert.match(r.stderr, want);
    assert.doesNotMatch(r.stdout, /mobilefacenet/);
  }
});
