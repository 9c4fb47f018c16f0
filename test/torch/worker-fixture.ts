// Runs in a worker_thread (engine.test.ts): the addon must load and compute there too.
import { parentPort } from "node:worker_threads";
import * as T from "../../src/torch/index.ts";

const x = T.tensor([1, 2, 3], { requiresGrad: true });
x.square().sum().backward();
parentPort?.postMessage(x.grad?.toArray());
