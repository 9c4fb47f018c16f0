// Where this process sits in the job, read from the launcher's environment: torchrun's
// variables (what `mfr launch` sets), Slurm's (srun) or Open MPI's (mpirun).

export interface Placement {
  rank: number;
  worldSize: number;
  localRank: number;
  masterAddr: string;
  masterPort: number;
  /** Which variables it came from, for messages. */
  source: "torchrun" | "slurm" | "openmpi" | "single";
}

const DEFAULT_PORT = 29500;

function int(env: NodeJS.ProcessEnv, key: string): number | undefined {
  const v = env[key];
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${key}=${v}: expected a non-negative integer`);
  return n;
}

/** The first host of a Slurm node list such as "gpu[03-05,09],cpu1". */
export function firstSlurmHost(list: string): string {
  const m = /^([^,[]+)(?:\[([^\]]+)\])?/.exec(list.trim());
  if (!m) throw new Error(`SLURM_JOB_NODELIST=${list}: cannot parse`);
  const prefix = m[1]!;
  if (m[2] === undefined) return prefix;
  const first = m[2].split(",")[0]!.split("-")[0]!;
  return prefix + first;
}

export function placementFromEnv(env: NodeJS.ProcessEnv = process.env): Placement {
  const port = int(env, "MASTER_PORT") ?? DEFAULT_PORT;
  if (env.RANK !== undefined && env.WORLD_SIZE !== undefined) {
    const p: Placement = {
      rank: int(env, "RANK")!,
      worldSize: int(env, "WORLD_SIZE")!,
      localRank: int(env, "LOCAL_RANK") ?? 0,
      masterAddr: env.MASTER_ADDR ?? "127.0.0.1",
      masterPort: port,
      source: "torchrun",
    };
    return check(p);
  }
  if (env.SLURM_PROCID !== undefined && env.SLURM_NTASKS !== undefined) {
    const nodes = env.SLURM_JOB_NODELIST ?? env.SLURM_NODELIST;
    return check({
      rank: int(env, "SLURM_PROCID")!,
      worldSize: int(env, "SLURM_NTASKS")!,
      localRank: int(env, "SLURM_LOCALID") ?? 0,
      masterAddr: env.MASTER_ADDR ?? (nodes ? firstSlurmHost(nodes) : "127.0.0.1"),
      masterPort: port,
      source: "slurm",
    });
  }
  if (env.OMPI_COMM_WORLD_RANK !== undefined && env.OMPI_COMM_WORLD_SIZE !== undefined) {
    return check({
      rank: int(env, "OMPI_COMM_WORLD_RANK")!,
      worldSize: int(env, "OMPI_COMM_WORLD_SIZE")!,
      localRank: int(env, "OMPI_COMM_WORLD_LOCAL_RANK") ?? 0,
      masterAddr: env.MASTER_ADDR ?? "127.0.0.1",
      masterPort: port,
      source: "openmpi",
    });
  }
  return { rank: 0, worldSize: 1, localRank: 0, masterAddr: "127.0.0.1", masterPort: port, source: "single" };
}

function check(p: Placement): Placement {
  if (p.worldSize < 1) throw new Error(`${p.source}: world size must be at least 1`);
  if (p.rank >= p.worldSize)
    throw new Error(`${p.source}: rank ${p.rank} is not below world size ${p.worldSize}`);
  return p;
}

/**
 * Whether this process is the job's global rank 0, under any launcher: the one process that prints
 * progress. (RANK alone is torchrun's: under srun or mpirun it is unset on every rank.)
 */
export function isGlobalRankZero(env: NodeJS.ProcessEnv = process.env): boolean {
  return placementFromEnv(env).rank === 0;
}
