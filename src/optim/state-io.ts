// An optimizer state dict as a safetensors payload (tensors plus string metadata) and back, so
// optimizer state saves and restores bit-exactly with the engine's atomic, checksummed writer.
import { type Tensor } from "../torch/index.ts";
import { type OptimizerStateDict } from "./optimizer.ts";

const PREFIX = "optim.";
const META = "mfr.optimizer";

export function optimizerStateToTensors(sd: OptimizerStateDict): {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
} {
  const tensors = new Map<string, Tensor>();
  for (const [k, t] of sd.tensors) tensors.set(PREFIX + k, t);
  return { tensors, metadata: { [META]: JSON.stringify({ groups: sd.groups, steps: sd.steps }) } };
}

export function optimizerStateFromTensors(file: {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}): OptimizerStateDict {
  const meta = file.metadata[META];
  if (meta === undefined) throw new Error(`optimizer state: metadata '${META}' is missing`);
  const { groups, steps } = JSON.parse(meta) as Pick<OptimizerStateDict, "groups" | "steps">;
  const tensors = new Map<string, Tensor>();
  for (const [k, t] of file.tensors) if (k.startsWith(PREFIX)) tensors.set(k.slice(PREFIX.length), t);
  return { tensors, groups, steps };
}
