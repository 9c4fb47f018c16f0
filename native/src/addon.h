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

// Live tensors of one environment (main thread or a worker_thread), addressed from JS by
// numeric handles: slot index plus a generation, so a stale or forged handle is an error, never
// another tensor. A table rather than one wrapped JS object per tensor: napi finalizers only
// run after JS yields, so wrapper objects pile up in a synchronous training loop even when every
// tensor is disposed; a number leaves nothing behind.
struct Slot {
  at::Tensor tensor;
  uint32_t generation = 0;
  int64_t bytes = 0;
  bool live = false;
};

struct AddonData {
  std::vector<Slot> slots;
  std::vector<uint32_t> freeSlots;
  size_t liveCount = 0;
  // Bytes allocated or freed but not yet reported to V8: reporting every small tensor costs
  // more than the op itself, so V8 hears about changes in steps of kReportStep.
  int64_t unreportedBytes = 0;
};

// The handle of a new live tensor.
Napi::Value PutTensor(Napi::Env env, at::Tensor t);
// The tensor behind a handle; throws a JS error naming `what` if it is not a live tensor.
const at::Tensor& GetTensor(Napi::Env env, Napi::Value v, const char* what);
// The tensors of a JS array of handles; with allowHoles, undefined/null become undefined tensors.
std::vector<at::Tensor> GetTensors(Napi::Env env, Napi::Value v, const char* what, bool allowHoles = false);

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
void InitDist(Napi::Env env, Napi::Object exports);
void InitDevice(Napi::Env env, Napi::Object exports);

// Conversions shared by the parts.
Napi::Value IValueToJs(Napi::Env env, const c10::IValue& v);
c10::Device ParseDevice(const std::string& s);
at::ScalarType ScalarTypeFromInt(Napi::Env env, Napi::Value v);

}  // namespace mfr
