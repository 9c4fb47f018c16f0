// Autograd entry points and the thread-local switches around them (grad mode, autocast),
// plus process-wide settings: threads, seeds, RNG state, build facts.
#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>
#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/version.h>

#include <malloc.h>

#include <mutex>

#include "addon.h"

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define MFR_AUTOCAST_DEVICE_API 1
#endif

namespace mfr {

namespace {

c10::optional<bool> OptBool(Napi::Value v) {
  if (v.IsUndefined() || v.IsNull()) return c10::nullopt;
  return v.ToBoolean().Value();
}

// backward(tensors, grads?, retainGraph?, createGraph?)
Napi::Value Backward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  auto tensors = GetTensors(env, info[0], "backward", false);
  std::vector<at::Tensor> grads;
  if (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull()) {
    grads = GetTensors(env, info[1], "backward", true);
  }
  torch::autograd::backward(tensors, grads, OptBool(info[2]), info[3].ToBoolean().Value());
  return env.Undefined();
  MFR_GUARD_END(env, "backward")
}

// The autograd engine runs the CPU backward on the calling thread; on a pool thread it keeps
// the event loop free during the heaviest part of a step.
class BackwardWorker : public Napi::AsyncWorker {
 public:
  BackwardWorker(Napi::Env env, std::vector<at::Tensor> tensors, std::vector<at::Tensor> grads,
                 c10::optional<bool> retain, bool create)
      : Napi::AsyncWorker(env, "mfr.backwardAsync"),
        tensors_(std::move(tensors)),
        grads_(std::move(grads)),
        retain_(retain),
        create_(create),
        deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      at::ThreadLocalStateGuard guard(tls_);
      torch::autograd::backward(tensors_, grads_, retain_, create_);
    } catch (const c10::Error& e) {
      SetError(std::string("backward: ") + e.what_without_backtrace());
    } catch (const std::exception& e) {
      SetError(std::string("backward: ") + e.what());
    }
    tensors_.clear();
    grads_.clear();
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  std::vector<at::Tensor> tensors_, grads_;
  c10::optional<bool> retain_;
  bool create_;
  at::ThreadLocalState tls_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value BackwardAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  auto tensors = GetTensors(env, info[0], "backward", false);
  std::vector<at::Tensor> grads;
  if (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull()) {
    grads = GetTensors(env, info[1], "backward", true);
  }
  auto* w = new BackwardWorker(env, std::move(tensors), std::move(grads), OptBool(info[2]),
                               info[3].ToBoolean().Value());
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
  MFR_GUARD_END(env, "backward")
}

// grad(outputs, inputs, gradOutputs?, retainGraph?, createGraph?, allowUnused?)
Napi::Value Grad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  auto outputs = GetTensors(env, info[0], "grad", false);
  auto inputs = GetTensors(env, info[1], "grad", false);
  std::vector<at::Tensor> gradOutputs;
  if (!info[2].IsUndefined() && !info[2].IsNull()) gradOutputs = GetTensors(env, info[2], "grad", true);
  auto result = torch::autograd::grad(outputs, inputs, gradOutputs, OptBool(info[3]),
                                      info[4].ToBoolean().Value(), info[5].ToBoolean().Value());
  Napi::Array out = Napi::Array::New(env, result.size());
  for (size_t i = 0; i < result.size(); ++i) {
    out.Set(static_cast<uint32_t>(i),
            result[i].defined() ? PutTensor(env, result[i]) : env.Undefined());
  }
  return out;
  MFR_GUARD_END(env, "grad")
}

// setGradEnabled(enabled): previous value. Grad mode is thread-local in libtorch.
Napi::Value SetGradEnabled(const Napi::CallbackInfo& info) {
  bool prev = at::GradMode::is_enabled();
  at::GradMode::set_enabled(info[0].ToBoolean().Value());
  return Napi::Boolean::New(info.Env(), prev);
}

Napi::Value IsGradEnabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), at::GradMode::is_enabled());
}

bool AutocastEnabled(bool cuda) {
#ifdef MFR_AUTOCAST_DEVICE_API
  return at::autocast::is_autocast_enabled(cuda ? at::kCUDA : at::kCPU);
#else
  return cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

at::ScalarType AutocastDtype(bool cuda) {
#ifdef MFR_AUTOCAST_DEVICE_API
  return at::autocast::get_autocast_dtype(cuda ? at::kCUDA : at::kCPU);
#else
  return cuda ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}

// setAutocast(device: "cpu"|"cuda", enabled, dtype): [prevEnabled, prevDtype]. Entering
// increments the nesting count; leaving the outermost level clears the cast cache as
// torch.autocast does.
Napi::Value SetAutocast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  std::string device = info[0].As<Napi::String>().Utf8Value();
  bool cuda = device == "cuda";
  if (!cuda && device != "cpu") throw Napi::Error::New(env, "autocast: device must be 'cpu' or 'cuda'");
  bool enabled = info[1].ToBoolean().Value();
  at::ScalarType dtype = ScalarTypeFromInt(env, info[2]);
  bool entering = info[3].ToBoolean().Value();
  Napi::Array prev = Napi::Array::New(env, 2);
  prev.Set(0u, Napi::Boolean::New(env, AutocastEnabled(cuda)));
  prev.Set(1u, Napi::Number::New(env, static_cast<int>(AutocastDtype(cuda))));
#ifdef MFR_AUTOCAST_DEVICE_API
  at::autocast::set_autocast_enabled(cuda ? at::kCUDA : at::kCPU, enabled);
  at::autocast::set_autocast_dtype(cuda ? at::kCUDA : at::kCPU, dtype);
#else
  if (cuda) {
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
#endif
  if (entering) {
    at::autocast::increment_nesting();
  } else if (at::autocast::decrement_nesting() == 0) {
    at::autocast::clear_cache();
  }
  return prev;
  MFR_GUARD_END(env, "autocast")
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  int n = info[0].As<Napi::Number>().Int32Value();
  if (n < 1) throw Napi::RangeError::New(env, "setNumThreads: need at least 1 thread");
  at::set_num_threads(n);
  return env.Undefined();
  MFR_GUARD_END(env, "setNumThreads")
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  bool lossless = true;
  uint64_t seed = info[0].IsBigInt() ? info[0].As<Napi::BigInt>().Uint64Value(&lossless)
                                     : static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
  at::manual_seed(seed);
  return env.Undefined();
  MFR_GUARD_END(env, "manualSeed")
}

// The default CPU generator's state as a uint8 tensor, for bit-exact resume.
Napi::Value GetRngState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return PutTensor(env, gen.get_state());
  MFR_GUARD_END(env, "getRngState")
}

Napi::Value SetRngState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  const at::Tensor& state = GetTensor(env, info[0], "setRngState");
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
  return env.Undefined();
  MFR_GUARD_END(env, "setRngState")
}

// tuneMalloc(mmapThreshold, trimThreshold): glibc's allocator settings. libtorch's CPU
// allocator does not cache, so activations above glibc's mmap threshold are mapped and unmapped
// every step, each page faulted in and zeroed again; raising the thresholds keeps them on the heap.
Napi::Value TuneMalloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
#if defined(__GLIBC__)
  int a = mallopt(M_MMAP_THRESHOLD, info[0].As<Napi::Number>().Int32Value());
  int b = mallopt(M_TRIM_THRESHOLD, info[1].As<Napi::Number>().Int32Value());
  return Napi::Boolean::New(env, a == 1 && b == 1);
#else
  return Napi::Boolean::New(env, false);
#endif
}

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("torchVersion", Napi::String::New(env, TORCH_VERSION));
#ifdef MFR_CUDA
  o.Set("cuda", Napi::Boolean::New(env, true));
#else
  o.Set("cuda", Napi::Boolean::New(env, false));
#endif
  o.Set("parallelInfo", Napi::String::New(env, at::get_parallel_info()));
  return o;
}

}  // namespace

void InitAutograd(Napi::Env env, Napi::Object exports) {
  exports.Set("backward", Napi::Function::New(env, Backward, "backward"));
  exports.Set("backwardAsync", Napi::Function::New(env, BackwardAsync, "backwardAsync"));
  exports.Set("grad", Napi::Function::New(env, Grad, "grad"));
  exports.Set("setGradEnabled", Napi::Function::New(env, SetGradEnabled, "setGradEnabled"));
  exports.Set("isGradEnabled", Napi::Function::New(env, IsGradEnabled, "isGradEnabled"));
  exports.Set("setAutocast", Napi::Function::New(env, SetAutocast, "setAutocast"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads, "getNumThreads"));
  exports.Set("manualSeed", Napi::Function::New(env, ManualSeed, "manualSeed"));
  exports.Set("getRngState", Napi::Function::New(env, GetRngState, "getRngState"));
  exports.Set("setRngState", Napi::Function::New(env, SetRngState, "setRngState"));
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfo, "buildInfo"));
  exports.Set("tuneMalloc", Napi::Function::New(env, TuneMalloc, "tuneMalloc"));
}

}  // namespace mfr
