// The demo's teacher: the student's config (demo.ts) with a deeper backbone. It trains without
// activation checkpointing and micro-batches, which cost time (a recomputed forward, smaller
// products) and save memory it does not need; the student's run is where the demo shows them.
import { defineConfig } from "../src/train/config.ts";
import student from "./demo.ts";

export default defineConfig({
  ...student,
  runDir: "runs/demo/teacher",
  model: { ...student.model, backbone: "[2,2,2,2]" },
  train: { ...student.train, microBatches: 1, checkpoint: "none" },
});
