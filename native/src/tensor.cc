// The JS handle of a libtorch tensor, and copies between JS buffers and tensors.
#include <ATen/autocast_mode.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/function.h>

#include <cstring>

#include "addon.h"

namespace mfr {

namespace {
// Marks objects made by TensorWrap so Unwrap can refuse anything else without a slow
// instanceof check.
const napi_type_tag kTensorTag = {0x6d66722d74656e73ULL, 0x6f722d7461673031ULL};

// The tensor handed from Wrap() to the constructor: creating the JS object through the
// constructor with no arguments is cheaper than boxing the tensor in an External.
thread_local at::Tensor* pendingTensor = nullptr;

int64_t BytesOf(const at::Tensor& t) {
  if (!t.defined() || !t.has_storage()) return 0;
  return static_cast<int64_t>(t.storage().nbytes());
}
}  // namespace

void ThrowJs(Napi::Env env, const std::string& where, const std::exception& e) {
  std::string msg;
  if (auto* ce = dynamic_cast<const c10::Error*>(&e)) {
    msg = ce->what_without_backtrace();
  } else {
    msg = e.what();
  }
  // libtorch messages can end in a newline or carry a trailing exception-raised-from note.
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  throw Napi::Error::New(env, where + ": " + msg);
}

Napi::Function TensorWrap::Init(Napi::Env env) {
  return DefineClass(
      env, "NativeTensor",
      {
          InstanceMethod<&TensorWrap::Dispose>("dispose"),
          InstanceMethod<&TensorWrap::IsDisposed>("isDisposed"),
          InstanceMethod<&TensorWrap::Shape>("shape"),
          InstanceMethod<&TensorWrap::Strides>("strides"),
          InstanceMethod<&TensorWrap::Dim>("dim"),
          InstanceMethod<&TensorWrap::Numel>("numel"),
          InstanceMethod<&TensorWrap::Dtype>("dtype"),
          InstanceMethod<&TensorWrap::Device>("device"),
          InstanceMethod<&TensorWrap::IsContiguous>("isContiguous"),
          InstanceMethod<&TensorWrap::Item>("item"),
          InstanceMethod<&TensorWrap::ToBuffer>("toBuffer"),
          InstanceMethod<&TensorWrap::CopyInto>("copyInto"),
          InstanceMethod<&TensorWrap::GetRequiresGrad>("requiresGrad"),
          InstanceMethod<&TensorWrap::SetRequiresGrad>("setRequiresGrad"),
          InstanceMethod<&TensorWrap::GetGrad>("grad"),
          InstanceMethod<&TensorWrap::SetGrad>("setGrad"),
          InstanceMethod<&TensorWrap::IsLeaf>("isLeaf"),
          InstanceMethod<&TensorWrap::GradFn>("gradFn"),
          InstanceMethod<&TensorWrap::RetainGrad>("retainGrad"),
          InstanceMethod<&TensorWrap::SameStorage>("sameStorage"),
          InstanceMethod<&TensorWrap::DataPtr>("dataPtr"),
          InstanceMethod<&TensorWrap::Version>("version"),
      });
}

TensorWrap::TensorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorWrap>(info) {
  info.This().As<Napi::Object>().TypeTag(&kTensorTag);
  if (pendingTensor != nullptr) {
    tensor_ = std::move(*pendingTensor);
    pendingTensor = nullptr;
    externalBytes_ = BytesOf(tensor_);
    if (externalBytes_ > 0) Napi::MemoryManagement::AdjustExternalMemory(info.Env(), externalBytes_);
  } else {
    // Constructed from JS directly: an empty handle that behaves as disposed.
    disposed_ = true;
  }
}

TensorWrap::~TensorWrap() { Release(Env()); }

void TensorWrap::Release(Napi::Env env) {
  if (externalBytes_ > 0) {
    Napi::MemoryManagement::AdjustExternalMemory(env, -externalBytes_);
    externalBytes_ = 0;
  }
  tensor_ = at::Tensor();
  disposed_ = true;
}

Napi::Object TensorWrap::Wrap(Napi::Env env, at::Tensor t) {
  auto* data = env.GetInstanceData<AddonData>();
  pendingTensor = &t;
  Napi::Object obj = data->tensorCtor.New({});
  pendingTensor = nullptr;
  return obj;
}

bool TensorWrap::IsTensor(Napi::Env env, Napi::Value v) {
  return v.IsObject() && v.As<Napi::Object>().CheckTypeTag(&kTensorTag);
}

const at::Tensor& TensorWrap::From(Napi::Env env, Napi::Value v, const char* what) {
  if (!IsTensor(env, v)) {
    throw Napi::TypeError::New(env, std::string(what) + ": expected a Tensor");
  }
  TensorWrap* w = ObjectWrap<TensorWrap>::Unwrap(v.As<Napi::Object>());
  if (w->disposed_) {
    throw Napi::Error::New(env, std::string(what) + ": tensor was disposed");
  }
  return w->tensor_;
}

const at::Tensor& TensorWrap::Get(Napi::Env env) const {
  if (disposed_) throw Napi::Error::New(env, "tensor was disposed");
  return tensor_;
}

Napi::Value TensorWrap::Dispose(const Napi::CallbackInfo& info) {
  Release(info.Env());
  return info.Env().Undefined();
}

Napi::Value TensorWrap::IsDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), disposed_);
}

static Napi::Array IntArray(Napi::Env env, c10::IntArrayRef v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, v[i]));
  return a;
}

Napi::Value TensorWrap::Shape(const Napi::CallbackInfo& info) {
  return IntArray(info.Env(), Get(info.Env()).sizes());
}

Napi::Value TensorWrap::Strides(const Napi::CallbackInfo& info) {
  return IntArray(info.Env(), Get(info.Env()).strides());
}

Napi::Value TensorWrap::Dim(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), Get(info.Env()).dim());
}

Napi::Value TensorWrap::Numel(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Get(info.Env()).numel()));
}

Napi::Value TensorWrap::Dtype(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<int>(Get(info.Env()).scalar_type()));
}

Napi::Value TensorWrap::Device(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), Get(info.Env()).device().str());
}

Napi::Value TensorWrap::IsContiguous(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), Get(info.Env()).is_contiguous());
}

Napi::Value TensorWrap::Item(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  const at::Tensor& t = Get(env);
  if (t.numel() != 1) {
    throw Napi::Error::New(env, "item: tensor has " + std::to_string(t.numel()) +
                                    " elements, item() needs exactly one");
  }
  at::Scalar s = t.item();
  if (s.isBoolean()) return Napi::Boolean::New(env, s.toBool());
  if (s.isIntegral(false)) return Napi::Number::New(env, static_cast<double>(s.toLong()));
  return Napi::Number::New(env, s.toDouble());
  MFR_GUARD_END(env, "item")
}

Napi::Value TensorWrap::ToBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  at::NoGradGuard noGrad;
  at::Tensor t = Get(env).detach().to(at::kCPU).contiguous();
  size_t n = t.nbytes();
  Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, n);
  if (n > 0) std::memcpy(buf.Data(), t.data_ptr(), n);
  return buf;
  MFR_GUARD_END(env, "toBuffer")
}

// Copies the tensor's elements into a caller-owned typed array or ArrayBuffer of the exact
// byte size (used to fill preallocated batch buffers without a temporary).
Napi::Value TensorWrap::CopyInto(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  at::NoGradGuard noGrad;
  at::Tensor t = Get(env).detach().to(at::kCPU).contiguous();
  uint8_t* dst = nullptr;
  size_t len = 0;
  if (info[0].IsTypedArray()) {
    auto ta = info[0].As<Napi::TypedArray>();
    dst = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    len = ta.ByteLength();
  } else if (info[0].IsArrayBuffer()) {
    auto ab = info[0].As<Napi::ArrayBuffer>();
    dst = static_cast<uint8_t*>(ab.Data());
    len = ab.ByteLength();
  } else {
    throw Napi::TypeError::New(env, "copyInto: expected a TypedArray or ArrayBuffer");
  }
  if (len != t.nbytes()) {
    throw Napi::RangeError::New(env, "copyInto: destination has " + std::to_string(len) +
                                         " bytes, tensor has " + std::to_string(t.nbytes()));
  }
  if (len > 0) std::memcpy(dst, t.data_ptr(), len);
  return env.Undefined();
  MFR_GUARD_END(env, "copyInto")
}

Napi::Value TensorWrap::GetRequiresGrad(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), Get(info.Env()).requires_grad());
}

Napi::Value TensorWrap::SetRequiresGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  // set_requires_grad is a method on the const handle; the TensorImpl is shared.
  const_cast<at::Tensor&>(Get(env)).set_requires_grad(info[0].ToBoolean().Value());
  return env.Undefined();
  MFR_GUARD_END(env, "requiresGrad_")
}

Napi::Value TensorWrap::GetGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  const at::Tensor& g = Get(env).grad();
  if (!g.defined()) return env.Undefined();
  return Wrap(env, g);
  MFR_GUARD_END(env, "grad")
}

Napi::Value TensorWrap::SetGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  at::Tensor& t = const_cast<at::Tensor&>(Get(env));
  if (info[0].IsUndefined() || info[0].IsNull()) {
    t.mutable_grad() = at::Tensor();
  } else {
    const at::Tensor& g = From(env, info[0], "setGrad");
    if (!g.sizes().equals(t.sizes())) {
      throw Napi::Error::New(env, "setGrad: gradient shape differs from the tensor's");
    }
    t.mutable_grad() = g;
  }
  return env.Undefined();
  MFR_GUARD_END(env, "setGrad")
}

Napi::Value TensorWrap::IsLeaf(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), Get(info.Env()).is_leaf());
}

Napi::Value TensorWrap::GradFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto& fn = Get(env).grad_fn();
  if (!fn) return env.Undefined();
  return Napi::String::New(env, fn->name());
}

Napi::Value TensorWrap::RetainGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  Get(env).retain_grad();
  return env.Undefined();
  MFR_GUARD_END(env, "retainGrad")
}

Napi::Value TensorWrap::SameStorage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& a = Get(env);
  const at::Tensor& b = From(env, info[0], "sameStorage");
  return Napi::Boolean::New(env, a.has_storage() && b.has_storage() && a.storage().is_alias_of(b.storage()));
}

Napi::Value TensorWrap::DataPtr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(Get(env).data_ptr())));
}

Napi::Value TensorWrap::Version(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Get(info.Env())._version()));
}

at::ScalarType ScalarTypeFromInt(Napi::Env env, Napi::Value v) {
  if (!v.IsNumber()) throw Napi::TypeError::New(env, "dtype: expected a dtype code");
  int code = v.As<Napi::Number>().Int32Value();
  if (code < 0 || code >= static_cast<int>(at::ScalarType::NumOptions)) {
    throw Napi::RangeError::New(env, "dtype: unknown dtype code " + std::to_string(code));
  }
  return static_cast<at::ScalarType>(code);
}

c10::Device ParseDevice(const std::string& s) { return c10::Device(s); }

// fromBuffer(data: TypedArray | ArrayBuffer, dtype: number, shape: number[], device?: string)
// Copies: JS memory may move or be freed by the GC, libtorch's may outlive it.
static Napi::Value FromBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  const uint8_t* src = nullptr;
  size_t len = 0;
  if (info[0].IsTypedArray()) {
    auto ta = info[0].As<Napi::TypedArray>();
    src = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    len = ta.ByteLength();
  } else if (info[0].IsArrayBuffer()) {
    auto ab = info[0].As<Napi::ArrayBuffer>();
    src = static_cast<const uint8_t*>(ab.Data());
    len = ab.ByteLength();
  } else if (info[0].IsBuffer()) {
    auto b = info[0].As<Napi::Buffer<uint8_t>>();
    src = b.Data();
    len = b.ByteLength();
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
  return TensorWrap::Wrap(env, std::move(t));
  MFR_GUARD_END(env, "fromBuffer")
}

void InitTensor(Napi::Env env, Napi::Object exports) {
  auto* data = env.GetInstanceData<AddonData>();
  Napi::Function ctor = TensorWrap::Init(env);
  data->tensorCtor = Napi::Persistent(ctor);
  exports.Set("NativeTensor", ctor);
  exports.Set("fromBuffer", Napi::Function::New(env, FromBuffer, "fromBuffer"));
}

}  // namespace mfr
