export * from "./pipeline.ts";
