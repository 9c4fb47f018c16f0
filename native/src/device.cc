// CUDA devices from JS: whether there are any, which one this thread uses, synchronisation and the
// caching allocator's memory figures. A CPU build answers "no devices" and refuses the rest.
#include <torch/cuda.h>
#include <torch/version.h>
#ifdef MFR_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

#include "addon.h"

namespace mfr {

namespace {

#ifndef MFR_CUDA
[[noreturn]] void NoCuda(Napi::Env env, const char* what) {
  throw Napi::Error::New(env, std::string(what) + ": mfr was built without CUDA (MFR_LIBTORCH names a CPU libtorch)");
}
#endif

Napi::Value CudaDeviceCount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  // Asks the CUDA hooks, which a CPU libtorch answers with 0 (no driver call, no error).
  return Napi::Number::New(env, static_cast<double>(torch::cuda::device_count()));
  MFR_GUARD_END(env, "cudaDeviceCount")
}

// cudaSetDevice(index): the device this thread's new CUDA tensors and kernels default to.
Napi::Value CudaSetDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
#ifdef MFR_CUDA
  c10::cuda::set_device(static_cast<c10::DeviceIndex>(info[0].As<Napi::Number>().Int32Value()));
  return env.Undefined();
#else
  NoCuda(env, "cudaSetDevice");
#endif
  MFR_GUARD_END(env, "cudaSetDevice")
}

// cudaSynchronize(index?): waits for every kernel queued on the device (timings, benchmarks).
Napi::Value CudaSynchronize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
#ifdef MFR_CUDA
  torch::cuda::synchronize(info[0].IsNumber() ? info[0].As<Napi::Number>().Int64Value() : -1);
  return env.Undefined();
#else
  NoCuda(env, "cudaSynchronize");
#endif
  MFR_GUARD_END(env, "cudaSynchronize")
}

// cudaMemory(index, resetPeak): the caching allocator's { allocated, reserved, peakAllocated }
// in bytes (torch.cuda.memory_allocated, memory_reserved, max_memory_allocated).
Napi::Value CudaMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
#ifdef MFR_CUDA
  auto dev = static_cast<c10::DeviceIndex>(info[0].As<Napi::Number>().Int32Value());
  namespace alloc = c10::cuda::CUDACachingAllocator;
  auto stats = alloc::getDeviceStats(dev);
  // Index 0 is StatType::AGGREGATE in every version (its enum moved namespaces in 2.x).
  Napi::Object o = Napi::Object::New(env);
  o.Set("allocated", Napi::Number::New(env, static_cast<double>(stats.allocated_bytes[0].current)));
  o.Set("reserved", Napi::Number::New(env, static_cast<double>(stats.reserved_bytes[0].current)));
  o.Set("peakAllocated", Napi::Number::New(env, static_cast<double>(stats.allocated_bytes[0].peak)));
  if (info[1].ToBoolean().Value()) alloc::resetPeakStats(dev);
  return o;
#else
  NoCuda(env, "cudaMemory");
#endif
  MFR_GUARD_END(env, "cudaMemory")
}

}  // namespace

void InitDevice(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaDeviceCount", Napi::Function::New(env, CudaDeviceCount, "cudaDeviceCount"));
  exports.Set("cudaSetDevice", Napi::Function::New(env, CudaSetDevice, "cudaSetDevice"));
  exports.Set("cudaSynchronize", Napi::Function::New(env, CudaSynchronize, "cudaSynchronize"));
  exports.Set("cudaMemory", Napi::Function::New(env, CudaMemory, "cudaMemory"));
}

}  // namespace mfr
