export { Module, type Layer } from "./module.ts";
export * from "./layers.ts";
export * as init from "./init.ts";
