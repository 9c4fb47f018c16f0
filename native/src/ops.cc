// Calls any ATen operator through the c10 dispatcher by schema name. The dispatcher is what
// records autograd and applies autocast, so every op reached here gets both for free.
// Operator handles are resolved once (opHandle) and called by integer id afterwards.
#include <ATen/ThreadLocalState.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/stack.h>

#include <array>
#include <atomic>
#include <mutex>
#include <unordered_map>

#include "addon.h"

namespace mfr {

namespace {

enum class Kind {
  Tensor,
  OptTensor,
  TensorList,
  OptTensorList,
  Int,
  OptInt,
  IntList,
  OptIntList,
  Float,
  OptFloat,
  FloatList,
  OptFloatList,
  Bool,
  OptBool,
  BoolList,
  Scalar,
  OptScalar,
  String,
  OptString,
  Device,
  OptDevice,
  NoneOnly,  // arguments JS cannot meaningfully pass (Generator?, Dimname?): always None
  Unsupported,
};

struct ArgSpec {
  Kind kind;
  std::string name;
  c10::optional<c10::IValue> defaultValue;
  int32_t fixedLength;  // int[2] and friends: a single number is repeated; 0 when unsized
};

// Signatures common enough to skip the boxed IValue stack: the typed handle calls the same
// dispatcher entry (autograd, autocast and all) with C++ arguments directly, which halves the
// cost of a small op. Everything else takes the boxed path.
using SigT = at::Tensor(const at::Tensor&);
using SigTT = at::Tensor(const at::Tensor&, const at::Tensor&);
using SigTTS = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Scalar&);
using SigTS = at::Tensor(const at::Tensor&, const at::Scalar&);
using SigTSS = at::Tensor(const at::Tensor&, const at::Scalar&, const at::Scalar&);
enum class Fast { None, T, TT, TTS, TS, TSS };

struct OpEntry {
  c10::OperatorHandle op;
  std::string qualified;  // aten::name.overload, for error messages
  std::vector<ArgSpec> args;
  size_t numReturns;
  Fast fast = Fast::None;
  c10::optional<c10::TypedOperatorHandle<SigT>> t;
  c10::optional<c10::TypedOperatorHandle<SigTT>> tt;
  c10::optional<c10::TypedOperatorHandle<SigTTS>> tts;
  c10::optional<c10::TypedOperatorHandle<SigTS>> ts;
  c10::optional<c10::TypedOperatorHandle<SigTSS>> tss;
};

// Entries never move once published, so calls read them without a lock; only opHandle
// (resolution) takes the mutex.
constexpr size_t kMaxOps = 1 << 14;
std::array<OpEntry*, kMaxOps> opTable{};
std::atomic<size_t> opCount{0};
std::mutex opMutex;
std::unordered_map<std::string, size_t> opIndex;

bool IsIntLike(const c10::TypePtr& t) {
  switch (t->kind()) {
    case c10::TypeKind::IntType:
    case c10::TypeKind::SymIntType:
    case c10::TypeKind::ScalarTypeType:
    case c10::TypeKind::LayoutType:
    case c10::TypeKind::MemoryFormatType:
      return true;
    default:
      return false;
  }
}

Kind ListKind(const c10::TypePtr& elem, bool optional) {
  if (elem->kind() == c10::TypeKind::TensorType) return optional ? Kind::Unsupported : Kind::TensorList;
  if (elem->kind() == c10::TypeKind::OptionalType &&
      elem->castRaw<c10::OptionalType>()->getElementType()->kind() == c10::TypeKind::TensorType) {
    return optional ? Kind::Unsupported : Kind::OptTensorList;
  }
  if (IsIntLike(elem)) return optional ? Kind::OptIntList : Kind::IntList;
  if (elem->kind() == c10::TypeKind::FloatType) return optional ? Kind::OptFloatList : Kind::FloatList;
  if (elem->kind() == c10::TypeKind::BoolType) return optional ? Kind::Unsupported : Kind::BoolList;
  return Kind::Unsupported;
}

Kind KindOf(const c10::TypePtr& type) {
  if (type->kind() == c10::TypeKind::OptionalType) {
    const c10::TypePtr& e = type->castRaw<c10::OptionalType>()->getElementType();
    if (e->kind() == c10::TypeKind::TensorType) return Kind::OptTensor;
    if (IsIntLike(e)) return Kind::OptInt;
    if (e->kind() == c10::TypeKind::FloatType) return Kind::OptFloat;
    if (e->kind() == c10::TypeKind::BoolType) return Kind::OptBool;
    if (e->kind() == c10::TypeKind::NumberType) return Kind::OptScalar;
    if (e->kind() == c10::TypeKind::StringType) return Kind::OptString;
    if (e->kind() == c10::TypeKind::DeviceObjType) return Kind::OptDevice;
    if (e->kind() == c10::TypeKind::ListType) {
      return ListKind(e->castRaw<c10::ListType>()->getElementType(), true);
    }
    return Kind::NoneOnly;
  }
  if (type->kind() == c10::TypeKind::TensorType) return Kind::Tensor;
  if (IsIntLike(type)) return Kind::Int;
  if (type->kind() == c10::TypeKind::FloatType) return Kind::Float;
  if (type->kind() == c10::TypeKind::BoolType) return Kind::Bool;
  if (type->kind() == c10::TypeKind::NumberType) return Kind::Scalar;
  if (type->kind() == c10::TypeKind::StringType) return Kind::String;
  if (type->kind() == c10::TypeKind::DeviceObjType) return Kind::Device;
  if (type->kind() == c10::TypeKind::ListType) {
    return ListKind(type->castRaw<c10::ListType>()->getElementType(), false);
  }
  return Kind::Unsupported;
}

[[noreturn]] void ArgError(Napi::Env env, const OpEntry& e, const ArgSpec& a, const std::string& want) {
  throw Napi::TypeError::New(env, e.qualified + ": argument '" + a.name + "' must be " + want);
}

int64_t ToInt(Napi::Env env, const OpEntry& e, const ArgSpec& a, Napi::Value v) {
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (d != static_cast<double>(static_cast<int64_t>(d))) ArgError(env, e, a, "an integer");
    return static_cast<int64_t>(d);
  }
  if (v.IsBigInt()) {
    bool lossless = true;
    return v.As<Napi::BigInt>().Int64Value(&lossless);
  }
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? 1 : 0;
  ArgError(env, e, a, "an integer");
}

double ToFloat(Napi::Env env, const OpEntry& e, const ArgSpec& a, Napi::Value v) {
  if (v.IsNumber()) return v.As<Napi::Number>().DoubleValue();
  ArgError(env, e, a, "a number");
}

bool ToBool(Napi::Env env, const OpEntry& e, const ArgSpec& a, Napi::Value v) {
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value();
  ArgError(env, e, a, "a boolean");
}

// JS numbers carry no int/float distinction; integer values become integer scalars so that
// integer tensors stay integer (t + 1), matching what a Python user writes.
c10::Scalar ToScalar(Napi::Env env, const OpEntry& e, const ArgSpec& a, Napi::Value v) {
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (std::abs(d) < 9007199254740992.0 && d == static_cast<double>(static_cast<int64_t>(d))) {
      return c10::Scalar(static_cast<int64_t>(d));
    }
    return c10::Scalar(d);
  }
  if (v.IsBoolean()) return c10::Scalar(v.As<Napi::Boolean>().Value());
  if (v.IsBigInt()) {
    bool lossless = true;
    return c10::Scalar(v.As<Napi::BigInt>().Int64Value(&lossless));
  }
  ArgError(env, e, a, "a number or boolean");
}

Napi::Array ToArray(Napi::Env env, const OpEntry& e, const ArgSpec& a, Napi::Value v) {
  if (!v.IsArray()) ArgError(env, e, a, "an array");
  return v.As<Napi::Array>();
}

std::vector<int64_t> ToIntList(Napi::Env env, const OpEntry& e, const ArgSpec& a, Napi::Value v) {
  if (v.IsNumber() && a.fixedLength > 0) {
    return std::vector<int64_t>(a.fixedLength, ToInt(env, e, a, v));
  }
  Napi::Array arr = ToArray(env, e, a, v);
  std::vector<int64_t> out(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) out[i] = ToInt(env, e, a, arr.Get(i));
  return out;
}

std::vector<double> ToFloatList(Napi::Env env, const OpEntry& e, const ArgSpec& a, Napi::Value v) {
  Napi::Array arr = ToArray(env, e, a, v);
  std::vector<double> out(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) out[i] = ToFloat(env, e, a, arr.Get(i));
  return out;
}

void PushArg(Napi::Env env, const OpEntry& e, const ArgSpec& a, Napi::Value v, torch::jit::Stack& s) {
  bool none = v.IsUndefined() || v.IsNull();
  if (none) {
    if (v.IsUndefined() && a.defaultValue.has_value()) {
      s.push_back(*a.defaultValue);
      return;
    }
    switch (a.kind) {
      case Kind::OptTensor:
      case Kind::OptInt:
      case Kind::OptIntList:
      case Kind::OptFloat:
      case Kind::OptFloatList:
      case Kind::OptBool:
      case Kind::OptScalar:
      case Kind::OptString:
      case Kind::OptDevice:
      case Kind::NoneOnly:
        s.emplace_back();
        return;
      default:
        throw Napi::TypeError::New(env, e.qualified + ": missing required argument '" + a.name + "'");
    }
  }
  switch (a.kind) {
    case Kind::Tensor:
    case Kind::OptTensor:
      s.emplace_back(GetTensor(env, v, e.qualified.c_str()));
      return;
    case Kind::TensorList: {
      Napi::Array arr = ToArray(env, e, a, v);
      std::vector<at::Tensor> list;
      list.reserve(arr.Length());
      for (uint32_t i = 0; i < arr.Length(); ++i) {
        list.push_back(GetTensor(env, arr.Get(i), e.qualified.c_str()));
      }
      s.emplace_back(c10::List<at::Tensor>(list));
      return;
    }
    case Kind::OptTensorList: {
      Napi::Array arr = ToArray(env, e, a, v);
      c10::List<c10::optional<at::Tensor>> list;
      list.reserve(arr.Length());
      for (uint32_t i = 0; i < arr.Length(); ++i) {
        Napi::Value x = arr.Get(i);
        if (x.IsUndefined() || x.IsNull()) {
          list.push_back(c10::nullopt);
        } else {
          list.push_back(GetTensor(env, x, e.qualified.c_str()));
        }
      }
      s.emplace_back(std::move(list));
      return;
    }
    case Kind::Int:
    case Kind::OptInt:
      s.emplace_back(ToInt(env, e, a, v));
      return;
    case Kind::IntList:
    case Kind::OptIntList:
      s.emplace_back(ToIntList(env, e, a, v));
      return;
    case Kind::Float:
    case Kind::OptFloat:
      s.emplace_back(ToFloat(env, e, a, v));
      return;
    case Kind::FloatList:
    case Kind::OptFloatList:
      s.emplace_back(ToFloatList(env, e, a, v));
      return;
    case Kind::Bool:
    case Kind::OptBool:
      s.emplace_back(ToBool(env, e, a, v));
      return;
    case Kind::BoolList: {
      Napi::Array arr = ToArray(env, e, a, v);
      c10::List<bool> list;
      for (uint32_t i = 0; i < arr.Length(); ++i) list.push_back(ToBool(env, e, a, arr.Get(i)));
      s.emplace_back(std::move(list));
      return;
    }
    case Kind::Scalar:
    case Kind::OptScalar:
      s.emplace_back(ToScalar(env, e, a, v));
      return;
    case Kind::String:
    case Kind::OptString:
      if (!v.IsString()) ArgError(env, e, a, "a string");
      s.emplace_back(v.As<Napi::String>().Utf8Value());
      return;
    case Kind::Device:
    case Kind::OptDevice:
      if (!v.IsString()) ArgError(env, e, a, "a device string such as 'cpu' or 'cuda:0'");
      s.emplace_back(ParseDevice(v.As<Napi::String>().Utf8Value()));
      return;
    case Kind::NoneOnly:
      ArgError(env, e, a, "left out (only None is supported from JS)");
    case Kind::Unsupported:
      ArgError(env, e, a, "left out (its type is not supported from JS)");
  }
}

const OpEntry& EntryAt(Napi::Env env, Napi::Value idv) {
  if (!idv.IsNumber()) throw Napi::TypeError::New(env, "op id must be a number");
  uint32_t id = idv.As<Napi::Number>().Uint32Value();
  if (id >= opCount.load(std::memory_order_acquire)) {
    throw Napi::RangeError::New(env, "unknown op id " + std::to_string(id));
  }
  return *opTable[id];
}

// Fills `stack` from info[1..]; trailing omitted arguments take their defaults.
void FillStack(Napi::Env env, const OpEntry& e, const Napi::CallbackInfo& info, torch::jit::Stack& stack) {
  size_t given = info.Length() - 1;
  if (given > e.args.size()) {
    throw Napi::TypeError::New(env, e.qualified + ": takes " + std::to_string(e.args.size()) +
                                        " arguments, got " + std::to_string(given));
  }
  for (size_t i = 0; i < e.args.size(); ++i) {
    PushArg(env, e, e.args[i], i < given ? info[i + 1] : env.Undefined(), stack);
  }
}

torch::jit::Stack BuildStack(Napi::Env env, const OpEntry& e, const Napi::CallbackInfo& info) {
  torch::jit::Stack stack;
  stack.reserve(e.args.size() > e.numReturns ? e.args.size() : e.numReturns);
  FillStack(env, e, info, stack);
  return stack;
}

// Synchronous calls reuse one stack per thread: its capacity survives clear(), so a call does
// not allocate for its arguments. Cleared on every exit, so no tensor outlives the call.
struct StackLease {
  torch::jit::Stack& stack;
  StackLease() : stack(Get()) {}
  ~StackLease() { stack.clear(); }
  static torch::jit::Stack& Get() {
    thread_local torch::jit::Stack s;
    return s;
  }
};

Napi::Value Results(Napi::Env env, torch::jit::Stack& stack) {
  if (stack.empty()) return env.Undefined();
  if (stack.size() == 1) return IValueToJs(env, stack[0]);
  Napi::Array out = Napi::Array::New(env, stack.size());
  for (size_t i = 0; i < stack.size(); ++i) out.Set(static_cast<uint32_t>(i), IValueToJs(env, stack[i]));
  return out;
}

void ChooseFastPath(OpEntry& e) {
  const auto& schema = e.op.schema();
  if (schema.is_mutable() || schema.is_vararg() || schema.returns().size() != 1 ||
      schema.returns()[0].type()->kind() != c10::TypeKind::TensorType) {
    return;
  }
  std::string pattern;
  for (const auto& a : e.args) {
    if (a.kind == Kind::Tensor) pattern += 'T';
    else if (a.kind == Kind::Scalar) pattern += 'S';
    else return;
  }
  // typed<>() checks the C++ signature against the schema; a mismatch just keeps the boxed path.
  try {
    if (pattern == "T") e.t = e.op.typed<SigT>(), e.fast = Fast::T;
    else if (pattern == "TT") e.tt = e.op.typed<SigTT>(), e.fast = Fast::TT;
    else if (pattern == "TTS") e.tts = e.op.typed<SigTTS>(), e.fast = Fast::TTS;
    else if (pattern == "TS") e.ts = e.op.typed<SigTS>(), e.fast = Fast::TS;
    else if (pattern == "TSS") e.tss = e.op.typed<SigTSS>(), e.fast = Fast::TSS;
  } catch (const std::exception&) {
    e.fast = Fast::None;
  }
}

// Argument i of a fast call: given by JS, or the schema default.
Napi::Value ArgOrUndefined(const Napi::CallbackInfo& info, size_t i) {
  return i + 1 < info.Length() ? info[i + 1] : info.Env().Undefined();
}

c10::Scalar FastScalar(Napi::Env env, const OpEntry& e, size_t i, const Napi::CallbackInfo& info) {
  Napi::Value v = ArgOrUndefined(info, i);
  const ArgSpec& a = e.args[i];
  if (v.IsUndefined() && a.defaultValue.has_value()) return a.defaultValue->toScalar();
  if (v.IsUndefined() || v.IsNull()) throw Napi::TypeError::New(env, e.qualified + ": missing required argument '" + a.name + "'");
  return ToScalar(env, e, a, v);
}

const at::Tensor& FastTensor(Napi::Env env, const OpEntry& e, size_t i, const Napi::CallbackInfo& info) {
  Napi::Value v = ArgOrUndefined(info, i);
  if (v.IsUndefined() || v.IsNull()) {
    throw Napi::TypeError::New(env, e.qualified + ": missing required argument '" + e.args[i].name + "'");
  }
  return GetTensor(env, v, e.qualified.c_str());
}

// Runs a fast-path op; the caller checked e.fast != None.
at::Tensor CallFast(Napi::Env env, const OpEntry& e, const Napi::CallbackInfo& info) {
  if (info.Length() - 1 > e.args.size()) {
    throw Napi::TypeError::New(env, e.qualified + ": takes " + std::to_string(e.args.size()) + " arguments, got " +
                                        std::to_string(info.Length() - 1));
  }
  switch (e.fast) {
    case Fast::T:
      return e.t->call(FastTensor(env, e, 0, info));
    case Fast::TT:
      return e.tt->call(FastTensor(env, e, 0, info), FastTensor(env, e, 1, info));
    case Fast::TTS:
      return e.tts->call(FastTensor(env, e, 0, info), FastTensor(env, e, 1, info), FastScalar(env, e, 2, info));
    case Fast::TS:
      return e.ts->call(FastTensor(env, e, 0, info), FastScalar(env, e, 1, info));
    case Fast::TSS:
      return e.tss->call(FastTensor(env, e, 0, info), FastScalar(env, e, 1, info), FastScalar(env, e, 2, info));
    case Fast::None:
      break;
  }
  throw Napi::Error::New(env, e.qualified + ": no fast path");
}

// opHandle(name: "aten::add", overload: "Tensor" | ""): number
Napi::Value OpHandle(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  if (!info[0].IsString() || !info[1].IsString()) {
    throw Napi::TypeError::New(env, "opHandle(name, overload): both must be strings");
  }
  std::string name = info[0].As<Napi::String>().Utf8Value();
  std::string overload = info[1].As<Napi::String>().Utf8Value();
  std::string key = overload.empty() ? name : name + "." + overload;
  std::lock_guard<std::mutex> lock(opMutex);
  auto found = opIndex.find(key);
  if (found != opIndex.end()) return Napi::Number::New(env, static_cast<double>(found->second));
  auto handle = c10::Dispatcher::singleton().findSchema({name, overload});
  if (!handle.has_value()) throw Napi::Error::New(env, "unknown operator " + key);
  size_t id = opCount.load();
  if (id >= kMaxOps) throw Napi::Error::New(env, "too many operators registered");
  auto* entry = new OpEntry{*handle, key, {}, handle->schema().returns().size(), Fast::None,
                            c10::nullopt, c10::nullopt, c10::nullopt, c10::nullopt, c10::nullopt};
  for (const auto& arg : handle->schema().arguments()) {
    ArgSpec spec{KindOf(arg.type()), arg.name(), arg.default_value(), 0};
    if (arg.N().has_value()) spec.fixedLength = *arg.N();
    entry->args.push_back(std::move(spec));
  }
  ChooseFastPath(*entry);
  opTable[id] = entry;
  opIndex.emplace(key, id);
  opCount.store(id + 1, std::memory_order_release);
  return Napi::Number::New(env, static_cast<double>(id));
  MFR_GUARD_END(env, "opHandle")
}

Napi::Value OpSchema(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const OpEntry& e = EntryAt(env, info[0]);
  std::ostringstream os;
  os << e.op.schema();
  return Napi::String::New(env, os.str());
}

// call(id, ...args): the op's results (one value, or an array for several).
Napi::Value Call(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const OpEntry& e = EntryAt(env, info[0]);
  MFR_GUARD_BEGIN
  if (e.fast != Fast::None) return PutTensor(env, CallFast(env, e, info));
  StackLease lease;
  FillStack(env, e, info, lease.stack);
  e.op.callBoxed(&lease.stack);
  return Results(env, lease.stack);
  MFR_GUARD_END(env, e.qualified)
}

// callVoid(id, ...args): for in-place ops whose result JS already holds.
Napi::Value CallVoid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const OpEntry& e = EntryAt(env, info[0]);
  MFR_GUARD_BEGIN
  StackLease lease;
  FillStack(env, e, info, lease.stack);
  e.op.callBoxed(&lease.stack);
  return env.Undefined();
  MFR_GUARD_END(env, e.qualified)
}

// Runs one op on the libuv thread pool with the caller's thread-local state (grad mode,
// autocast keys and dtype), so a heavy op does not freeze timers, signals or progress bars.
class OpWorker : public Napi::AsyncWorker {
 public:
  OpWorker(Napi::Env env, const OpEntry& e, torch::jit::Stack stack)
      : Napi::AsyncWorker(env, "mfr.callAsync"),
        entry_(e),
        stack_(std::move(stack)),
        cpuAutocastDtype_(at::autocast::get_autocast_cpu_dtype()),
        deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      at::ThreadLocalStateGuard guard(tls_);
      at::ScalarType prevDtype = at::autocast::get_autocast_cpu_dtype();
      at::autocast::set_autocast_cpu_dtype(cpuAutocastDtype_);
      entry_.op.callBoxed(&stack_);
      // The autocast cast cache is thread-local; a pool thread must not keep stale casts of
      // weights that the optimizer will update.
      at::autocast::clear_cache();
      at::autocast::set_autocast_cpu_dtype(prevDtype);
    } catch (const c10::Error& err) {
      SetError(entry_.qualified + ": " + err.what_without_backtrace());
    } catch (const std::exception& err) {
      SetError(entry_.qualified + ": " + err.what());
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    try {
      deferred_.Resolve(Results(env, stack_));
    } catch (const Napi::Error& err) {
      deferred_.Reject(err.Value());
    }
    stack_.clear();
  }
  void OnError(const Napi::Error& err) override {
    stack_.clear();
    deferred_.Reject(err.Value());
  }

 private:
  const OpEntry& entry_;
  torch::jit::Stack stack_;
  at::ThreadLocalState tls_;
  at::ScalarType cpuAutocastDtype_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value CallAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const OpEntry& e = EntryAt(env, info[0]);
  MFR_GUARD_BEGIN
  torch::jit::Stack stack = BuildStack(env, e, info);
  auto* worker = new OpWorker(env, e, std::move(stack));
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
  MFR_GUARD_END(env, e.qualified)
}

}  // namespace

Napi::Value IValueToJs(Napi::Env env, const c10::IValue& v) {
  if (v.isTensor()) {
    const at::Tensor& t = v.toTensor();
    if (!t.defined()) return env.Undefined();
    return PutTensor(env, t);
  }
  if (v.isNone()) return env.Undefined();
  if (v.isInt()) return Napi::Number::New(env, static_cast<double>(v.toInt()));
  if (v.isDouble()) return Napi::Number::New(env, v.toDouble());
  if (v.isBool()) return Napi::Boolean::New(env, v.toBool());
  if (v.isString()) return Napi::String::New(env, v.toStringRef());
  if (v.isDevice()) return Napi::String::New(env, v.toDevice().str());
  if (v.isTensorList()) {
    auto list = v.toTensorList();
    Napi::Array out = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); ++i) out.Set(static_cast<uint32_t>(i), IValueToJs(env, list.get(i)));
    return out;
  }
  if (v.isTuple()) {
    const auto& elems = v.toTupleRef().elements();
    Napi::Array out = Napi::Array::New(env, elems.size());
    for (size_t i = 0; i < elems.size(); ++i) out.Set(static_cast<uint32_t>(i), IValueToJs(env, elems[i]));
    return out;
  }
  if (v.isList()) {
    auto list = v.toListRef();
    Napi::Array out = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); ++i) out.Set(static_cast<uint32_t>(i), IValueToJs(env, list[i]));
    return out;
  }
  if (v.isGenericDict()) {
    // A Map keeps the insertion order of a state dict and allows non-string keys.
    Napi::Function mapCtor = env.Global().Get("Map").As<Napi::Function>();
    Napi::Object map = mapCtor.New({});
    Napi::Function set = map.Get("set").As<Napi::Function>();
    for (const auto& kv : v.toGenericDict()) {
      set.Call(map, {IValueToJs(env, kv.key()), IValueToJs(env, kv.value())});
    }
    return map;
  }
  throw Napi::Error::New(env, std::string("cannot convert a value of type ") + v.tagKind() + " to JS");
}

void InitOps(Napi::Env env, Napi::Object exports) {
  exports.Set("opHandle", Napi::Function::New(env, OpHandle, "opHandle"));
  exports.Set("opSchema", Napi::Function::New(env, OpSchema, "opSchema"));
  exports.Set("call", Napi::Function::New(env, Call, "call"));
  exports.Set("callVoid", Napi::Function::New(env, CallVoid, "callVoid"));
  exports.Set("callAsync", Napi::Function::New(env, CallAsync, "callAsync"));
}

}  // namespace mfr
