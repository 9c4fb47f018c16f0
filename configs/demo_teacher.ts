// The demo's teacher: the student's config (demo.ts) with a deeper backbone.
import { defineConfig } from "../src/train/config.ts";
import student from "./demo.ts";

export default defineConfig({
  ...student,
  runDir: "runs/demo/teacher",
  model: { ...student.model, backbone: "[2,2,2,2]" },
});
