// Stopping a run between steps when asked (Ctrl-C in the CLI, an AbortSignal in code). Every rank
// must stop after the same step, or the ranks still going wait in a collective for ranks that
// left, and a checkpoint saved at the stop would miss shards. Ranks are asked at slightly
// different moments (a terminal's Ctrl-C, or mfr launch forwarding it, reaches each on its own),
// so they agree each step: a max over one flag. The loss is read back every step already, so
// on CUDA this adds no synchronisation the step did not have.
import * as T from "../torch/index.ts";
import type { ProcessGroup } from "../distributed/index.ts";

/** Whether every rank stops after this step: true when any rank's signal has fired. */
export function stopAgreed(group: ProcessGroup, signal: AbortSignal | undefined, device: string): boolean {
  const asked = signal?.aborted ?? false;
  if (group.worldSize === 1) return asked;
  return T.scope(() => {
    const flag = T.tensor([asked ? 1 : 0], { dtype: "f32", device });
    group.allReduce([flag], "max").wait();
    return flag.item() > 0;
  });
}
