// Devices: which one a run uses ("auto" takes CUDA when the addon was built with it and a GPU is
// there), host-to-device copies that overlap compute (pinned memory, non-blocking), and the CUDA
// allocator's memory figures.
import { native } from "./native.ts";
import { O } from "./ops.ts";
import { type Tensor, wrap } from "./tensor.ts";

export type DeviceChoice = "auto" | "cpu" | "cuda";
export type DeviceKind = "cpu" | "cuda";

/** How many CUDA devices this process sees (0 with a CPU build of the addon). */
export function cudaDeviceCount(): number {
  return native.cudaDeviceCount();
}

export function cudaAvailable(): boolean {
  return cudaDeviceCount() > 0;
}

/** "cpu" or "cuda" for a device string such as "cuda:1". */
export function deviceKind(device: string): DeviceKind {
  return device === "cuda" || device.startsWith("cuda:") ? "cuda" : "cpu";
}

/**
 * The device a rank trains on: "cpu", or "cuda:<localRank>" (one rank per GPU, as torchrun's
 * LOCAL_RANK). `key` names the setting in errors. A CUDA device also becomes this thread's
 * current one, so libtorch's own allocations (NCCL buffers, autograd) land on it too.
 */
export function resolveDevice(choice: DeviceChoice, localRank = 0, key = "device"): string {
  if (choice === "cpu") return "cpu";
  const count = cudaDeviceCount();
  if (count === 0) {
    if (choice === "auto") return "cpu";
    const why = native.buildInfo().cuda
      ? "no CUDA device is visible (check the driver and CUDA_VISIBLE_DEVICES)"
      : "mfr's addon was built against a CPU libtorch (rebuild with MFR_LIBTORCH=<a CUDA PyTorch's site-packages/torch>)";
    throw new Error(`${key}: 'cuda' requested but ${why}`);
  }
  if (localRank >= count)
    throw new Error(
      `${key}: local rank ${localRank} has no GPU of its own (${count} visible; one rank per GPU)`,
    );
  native.cudaSetDevice(localRank);
  return `cuda:${localRank}`;
}

/**
 * A copy of `t` on `device` (`t` itself when it is already there). From the CPU to CUDA it goes
 * through pinned memory with a non-blocking copy, so it overlaps the kernels already queued; the
 * pinned block returns to libtorch's host cache only once the copy has run.
 */
export function toDevice(t: Tensor, device: string): Tensor {
  if (t.device === device) return t;
  if (deviceKind(device) === "cuda" && t.device === "cpu") {
    using pinned = wrap(native.call(O.pinMemory, t.native, null));
    return wrap(native.call(O.toDevice, pinned.native, device, native.dtype(t.native), true, false));
  }
  return t.to(device);
}

/** Waits for every kernel queued on the device (no-op on the CPU). */
export function synchronize(device: string): void {
  if (deviceKind(device) === "cuda") native.cudaSynchronize(deviceIndex(device));
}

export interface CudaMemory {
  /** Bytes in live tensors now. */
  allocated: number;
  /** Bytes the caching allocator holds from the driver. */
  reserved: number;
  /** Most bytes in live tensors since the last reset (torch.cuda.max_memory_allocated). */
  peakAllocated: number;
}

/** The CUDA caching allocator's figures for `device`; resetPeak starts a new peak window. */
export function cudaMemory(device: string, o: { resetPeak?: boolean } = {}): CudaMemory {
  if (deviceKind(device) !== "cuda") throw new Error(`cudaMemory: '${device}' is not a CUDA device`);
  return native.cudaMemory(deviceIndex(device), !!o.resetPeak);
}

function deviceIndex(device: string): number {
  const i = device.indexOf(":");
  return i < 0 ? 0 : Number(device.slice(i + 1));
}
