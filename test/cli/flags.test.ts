// Numeric flags share one set of parsers (src/cli/flags.ts): a bad value is a usage error naming
// the flag and the value, before the command does anything (opens a model, renders a face).
import { test } from "node:test";
import assert from "node:assert/strict";
import { integer, numberAbove, seconds } from "../../src/cli/flags.ts";
import { parseError } from "../helpers/cli.ts";

test("the parsers accept what they promise and refuse the rest", () => {
  assert.equal(integer("--n", 1)("12"), 12);
  assert.equal(integer("--port", 1, 65535)("65535"), 65535);
  for (const bad of ["0", "1.5", "", " ", "two", "1e400"])
    assert.throws(() => integer("--n", 1)(bad), /^InvalidArgumentError: --n must be an integer >= 1$/);
  assert.throws(() => integer("--port", 1, 65535)("65536"), /--port must be an integer in 1\.\.65535/);
  assert.equal(numberAbove("--width", 0)("0.125"), 0.125);
  for (const bad of ["0", "-1", "", "x", "Infinity"])
    assert.throws(() => numberAbove("--width", 0)(bad), /--width must be a number > 0/);
  assert.equal(seconds("--grace")("0"), 0);
  assert.throws(() => seconds("--grace")("-0.5"), /--grace must be a number of seconds >= 0/);
});

test("every command's numeric flags go through them", async () => {
  const synth = [
    "synth",
    "--out",
    "/nonexistent/never-written",
    "--identities",
    "2",
    "--images-per-identity",
    "2",
  ];
  const embed = [
    "embed",
    "--model",
    "/nonexistent/m.safetensors",
    "--data",
    "/nonexistent/d",
    "--out",
    "/x.npy",
  ];
  const cases: [string[], string, string][] = [
    [
      [...synth, "--identities", "0"],
      "--identities <n>",
      "'0' is invalid. --identities must be an integer >= 1",
    ],
    [[...synth, "--seed", "-1"], "--seed <n>", "'-1' is invalid. --seed must be an integer >= 0"],
    [[...synth, "--workers", "two"], "--workers <n>", "'two' is invalid. --workers must be an integer >= 0"],
    [
      [...embed, "--batch-size", "0"],
      "--batch-size <n>",
      "'0' is invalid. --batch-size must be an integer >= 1",
    ],
    [[...embed, "--limit", "1.5"], "--limit <n>", "'1.5' is invalid. --limit must be an integer >= 1"],
    [[...embed, "--width", "0"], "--width <w>", "'0' is invalid. --width must be a number > 0"],
    [
      ["models", "--features", "abc"],
      "--features <n>",
      "'abc' is invalid. --features must be an integer >= 1",
    ],
    [
      ["eval", "--block-size", "0"],
      "--block-size <n>",
      "'0' is invalid. --block-size must be an integer >= 1",
    ],
    [["export", "--model", "/x.pt", "--threads", "0"], "--threads <n>", "'0' is invalid. --threads must be"],
  ];
  for (const [argv, option, message] of cases)
    assert.ok(
      (await parseError(argv)).includes(`option '${option}' argument ${message}`),
      `${argv.join(" ")}: ${await parseError(argv)}`,
    );
});
