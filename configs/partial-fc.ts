// base with Partial FC at 0.1 (arcface_torch's setting for very many identities).
import { defineConfig } from "../src/train/config.ts";
import base from "./base.ts";

export default defineConfig({
  ...base,
  runDir: "runs/webface42m-r50-pfc",
  head: { ...base.head, sampleRate: 0.1 },
});
