export { Optimizer, type ParamGroup, type OptimizerStateDict } from "./optimizer.ts";
export { SGD, type SGDOptions } from "./sgd.ts";
