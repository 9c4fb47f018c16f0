// The mfr native addon: a thin translator between JS values and libtorch.
// It decides nothing: shapes, defaults and errors of meaning live in TypeScript.
// Every entry point converts libtorch's exceptions into JS Errors (see GUARD) so no input
// from JS can abort the process.
#pragma once

#include <napi.h>

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <string>

namespace mfr {

// Per-environment (main thread or worker_thread) state.
struct AddonData {
  Napi::FunctionReference tensorCtor;
};

// A libtorch tensor owned by a JS object. dispose() frees it deterministically; the GC
// finalizer is only a safety net. V8 is told about the bytes held so it collects sooner.
class TensorWrap : public Napi::ObjectWrap<TensorWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  static Napi::Object Wrap(Napi::Env env, at::Tensor t);
  static bool IsTensor(Napi::Env env, Napi::Value v);
  // The tensor behind a JS value; throws a JS-visible error naming `what` otherwise.
  static const at::Tensor& From(Napi::Env env, Napi::Value v, const char* what);

  explicit TensorWrap(const Napi::CallbackInfo& info);
  ~TensorWrap() override;

 private:
  void Release(Napi::Env env);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value IsDisposed(const Napi::CallbackInfo& info);
  Napi::Value Shape(const Napi::CallbackInfo& info);
  Napi::Value Strides(const Napi::CallbackInfo& info);
  Napi::Value Dim(const Napi::CallbackInfo& info);
  Napi::Value Numel(const Napi::CallbackInfo& info);
  Napi::Value Dtype(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value IsContiguous(const Napi::CallbackInfo& info);
  Napi::Value Item(const Napi::CallbackInfo& info);
  Napi::Value ToBuffer(const Napi::CallbackInfo& info);
  Napi::Value CopyInto(const Napi::CallbackInfo& info);
  Napi::Value GetRequiresGrad(const Napi::CallbackInfo& info);
  Napi::Value SetRequiresGrad(const Napi::CallbackInfo& info);
  Napi::Value GetGrad(const Napi::CallbackInfo& info);
  Napi::Value SetGrad(const Napi::CallbackInfo& info);
  Napi::Value IsLeaf(const Napi::CallbackInfo& info);
  Napi::Value GradFn(const Napi::CallbackInfo& info);
  Napi::Value RetainGrad(const Napi::CallbackInfo& info);
  Napi::Value SameStorage(const Napi::CallbackInfo& info);
  Napi::Value DataPtr(const Napi::CallbackInfo& info);
  Napi::Value Version(const Napi::CallbackInfo& info);

  const at::Tensor& Get(Napi::Env env) const;

  at::Tensor tensor_;
  bool disposed_ = false;
  int64_t externalBytes_ = 0;
};

// Raises a JS exception from any C++ exception; used by every entry point.
[[noreturn]] void ThrowJs(Napi::Env env, const std::string& where, const std::exception& e);

#define MFR_GUARD_BEGIN try {
#define MFR_GUARD_END(env, where)                              \
  }                                                            \
  catch (const Napi::Error&) {                                 \
    throw;                                                     \
  }                                                            \
  catch (const std::exception& mfrErr) {                       \
    ::mfr::ThrowJs(env, where, mfrErr);                        \
  }                                                            \
  catch (...) {                                                \
    throw Napi::Error::New(env, std::string(where) + ": unknown native error"); \
  }

// Module parts.
void InitTensor(Napi::Env env, Napi::Object exports);
void InitOps(Napi::Env env, Napi::Object exports);
void InitAutograd(Napi::Env env, Napi::Object exports);
void InitSerialize(Napi::Env env, Napi::Object exports);

// Conversions shared by the parts.
Napi::Value IValueToJs(Napi::Env env, const c10::IValue& v);
c10::Device ParseDevice(const std::string& s);
at::ScalarType ScalarTypeFromInt(Napi::Env env, Napi::Value v);

}  // namespace mfr
