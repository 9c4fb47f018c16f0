export { ProcessGroup, Work, DEFAULT_TIMEOUT_S, type GroupOptions, type ReduceOp } from "./group.ts";
export { placementFromEnv, isGlobalRankZero, firstSlurmHost, type Placement } from "./rendezvous.ts";
export { chooseAddress, type AddressChoice } from "./address.ts";
export { CollectiveError } from "./failure.ts";
export {
  launch,
  freePort,
  collectJsonLines,
  Launch,
  type LaunchOptions,
  type LaunchResult,
} from "./launch.ts";
export {
  DataParallel,
  DEFAULT_BUCKET_CAP_MB,
  GLOO_NO_BF16,
  wireDtype,
  type DataParallelOptions,
} from "./data-parallel.ts";
