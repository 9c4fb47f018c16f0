// The small model-parallel head the step, memory and optimizer workers train against: full
// softmax, CosFace s=16 m=0.3, centres from a fixed seed so every run starts from the same shards.
import { type ProcessGroup } from "../../src/distributed/index.ts";
import { FusedPartialFC, PartialFC } from "../../src/head/index.ts";

export function tinyHead(
  group: ProcessGroup,
  numClasses: number,
  embeddingSize: number,
  fused = false,
): PartialFC {
  const Head = fused ? FusedPartialFC : PartialFC;
  return new Head(group, { numClasses, embeddingSize, sampleRate: 1, margin: { s: 16, m3: 0.3 }, seed: 3 });
}
