// How an mfr process should set up glibc's heap, in the part that must be decided before the
// process starts. libtorch's CPU allocator does not cache, so every tensor comes from malloc, and
// every page the heap has never used before costs a page fault when first touched: ~19 µs a page
// on this project's VMs (measured: 64 MiB of fresh memory, 16 k faults, 0.3 s), where a bare-metal
// fault costs well under 1 µs. Two settings keep those faults down:
// - at load, mallopt keeps blocks up to 32 MiB on the heap and never trims it (native.tuneMalloc,
//   in index.ts): memory freed by one step is reused by the next instead of being unmapped;
// - at start, glibc.malloc.hugetlb=1 makes malloc advise the kernel to back the heap with 2 MiB
//   transparent huge pages (where the kernel's THP mode is "madvise", the default on Debian), so
//   the heap still growing through a run faults 512 times less often. Measured on this VM: the
//   `mfr demo` training loop 30% faster (minor faults 730 k -> 80 k), r50 training steps 20-40%
//   faster for 0-14% more peak RSS (2 MiB pages are backed whole; docs/training.md), and the
//   evaluation's products back at the bare GEMM rate (35 k faults -> 2 k in a 1.25 G-pair run).
//   Where memory is tighter than time, GLIBC_TUNABLES=glibc.malloc.hugetlb=0 keeps 4 KiB pages.
// glibc reads GLIBC_TUNABLES once, at process start, so the CLI restarts itself with it (see
// bin/mfr.js) and every process mfr spawns gets it. MFR_MALLOC_TUNING=0 turns both off.
// This module loads nothing native: the CLI imports it before deciding to restart.

/** The glibc tunable that backs malloc's heap with transparent huge pages. */
export const HUGE_PAGE_TUNABLE = "glibc.malloc.hugetlb=1";

/** Whether mfr tunes glibc's heap at all (MFR_MALLOC_TUNING=0 keeps glibc's defaults). */
export function heapTuningEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.MFR_MALLOC_TUNING !== "0";
}

/**
 * env with the huge-page tunable added to GLIBC_TUNABLES (other tunables kept; an explicit
 * glibc.malloc.hugetlb setting of the user's wins), for a process about to be started. The same
 * object when there is nothing to add: not Linux, tuning off, or already there.
 */
export function heapEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  if (process.platform !== "linux" || !heapTuningEnabled(env)) return env;
  const tunables = env.GLIBC_TUNABLES ?? "";
  if (/(^|:)glibc\.malloc\.hugetlb=/.test(tunables)) return env;
  return { ...env, GLIBC_TUNABLES: tunables ? `${tunables}:${HUGE_PAGE_TUNABLE}` : HUGE_PAGE_TUNABLE };
}

/** Whether this process was started with the heap settings heapEnv gives (or needs none). */
export function startedWithHeapEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return heapEnv(env) === env;
}
