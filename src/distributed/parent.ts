// A process mfr starts (each rank of `mfr launch`, and the CLI restarted with heap settings) stops
// when the process that started it dies, even by SIGKILL, which leaves the parent no chance to pass
// anything on. The parent gives each child one end of a pipe as an extra file descriptor and never
// writes to it; the kernel closes the parent's end when the parent dies, however it dies, so the
// child reads end-of-file at once. Why a pipe rather than:
// - polling process.ppid: a delay of one poll interval, and a parent that died before the first
//   poll goes unnoticed (the child is already re-parented, so there is no "original" ppid to compare);
// - an IPC channel: only Node children have one, and it turns the rank into a process.send child;
// - prctl(PR_SET_PDEATHSIG): Linux only, must be set between fork and exec (native code), and fires
//   when the parent's *thread* ends rather than its process.
// The pipe works for any program: its descriptor number is in MFR_PARENT_FD.
import net from "node:net";

const PARENT_FD_ENV = "MFR_PARENT_FD";
/** The child's descriptor for the pipe: the first after stdin, stdout and stderr. */
const PARENT_FD = 3;

type Stdio = "inherit" | "pipe" | "ignore";

/**
 * spawn options that give a child the pipe: its three standard streams as asked, the pipe as
 * descriptor 3, and env naming it (for stopWithParent in the child).
 */
export function withParentPipe(
  stdio: readonly [Stdio, Stdio, Stdio],
  env: NodeJS.ProcessEnv,
): { stdio: Stdio[]; env: NodeJS.ProcessEnv } {
  return { stdio: [...stdio, "pipe"], env: { ...env, [PARENT_FD_ENV]: String(PARENT_FD) } };
}

/**
 * In a child started withParentPipe: sends this process SIGTERM when the parent dies, and SIGKILL
 * graceMs later if it is still alive (a SIGTERM handler may keep it). The variable is removed from
 * the environment, so this process's own children do not watch a descriptor that is not theirs.
 * Nothing is watched, and false returned, when the variable is absent.
 */
export function stopWithParent(env: NodeJS.ProcessEnv = process.env, graceMs = 5000): boolean {
  const v = env[PARENT_FD_ENV];
  if (v === undefined) return false;
  delete env[PARENT_FD_ENV];
  const fd = Number(v);
  if (!Number.isInteger(fd) || fd < 0) throw new Error(`${PARENT_FD_ENV}=${v}: expected a file descriptor`);
  const pipe = new net.Socket({ fd, readable: true, writable: false });
  // The watch must not keep a finished program alive.
  pipe.unref();
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    process.kill(process.pid, "SIGTERM");
    setTimeout(() => process.kill(process.pid, "SIGKILL"), graceMs).unref();
  };
  pipe.on("data", () => {});
  pipe.on("end", stop);
  pipe.on("error", stop);
  return true;
}
