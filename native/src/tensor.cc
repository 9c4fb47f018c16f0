// Tensor handles (see AddonData in addon.h), tensor metadata, and copies between JS buffers
// and tensors.
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/function.h>

#include <cstring>

#include "addon.h"

namespace mfr {

namespace {

// Handle = generation * 2^20 + slot, generation cycling through 1..1023: below 2^30, so a handle
// is a V8 small integer (no heap number per tensor), and small integers are never handles.
constexpr double kSlotSpan = 1048576.0;  // 2^20 live tensors at most
constexpr uint32_t kGenerations = 1023;

int64_t BytesOf(const at::Tensor& t) {
  if (!t.defined() || !t.has_storage()) return 0;
  return static_cast<int64_t>(t.storage().nbytes());
}

// One environment per thread in Node, so the table of the calling thread's environment can be
// cached in a thread_local instead of asking N-API for it on every handle lookup.
thread_local AddonData* threadData = nullptr;
thread_local napi_env threadEnv = nullptr;

AddonData* Data(Napi::Env env) {
  if (threadEnv != static_cast<napi_env>(env)) {
    threadData = env.GetInstanceData<AddonData>();
    threadEnv = env;
  }
  return threadData;
}

constexpr int64_t kReportStep = 4 << 20;

void Account(Napi::Env env, AddonData* d, int64_t delta) {
  d->unreportedBytes += delta;
  if (d->unreportedBytes >= kReportStep || d->unreportedBytes <= -kReportStep) {
    Napi::MemoryManagement::AdjustExternalMemory(env, d->unreportedBytes);
    d->unreportedBytes = 0;
  }
}

Slot* Lookup(Napi::Env env, Napi::Value v) {
  double h = 0;
  if (napi_get_value_double(env, v, &h) != napi_ok) return nullptr;
  if (!(h >= kSlotSpan) || h != static_cast<double>(static_cast<uint64_t>(h))) return nullptr;
  uint64_t n = static_cast<uint64_t>(h);
  uint64_t slot = n % static_cast<uint64_t>(kSlotSpan);
  uint64_t gen = n / static_cast<uint64_t>(kSlotSpan);
  AddonData* d = Data(env);
  if (slot >= d->slots.size()) return nullptr;
  Slot& s = d->slots[slot];
  if (s.generation != gen) return nullptr;
  return &s;
}

void Free(Napi::Env env, Slot& s, uint32_t index) {
  if (!s.live) return;
  Account(env, Data(env), -s.bytes);
  s.tensor = at::Tensor();
  s.bytes = 0;
  s.live = false;
  Data(env)->freeSlots.push_back(index);
  Data(env)->liveCount--;
}

}  // namespace

void ThrowJs(Napi::Env env, const std::string& where, const std::exception& e) {
  std::string msg;
  if (auto* ce = dynamic_cast<const c10::Error*>(&e)) {
    msg = ce->what_without_backtrace();
  } else {
    msg = e.what();
  }
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  throw Napi::Error::New(env, where + ": " + msg);
}

Napi::Value PutTensor(Napi::Env env, at::Tensor t) {
  AddonData* d = Data(env);
  uint32_t index;
  if (!d->freeSlots.empty()) {
    index = d->freeSlots.back();
    d->freeSlots.pop_back();
  } else {
    if (d->slots.size() >= static_cast<size_t>(kSlotSpan)) {
      throw Napi::Error::New(env, "too many live tensors (dispose some)");
    }
    index = static_cast<uint32_t>(d->slots.size());
    d->slots.emplace_back();
  }
  Slot& s = d->slots[index];
  s.generation = s.generation % kGenerations + 1;
  s.tensor = std::move(t);
  s.bytes = BytesOf(s.tensor);
  s.live = true;
  d->liveCount++;
  Account(env, d, s.bytes);
  return Napi::Number::New(env, static_cast<double>(s.generation) * kSlotSpan + index);
}


const at::Tensor& GetTensor(Napi::Env env, Napi::Value v, const char* what) {
  Slot* s = Lookup(env, v);
  if (s == nullptr) {
    // A handle whose slot has since been reused is a disposed tensor, not a type error.
    if (v.IsNumber()) {
      double h = v.As<Napi::Number>().DoubleValue();
      uint64_t n = h >= kSlotSpan ? static_cast<uint64_t>(h) : 0;
      uint64_t slot = n % static_cast<uint64_t>(kSlotSpan);
      AddonData* d = Data(env);
      if (n > 0 && slot < d->slots.size() && n / static_cast<uint64_t>(kSlotSpan) <= kGenerations) {
        throw Napi::Error::New(env, std::string(what) + ": tensor was disposed");
      }
    }
    throw Napi::TypeError::New(env, std::string(what) + ": expected a Tensor");
  }
  if (!s->live) throw Napi::Error::New(env, std::string(what) + ": tensor was disposed");
  return s->tensor;
}

std::vector<at::Tensor> GetTensors(Napi::Env env, Napi::Value v, const char* what, bool allowHoles) {
  if (!v.IsArray()) throw Napi::TypeError::New(env, std::string(what) + ": expected an array of tensors");
  Napi::Array arr = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value x = arr.Get(i);
    if (allowHoles && (x.IsUndefined() || x.IsNull())) {
      out.emplace_back();
    } else {
      out.push_back(GetTensor(env, x, what));
    }
  }
  return out;
}

namespace {

#define TENSOR_FN(name) Napi::Value name(const Napi::CallbackInfo& info)

// The bytes of any typed array, including one over a SharedArrayBuffer (the data loader's batch
// buffers): asking N-API for the data pointer alone works where asking for the ArrayBuffer fails.
void TypedArrayBytes(Napi::Env env, Napi::Value v, const uint8_t** data, size_t* bytes) {
  napi_typedarray_type type;
  size_t length = 0;
  void* ptr = nullptr;
  size_t offset = 0;
  if (napi_get_typedarray_info(env, v, &type, &length, &ptr, nullptr, &offset) != napi_ok) {
    throw Napi::TypeError::New(env, "expected a typed array");
  }
  size_t width = 1;
  switch (type) {
    case napi_int16_array:
    case napi_uint16_array:
      width = 2;
      break;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array:
      width = 4;
      break;
    case napi_float64_array:
    case napi_bigint64_array:
    case napi_biguint64_array:
      width = 8;
      break;
    default:
      width = 1;
  }
  *data = static_cast<const uint8_t*>(ptr);
  *bytes = length * width;
}

TENSOR_FN(Dispose) {
  Napi::Env env = info.Env();
  Slot* s = Lookup(env, info[0]);
  if (s != nullptr) Free(env, *s, static_cast<uint32_t>(s - Data(env)->slots.data()));
  return env.Undefined();
}

// disposeMany(handles: Float64Array, count): one call for a scope's worth of tensors.
TENSOR_FN(DisposeMany) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(env, "disposeMany: expected a Float64Array");
  auto arr = info[0].As<Napi::Float64Array>();
  size_t n = std::min<size_t>(arr.ElementLength(), info[1].As<Napi::Number>().Uint32Value());
  AddonData* d = Data(env);
  for (size_t i = 0; i < n; ++i) {
    double h = arr[i];
    if (!(h >= kSlotSpan)) continue;
    uint64_t v = static_cast<uint64_t>(h);
    uint64_t slot = v % static_cast<uint64_t>(kSlotSpan);
    if (slot < d->slots.size() && d->slots[slot].generation == v / static_cast<uint64_t>(kSlotSpan)) {
      Free(env, d->slots[slot], static_cast<uint32_t>(slot));
    }
  }
  return env.Undefined();
}

TENSOR_FN(IsLive) {
  Slot* s = Lookup(info.Env(), info[0]);
  return Napi::Boolean::New(info.Env(), s != nullptr && s->live);
}

TENSOR_FN(LiveCount) { return Napi::Number::New(info.Env(), static_cast<double>(Data(info.Env())->liveCount)); }

Napi::Array IntArray(Napi::Env env, c10::IntArrayRef v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(v[i])));
  return a;
}

TENSOR_FN(Shape) { return IntArray(info.Env(), GetTensor(info.Env(), info[0], "shape").sizes()); }
TENSOR_FN(Strides) { return IntArray(info.Env(), GetTensor(info.Env(), info[0], "strides").strides()); }
TENSOR_FN(Dim) { return Napi::Number::New(info.Env(), GetTensor(info.Env(), info[0], "dim").dim()); }
TENSOR_FN(Numel) {
  return Napi::Number::New(info.Env(), static_cast<double>(GetTensor(info.Env(), info[0], "numel").numel()));
}
TENSOR_FN(Dtype) {
  return Napi::Number::New(info.Env(), static_cast<int>(GetTensor(info.Env(), info[0], "dtype").scalar_type()));
}
TENSOR_FN(Device) { return Napi::String::New(info.Env(), GetTensor(info.Env(), info[0], "device").device().str()); }
TENSOR_FN(IsContiguous) {
  return Napi::Boolean::New(info.Env(), GetTensor(info.Env(), info[0], "isContiguous").is_contiguous());
}

TENSOR_FN(Item) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  const at::Tensor& t = GetTensor(env, info[0], "item");
  if (t.numel() != 1) {
    throw Napi::Error::New(env, "item: tensor has " + std::to_string(t.numel()) + " elements, item() needs exactly one");
  }
  at::Scalar s = t.item();
  if (s.isBoolean()) return Napi::Boolean::New(env, s.toBool());
  if (s.isIntegral(false)) return Napi::Number::New(env, static_cast<double>(s.toLong()));
  return Napi::Number::New(env, s.toDouble());
  MFR_GUARD_END(env, "item")
}

TENSOR_FN(ToBuffer) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  at::NoGradGuard noGrad;
  at::Tensor t = GetTensor(env, info[0], "toBuffer").detach().to(at::kCPU).contiguous();
  size_t n = t.nbytes();
  Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, n);
  if (n > 0) std::memcpy(buf.Data(), t.data_ptr(), n);
  return buf;
  MFR_GUARD_END(env, "toBuffer")
}

// copyInto(handle, dst): fills a caller-owned typed array or ArrayBuffer of the exact size.
TENSOR_FN(CopyInto) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  at::NoGradGuard noGrad;
  at::Tensor t = GetTensor(env, info[0], "copyInto").detach().to(at::kCPU).contiguous();
  uint8_t* dst = nullptr;
  size_t len = 0;
  if (info[1].IsTypedArray()) {
    const uint8_t* p = nullptr;
    TypedArrayBytes(env, info[1], &p, &len);
    dst = const_cast<uint8_t*>(p);
  } else if (info[1].IsArrayBuffer()) {
    auto ab = info[1].As<Napi::ArrayBuffer>();
    dst = static_cast<uint8_t*>(ab.Data());
    len = ab.ByteLength();
  } else {
    throw Napi::TypeError::New(env, "copyInto: expected a TypedArray or ArrayBuffer");
  }
  if (len != t.nbytes()) {
    throw Napi::RangeError::New(env, "copyInto: destination has " + std::to_string(len) + " bytes, tensor has " +
                                         std::to_string(t.nbytes()));
  }
  if (len > 0) std::memcpy(dst, t.data_ptr(), len);
  return env.Undefined();
  MFR_GUARD_END(env, "copyInto")
}

// bytesView(handle, byteOffset, byteLength): an ArrayBuffer over part of a contiguous CPU
// tensor's own memory, no copy, for streaming it to and from files (hashing, fs reads and writes
// in chunks). The buffer holds a reference to the tensor's storage, released by its finalizer,
// so disposing the tensor while a view is alive cannot free memory under JS.
TENSOR_FN(BytesView) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  const at::Tensor& t = GetTensor(env, info[0], "bytesView");
  if (!t.device().is_cpu() || !t.is_contiguous()) {
    throw Napi::Error::New(env, "bytesView: the tensor must be contiguous and on the CPU");
  }
  double off = info[1].ToNumber().DoubleValue();
  double len = info[2].ToNumber().DoubleValue();
  double n = static_cast<double>(t.nbytes());
  if (!(off >= 0 && len >= 0 && off + len <= n) || off != static_cast<double>(static_cast<int64_t>(off)) ||
      len != static_cast<double>(static_cast<int64_t>(len))) {
    throw Napi::RangeError::New(env, "bytesView: range [" + std::to_string(off) + ", +" + std::to_string(len) +
                                         ") is outside the tensor's " + std::to_string(t.nbytes()) + " bytes");
  }
  if (len == 0) return Napi::ArrayBuffer::New(env, 0);
  auto* keep = new at::Tensor(t.detach());
  uint8_t* data = static_cast<uint8_t*>(keep->data_ptr()) + static_cast<size_t>(off);
  return Napi::ArrayBuffer::New(
      env, data, static_cast<size_t>(len), [](Napi::Env, void*, at::Tensor* k) { delete k; }, keep);
  MFR_GUARD_END(env, "bytesView")
}

TENSOR_FN(RequiresGrad) {
  return Napi::Boolean::New(info.Env(), GetTensor(info.Env(), info[0], "requiresGrad").requires_grad());
}

TENSOR_FN(SetRequiresGrad) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  const_cast<at::Tensor&>(GetTensor(env, info[0], "requiresGrad_")).set_requires_grad(info[1].ToBoolean().Value());
  return env.Undefined();
  MFR_GUARD_END(env, "requiresGrad_")
}

TENSOR_FN(Grad) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  const at::Tensor& g = GetTensor(env, info[0], "grad").grad();
  if (!g.defined()) return env.Undefined();
  return PutTensor(env, g);
  MFR_GUARD_END(env, "grad")
}

TENSOR_FN(SetGrad) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  at::Tensor& t = const_cast<at::Tensor&>(GetTensor(env, info[0], "setGrad"));
  if (info[1].IsUndefined() || info[1].IsNull()) {
    t.mutable_grad() = at::Tensor();
  } else {
    const at::Tensor& g = GetTensor(env, info[1], "setGrad");
    if (!g.sizes().equals(t.sizes())) throw Napi::Error::New(env, "setGrad: gradient shape differs from the tensor's");
    t.mutable_grad() = g;
  }
  return env.Undefined();
  MFR_GUARD_END(env, "setGrad")
}

TENSOR_FN(IsLeaf) { return Napi::Boolean::New(info.Env(), GetTensor(info.Env(), info[0], "isLeaf").is_leaf()); }

TENSOR_FN(GradFn) {
  Napi::Env env = info.Env();
  const auto& fn = GetTensor(env, info[0], "gradFn").grad_fn();
  if (!fn) return env.Undefined();
  return Napi::String::New(env, fn->name());
}

TENSOR_FN(RetainGrad) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  GetTensor(env, info[0], "retainGrad").retain_grad();
  return env.Undefined();
  MFR_GUARD_END(env, "retainGrad")
}

TENSOR_FN(SameStorage) {
  Napi::Env env = info.Env();
  const at::Tensor& a = GetTensor(env, info[0], "sameStorage");
  const at::Tensor& b = GetTensor(env, info[1], "sameStorage");
  return Napi::Boolean::New(env, a.has_storage() && b.has_storage() && a.storage().is_alias_of(b.storage()));
}

TENSOR_FN(Version) {
  return Napi::Number::New(info.Env(), static_cast<double>(GetTensor(info.Env(), info[0], "version")._version()));
}

// fromBuffer(data: TypedArray | ArrayBuffer, dtype: number, shape: number[], device?: string)
// Copies: JS memory may move or be freed by the GC, libtorch's may outlive it.
TENSOR_FN(FromBuffer) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  const uint8_t* src = nullptr;
  size_t len = 0;
  if (info[0].IsTypedArray()) {
    TypedArrayBytes(env, info[0], &src, &len);
  } else if (info[0].IsArrayBuffer()) {
    auto ab = info[0].As<Napi::ArrayBuffer>();
    src = static_cast<const uint8_t*>(ab.Data());
    len = ab.ByteLength();
  } else {
    throw Napi::TypeError::New(env, "fromBuffer: expected a TypedArray, Buffer or ArrayBuffer");
  }
  at::ScalarType dtype = ScalarTypeFromInt(env, info[1]);
  if (!info[2].IsArray()) throw Napi::TypeError::New(env, "fromBuffer: shape must be an array");
  auto arr = info[2].As<Napi::Array>();
  std::vector<int64_t> shape(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value d = arr.Get(i);
    if (!d.IsNumber()) throw Napi::TypeError::New(env, "fromBuffer: shape entries must be numbers");
    shape[i] = d.As<Napi::Number>().Int64Value();
    if (shape[i] < 0) throw Napi::RangeError::New(env, "fromBuffer: negative dimension in shape");
  }
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype));
  if (t.nbytes() != len) {
    throw Napi::RangeError::New(env, "fromBuffer: shape and dtype need " + std::to_string(t.nbytes()) +
                                         " bytes, the buffer has " + std::to_string(len));
  }
  if (len > 0) std::memcpy(t.data_ptr(), src, len);
  if (info.Length() > 3 && info[3].IsString()) {
    c10::Device dev = ParseDevice(info[3].As<Napi::String>().Utf8Value());
    if (!dev.is_cpu()) t = t.to(dev);
  }
  return PutTensor(env, std::move(t));
  MFR_GUARD_END(env, "fromBuffer")
}

}  // namespace

at::ScalarType ScalarTypeFromInt(Napi::Env env, Napi::Value v) {
  if (!v.IsNumber()) throw Napi::TypeError::New(env, "dtype: expected a dtype code");
  int code = v.As<Napi::Number>().Int32Value();
  if (code < 0 || code >= static_cast<int>(at::ScalarType::NumOptions)) {
    throw Napi::RangeError::New(env, "dtype: unknown dtype code " + std::to_string(code));
  }
  return static_cast<at::ScalarType>(code);
}

c10::Device ParseDevice(const std::string& s) { return c10::Device(s); }

void InitTensor(Napi::Env env, Napi::Object exports) {
  const std::pair<const char*, Napi::Value (*)(const Napi::CallbackInfo&)> fns[] = {
      {"dispose", Dispose},           {"isLive", IsLive},
      {"disposeMany", DisposeMany},
      {"liveCount", LiveCount},       {"shape", Shape},
      {"strides", Strides},           {"dim", Dim},
      {"numel", Numel},               {"dtype", Dtype},
      {"device", Device},             {"isContiguous", IsContiguous},
      {"item", Item},                 {"toBuffer", ToBuffer},
      {"copyInto", CopyInto},         {"requiresGrad", RequiresGrad},
      {"setRequiresGrad", SetRequiresGrad}, {"gradOf", Grad},
      {"setGrad", SetGrad},           {"isLeaf", IsLeaf},
      {"gradFn", GradFn},             {"retainGrad", RetainGrad},
      {"sameStorage", SameStorage},   {"version", Version},
      {"fromBuffer", FromBuffer},       {"bytesView", BytesView},
  };
  for (const auto& [name, fn] : fns) exports.Set(name, Napi::Function::New(env, fn, name));
}

}  // namespace mfr
