// The optimizers a config can name (optim.name): one tuple for the config's enum and the types;
// src/train maps each name to its class.
export const OPTIMIZERS = ["sgd", "adamw", "lars"] as const;
export type OptimizerName = (typeof OPTIMIZERS)[number];
