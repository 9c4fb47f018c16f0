// The head's test cases, shared by the reference head's worker and the fused head's: full softmax
// and Partial FC sampling, CosFace and ArcFace, class counts that do not divide by the world size.
import { type CombinedMarginOptions } from "../../src/losses/index.ts";

export interface HeadCase {
  name: string;
  classes: number;
  dim: number;
  perRank: number;
  sampleRate: number;
  margin: CombinedMarginOptions;
}

/** The cases at world size K; `cosfacePerRank` images per rank in the two CosFace cases. */
export function headCases(K: number, cosfacePerRank: number): HeadCase[] {
  return [
    {
      name: "cosface full",
      classes: 7 * K + 2,
      dim: 8,
      perRank: cosfacePerRank,
      sampleRate: 1,
      margin: { s: 64, m3: 0.4 },
    },
    {
      name: "arcface full",
      classes: 5 * K + 1,
      dim: 6,
      perRank: 4,
      sampleRate: 1,
      margin: { s: 64, m2: 0.5 },
    },
    {
      name: "cosface sampled",
      classes: 40 + K,
      dim: 8,
      perRank: cosfacePerRank,
      sampleRate: 0.5,
      margin: { s: 32, m3: 0.4 },
    },
    { name: "arcface sampled", classes: 31, dim: 5, perRank: 2, sampleRate: 0.3, margin: { s: 64, m2: 0.5 } },
  ];
}
