// c10d from JS: a TCPStore for rendezvous, process groups (Gloo on CPU; NCCL when built with
// CUDA), collectives returning Work handles that JS can wait on synchronously or on a pool
// thread, and DDP's Reducer. Collectives carry no autograd; src/distributed and src/head add the
// maths around them. Builds against libtorch 1.13 (Debian 12) and 2.x (CUDA PyTorch installs):
// where the C++ API moved between versions, the code asks the compiler which form exists.
#include <torch/version.h>

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>
#include <torch/csrc/distributed/c10d/default_comm_hooks.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>
#ifdef MFR_CUDA
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <future>
#include <memory>
#include <thread>
#include <type_traits>

#include "addon.h"

// Since PyTorch 2.0 the backends (Gloo, NCCL) derive from c10d::Backend, and a c10d::ProcessGroup
// is a front that dispatches to one backend per device type; DDP's Reducer takes the front.
#if TORCH_VERSION_MAJOR >= 2
using PgBase = c10d::Backend;
#else
using PgBase = c10d::ProcessGroup;
#endif

namespace mfr {

namespace {

using Ms = std::chrono::milliseconds;

// Long-lived, few objects: wrapped JS objects are fine here (unlike tensors).
class StoreWrap : public Napi::ObjectWrap<StoreWrap> {
 public:
  c10::intrusive_ptr<c10d::Store> store;
  explicit StoreWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<StoreWrap>(info) {}
};

class GroupWrap : public Napi::ObjectWrap<GroupWrap> {
 public:
  c10::intrusive_ptr<PgBase> pg;
  c10::intrusive_ptr<c10d::Store> store;
  bool nccl = false;
  int rank = 0;
  int size = 1;
  explicit GroupWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<GroupWrap>(info) {}
};

class WorkWrap : public Napi::ObjectWrap<WorkWrap> {
 public:
  c10::intrusive_ptr<c10d::Work> work;
  std::string what;
  explicit WorkWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<WorkWrap>(info) {}
};

// c10d's Reducer is DDP's engine: autograd hooks on the parameters' gradient accumulators launch
// each bucket's all-reduce as soon as its gradients are ready, overlapping communication with the
// rest of the backward pass, and average over ranks.
class ReducerWrap : public Napi::ObjectWrap<ReducerWrap> {
 public:
  std::shared_ptr<c10d::Reducer> reducer;
  explicit ReducerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ReducerWrap>(info) {}
};

// Constructors of the calling thread's environment (one environment per thread in Node).
struct DistCtors {
  Napi::FunctionReference store, group, work, reducer;
};
thread_local DistCtors* tlsCtors = nullptr;

template <typename W>
W* UnwrapAs(Napi::Env env, Napi::Value v, const char* what) {
  if (!v.IsObject()) throw Napi::TypeError::New(env, std::string(what) + ": expected a native object");
  W* w = Napi::ObjectWrap<W>::Unwrap(v.As<Napi::Object>());
  if (w == nullptr) throw Napi::TypeError::New(env, std::string(what) + ": wrong object");
  return w;
}

GroupWrap* Group(Napi::Env env, Napi::Value v) {
  GroupWrap* g = UnwrapAs<GroupWrap>(env, v, "process group");
  if (!g->pg) throw Napi::Error::New(env, "process group was destroyed");
  return g;
}

c10d::ReduceOp ReduceOpOf(Napi::Env env, Napi::Value v) {
  std::string op = v.IsString() ? v.As<Napi::String>().Utf8Value() : "sum";
  if (op == "sum") return c10d::ReduceOp::SUM;
  if (op == "max") return c10d::ReduceOp::MAX;
  if (op == "min") return c10d::ReduceOp::MIN;
  if (op == "product") return c10d::ReduceOp::PRODUCT;
  if (op == "avg") return c10d::ReduceOp::AVG;
  throw Napi::Error::New(env, "unknown reduce op '" + op + "'");
}

Napi::Value NewWork(Napi::Env env, c10::intrusive_ptr<c10d::Work> w, const std::string& what) {
  Napi::Object o = tlsCtors->work.New({});
  WorkWrap* ww = Napi::ObjectWrap<WorkWrap>::Unwrap(o);
  ww->work = std::move(w);
  ww->what = what;
  return o;
}

// Whether TCPStoreOptions has useLibUV (2.4+), and turning it off where it does.
template <typename O, typename = void>
struct HasLibUV : std::false_type {};
template <typename O>
struct HasLibUV<O, std::void_t<decltype(std::declval<O&>().useLibUV)>> : std::true_type {};
template <typename O>
bool DisableLibUV(O& opts) {
  if constexpr (HasLibUV<O>::value) {
    if (!opts.useLibUV) return false;
    opts.useLibUV = false;
    return true;
  }
  return false;
}

// storeCreate(host, port, isServer, worldSize, timeoutMs)
Napi::Value StoreCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  std::string host = info[0].As<Napi::String>().Utf8Value();
  c10d::TCPStoreOptions opts;
  opts.port = static_cast<uint16_t>(info[1].As<Napi::Number>().Uint32Value());
  opts.isServer = info[2].ToBoolean().Value();
  opts.numWorkers = static_cast<size_t>(info[3].As<Napi::Number>().Uint32Value());
  opts.waitWorkers = false;
  opts.timeout = Ms(info[4].As<Napi::Number>().Int64Value());
  Napi::Object o = tlsCtors->store.New({});
  c10::intrusive_ptr<c10d::Store> store;
  try {
    store = c10::make_intrusive<c10d::TCPStore>(host, opts);
  } catch (const std::exception& e) {
    // libtorch 2.4+ asks for the libuv server by default, which builds without libuv (Debian's)
    // refuse: fall back to the classic server, as those builds' own Python does.
    if (std::string(e.what()).find("libuv") == std::string::npos || !DisableLibUV(opts)) throw;
    store = c10::make_intrusive<c10d::TCPStore>(host, opts);
  }
  UnwrapAs<StoreWrap>(env, o, "store")->store = store;
  return o;
  MFR_GUARD_END(env, "TCPStore")
}

Napi::Value StoreSet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  auto* s = UnwrapAs<StoreWrap>(env, info[0], "store");
  std::string key = info[1].As<Napi::String>().Utf8Value();
  std::string value = info[2].As<Napi::String>().Utf8Value();
  s->store->set(key, std::vector<uint8_t>(value.begin(), value.end()));
  return env.Undefined();
  MFR_GUARD_END(env, "store.set")
}

Napi::Value StoreGet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  auto* s = UnwrapAs<StoreWrap>(env, info[0], "store");
  auto v = s->store->get(info[1].As<Napi::String>().Utf8Value());
  return Napi::String::New(env, std::string(v.begin(), v.end()));
  MFR_GUARD_END(env, "store.get")
}

// Runs op on a thread of its own and waits at most timeoutMs for it. c10d's store clients put no
// deadline on a reply (1.13 happened to set the socket's receive timeout on a client's first
// wait; 2.x only polls while waiting for keys), so across a cut link an add blocks for ever. An
// op that times out leaves its thread blocked until the connection fails or the process ends;
// the client is then only used for more ops under a deadline of their own.
template <typename F>
auto WithDeadline(F op, int64_t timeoutMs, const std::string& what) -> decltype(op()) {
  using R = decltype(op());
  auto task = std::make_shared<std::packaged_task<R()>>(std::move(op));
  std::future<R> result = task->get_future();
  std::thread([task] { (*task)(); }).detach();
  if (result.wait_for(Ms(timeoutMs)) == std::future_status::timeout) {
    throw std::runtime_error(what + ": the store did not answer within " + std::to_string(timeoutMs) + " ms");
  }
  return result.get();
}

// storeAdd(store, key, delta, timeoutMs?): without timeoutMs, c10d's own (none on a reply).
Napi::Value StoreAdd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  c10::intrusive_ptr<c10d::Store> store = UnwrapAs<StoreWrap>(env, info[0], "store")->store;
  std::string key = info[1].As<Napi::String>().Utf8Value();
  int64_t delta = info[2].As<Napi::Number>().Int64Value();
  auto add = [store, key, delta] { return store->add(key, delta); };
  int64_t v = info[3].IsNumber() ? WithDeadline(add, info[3].As<Napi::Number>().Int64Value(), "store.add") : add();
  return Napi::Number::New(env, static_cast<double>(v));
  MFR_GUARD_END(env, "store.add")
}

// groupGloo(store, rank, size, timeoutMs, hostname)
Napi::Value GroupGloo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  auto* s = UnwrapAs<StoreWrap>(env, info[0], "store");
  int rank = info[1].As<Napi::Number>().Int32Value();
  int size = info[2].As<Napi::Number>().Int32Value();
  auto opts = c10d::ProcessGroupGloo::Options::create(Ms(info[3].As<Napi::Number>().Int64Value()));
  std::string host = info[4].IsString() ? info[4].As<Napi::String>().Utf8Value() : "";
  opts->devices.push_back(host.empty() ? c10d::ProcessGroupGloo::createDefaultDevice()
                                       : c10d::ProcessGroupGloo::createDeviceForHostname(host));
  opts->threads = 2;
  Napi::Object o = tlsCtors->group.New({});
  GroupWrap* g = UnwrapAs<GroupWrap>(env, o, "group");
  g->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(s->store, rank, size, opts);
  g->store = s->store;
  g->rank = rank;
  g->size = size;
  return o;
  MFR_GUARD_END(env, "ProcessGroupGloo")
}

#ifdef MFR_CUDA
Napi::Value GroupNccl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  auto* s = UnwrapAs<StoreWrap>(env, info[0], "store");
  int rank = info[1].As<Napi::Number>().Int32Value();
  int size = info[2].As<Napi::Number>().Int32Value();
  auto opts = c10d::ProcessGroupNCCL::Options::create();
  opts->timeout = Ms(info[3].As<Napi::Number>().Int64Value());
  Napi::Object o = tlsCtors->group.New({});
  GroupWrap* g = UnwrapAs<GroupWrap>(env, o, "group");
  g->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(s->store, rank, size, opts);
  g->store = s->store;
  g->nccl = true;
  g->rank = rank;
  g->size = size;
  return o;
  MFR_GUARD_END(env, "ProcessGroupNCCL")
}
#endif

Napi::Value GroupDestroy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UnwrapAs<GroupWrap>(env, info[0], "group")->pg.reset();
  return env.Undefined();
}

// allreduce(group, tensors, op): Work
Napi::Value AllReduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  GroupWrap* g = Group(env, info[0]);
  auto ts = GetTensors(env, info[1], "allreduce");
  c10d::AllreduceOptions o;
  o.reduceOp = ReduceOpOf(env, info[2]);
  return NewWork(env, g->pg->allreduce(ts, o), "allreduce");
  MFR_GUARD_END(env, "allreduce")
}

// allgather(group, outputs: Tensor[] (one per rank), input): Work
Napi::Value AllGather(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  GroupWrap* g = Group(env, info[0]);
  std::vector<std::vector<at::Tensor>> outs{GetTensors(env, info[1], "allgather")};
  std::vector<at::Tensor> in{GetTensor(env, info[2], "allgather")};
  if (static_cast<int>(outs[0].size()) != g->size) {
    throw Napi::Error::New(env, "allgather: need one output tensor per rank");
  }
  return NewWork(env, g->pg->allgather(outs, in), "allgather");
  MFR_GUARD_END(env, "allgather")
}

// broadcast(group, tensors, root): Work
Napi::Value Broadcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  GroupWrap* g = Group(env, info[0]);
  auto ts = GetTensors(env, info[1], "broadcast");
  c10d::BroadcastOptions o;
  o.rootRank = info[2].As<Napi::Number>().Int64Value();
  return NewWork(env, g->pg->broadcast(ts, o), "broadcast");
  MFR_GUARD_END(env, "broadcast")
}

// reduceScatter(group, output, inputs: Tensor[] (one per rank), op): Work. Gloo lacks it; the
// TypeScript side falls back to all-reduce there.
Napi::Value ReduceScatter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  GroupWrap* g = Group(env, info[0]);
  std::vector<at::Tensor> out{GetTensor(env, info[1], "reduceScatter")};
  std::vector<std::vector<at::Tensor>> ins{GetTensors(env, info[2], "reduceScatter")};
  c10d::ReduceScatterOptions o;
  o.reduceOp = ReduceOpOf(env, info[3]);
  return NewWork(env, g->pg->reduce_scatter(out, ins, o), "reduceScatter");
  MFR_GUARD_END(env, "reduceScatter")
}

Napi::Value Barrier(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  GroupWrap* g = Group(env, info[0]);
  return NewWork(env, g->pg->barrier(c10d::BarrierOptions()), "barrier");
  MFR_GUARD_END(env, "barrier")
}

// workWait(work, timeoutMs?): blocks this thread until done; throws the collective's error.
Napi::Value WorkWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  WorkWrap* w = UnwrapAs<WorkWrap>(env, info[0], "work");
  MFR_GUARD_BEGIN
  if (info[1].IsNumber()) {
    w->work->wait(Ms(info[1].As<Napi::Number>().Int64Value()));
  } else {
    w->work->wait();
  }
  return env.Undefined();
  MFR_GUARD_END(env, w->what)
}

Napi::Value WorkDone(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  WorkWrap* w = UnwrapAs<WorkWrap>(env, info[0], "work");
  MFR_GUARD_BEGIN
  return Napi::Boolean::New(env, w->work->isCompleted());
  MFR_GUARD_END(env, w->what)
}

// Waits on a pool thread so timers, signals and other ranks' failures stay observable.
class WaitWorker : public Napi::AsyncWorker {
 public:
  WaitWorker(Napi::Env env, c10::intrusive_ptr<c10d::Work> work, std::string what, int64_t timeoutMs)
      : Napi::AsyncWorker(env, "mfr.workWait"),
        work_(std::move(work)),
        what_(std::move(what)),
        timeoutMs_(timeoutMs),
        deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      if (timeoutMs_ >= 0) work_->wait(Ms(timeoutMs_));
      else work_->wait();
    } catch (const c10::Error& e) {
      SetError(what_ + ": " + e.what_without_backtrace());
    } catch (const std::exception& e) {
      SetError(what_ + ": " + e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  c10::intrusive_ptr<c10d::Work> work_;
  std::string what_;
  int64_t timeoutMs_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value WorkWaitAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  WorkWrap* w = UnwrapAs<WorkWrap>(env, info[0], "work");
  auto* worker = new WaitWorker(env, w->work, w->what, info[1].IsNumber() ? info[1].As<Napi::Number>().Int64Value() : -1);
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

// T, as a type that depends on a template parameter: `if constexpr` then skips the branches
// written for other libtorch versions instead of compiling them.
template <bool, typename T>
struct Dependent {
  using type = T;
};

// The group as DDP's Reducer takes it: in 2.x a ProcessGroup front over the one backend.
template <bool K = true>
c10::intrusive_ptr<c10d::ProcessGroup> ReducerGroup(GroupWrap* g) {
#if TORCH_VERSION_MAJOR >= 2
  using PG = typename Dependent<K, c10d::ProcessGroup>::type;
  c10::intrusive_ptr<PG> pg;
  const std::string name = g->nccl ? "nccl" : "gloo";
  if constexpr (std::is_constructible_v<PG, c10::intrusive_ptr<c10d::Store>, int, int>) {
    pg = c10::make_intrusive<PG>(g->store, g->rank, g->size);  // 2.6 and later
  } else {
    pg = c10::make_intrusive<PG>(g->store, g->rank, g->size, c10::make_intrusive<typename PG::Options>(name));
  }
  auto type = g->nccl ? PG::BackendType::NCCL : PG::BackendType::GLOO;
  (void)name;
  pg->setBackend(g->nccl ? c10::DeviceType::CUDA : c10::DeviceType::CPU, type, g->pg);
  pg->setDefaultBackend(type);
  return pg;
#else
  return g->pg;
#endif
}

// The Reducer's constructor gained and lost arguments across 2.x; each form is tried in turn.
template <typename... A>
constexpr bool kReducerTakes = std::is_constructible_v<c10d::Reducer, A...>;
using Params = std::vector<at::Tensor>;
using Buckets = std::vector<std::vector<size_t>>;
using Limits = std::vector<size_t>;
using PgPtr = c10::intrusive_ptr<c10d::ProcessGroup>;
using Sparse = std::vector<bool>;
using Names = std::unordered_map<size_t, std::string>;
// 1.13 to 2.6: per-bucket size limits after the bucket indices.
constexpr bool kReducerV1 = kReducerTakes<Params, Buckets, const Limits&, PgPtr, Sparse, int64_t, bool, bool, Names, int64_t>;
// Later: no limits; skip_all_reduce_unused_params and use_python_reducer at the end.
constexpr bool kReducerV2 = kReducerTakes<Params, Buckets, PgPtr, Sparse, int64_t, bool, bool, Names, int64_t, bool, bool>;
// Later still: a list of bucket caps too.
constexpr bool kReducerV3 =
    kReducerTakes<Params, Buckets, PgPtr, Sparse, int64_t, bool, bool, Names, int64_t, bool, bool, std::vector<int64_t>>;
constexpr bool kHasReducer = kReducerV1 || kReducerV2 || kReducerV3;

template <bool K = true>
std::shared_ptr<c10d::Reducer> MakeReducer(Params params, Buckets buckets, const Limits& limits, PgPtr pg, int64_t cap,
                                           int64_t first) {
  using R = typename Dependent<K, c10d::Reducer>::type;
  Sparse sparse(params.size(), false);
  if constexpr (kReducerV1) {
    return std::make_shared<R>(std::move(params), std::move(buckets), limits, std::move(pg), sparse, cap,
                                           /*find_unused_parameters=*/false, /*gradient_as_bucket_view=*/false,
                                           Names(), first);
  } else if constexpr (kReducerV2) {
    return std::make_shared<R>(std::move(params), std::move(buckets), std::move(pg), sparse, cap, false,
                                           false, Names(), first, /*skip_all_reduce_unused_params=*/false,
                                           /*use_python_reducer=*/false);
  } else if constexpr (kReducerV3) {
    return std::make_shared<R>(std::move(params), std::move(buckets), std::move(pg), sparse, cap, false,
                                           false, Names(), first, false, false, std::vector<int64_t>());
  } else {
    throw std::runtime_error("this libtorch's c10d::Reducer takes none of the known argument lists");
  }
}

// reducerCreate(group, params, bucketCapBytes, firstBucketBytes, fp16Compress)
Napi::Value ReducerCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  GroupWrap* g = Group(env, info[0]);
  auto params = GetTensors(env, info[1], "reducer");
  size_t cap = static_cast<size_t>(info[2].As<Napi::Number>().Int64Value());
  size_t first = static_cast<size_t>(info[3].As<Napi::Number>().Int64Value());
  // Buckets fill in reverse parameter order, roughly the order backward produces gradients.
  std::vector<int64_t> order(params.size());
  for (size_t i = 0; i < params.size(); ++i) order[i] = static_cast<int64_t>(params.size() - 1 - i);
  auto assignment = c10d::compute_bucket_assignment_by_size(params, {first, cap}, std::vector<bool>(params.size(), false), order);
  auto reducer = MakeReducer(params, std::get<0>(assignment), std::get<1>(assignment), ReducerGroup(g),
                             static_cast<int64_t>(cap), static_cast<int64_t>(first));
  if (info[4].ToBoolean().Value()) reducer->register_builtin_comm_hook(c10d::BuiltinCommHookType::FP16_COMPRESS);
  Napi::Object o = tlsCtors->reducer.New({});
  UnwrapAs<ReducerWrap>(env, o, "reducer")->reducer = reducer;
  Napi::Array buckets = Napi::Array::New(env, std::get<0>(assignment).size());
  for (size_t b = 0; b < std::get<0>(assignment).size(); ++b) {
    buckets.Set(static_cast<uint32_t>(b), Napi::Number::New(env, static_cast<double>(std::get<0>(assignment)[b].size())));
  }
  o.Set("bucketSizes", buckets);
  return o;
  MFR_GUARD_END(env, "reducer")
}

// reducerPrepare(reducer): the next backward all-reduces (call once per synchronised backward).
Napi::Value ReducerPrepare(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MFR_GUARD_BEGIN
  UnwrapAs<ReducerWrap>(env, info[0], "reducer")->reducer->prepare_for_backward({});
  return env.Undefined();
  MFR_GUARD_END(env, "reducer.prepare")
}

Napi::Value ReducerDestroy(const Napi::CallbackInfo& info) {
  UnwrapAs<ReducerWrap>(info.Env(), info[0], "reducer")->reducer.reset();
  return info.Env().Undefined();
}

}  // namespace

void InitDist(Napi::Env env, Napi::Object exports) {
  tlsCtors = new DistCtors();
  tlsCtors->store = Napi::Persistent(StoreWrap::DefineClass(env, "NativeStore", {}));
  tlsCtors->group = Napi::Persistent(GroupWrap::DefineClass(env, "NativeGroup", {}));
  tlsCtors->work = Napi::Persistent(WorkWrap::DefineClass(env, "NativeWork", {}));
  tlsCtors->reducer = Napi::Persistent(ReducerWrap::DefineClass(env, "NativeReducer", {}));
  const std::pair<const char*, Napi::Value (*)(const Napi::CallbackInfo&)> fns[] = {
      {"storeCreate", StoreCreate}, {"storeSet", StoreSet},     {"storeGet", StoreGet},
      {"storeAdd", StoreAdd},       {"groupGloo", GroupGloo},   {"groupDestroy", GroupDestroy},
      {"allreduce", AllReduce},     {"allgather", AllGather},   {"broadcast", Broadcast},
      {"reduceScatter", ReduceScatter}, {"barrier", Barrier}, {"workWait", WorkWait},
      {"workDone", WorkDone},       {"workWaitAsync", WorkWaitAsync},
#ifdef MFR_CUDA
      {"groupNccl", GroupNccl},
#endif
  };
  for (const auto& [name, fn] : fns) exports.Set(name, Napi::Function::New(env, fn, name));
  // A libtorch whose Reducer takes none of the known forms leaves these out; src/distributed then
  // all-reduces after backward instead.
  if constexpr (kHasReducer) {
    exports.Set("reducerCreate", Napi::Function::New(env, ReducerCreate, "reducerCreate"));
    exports.Set("reducerPrepare", Napi::Function::New(env, ReducerPrepare, "reducerPrepare"));
    exports.Set("reducerDestroy", Napi::Function::New(env, ReducerDestroy, "reducerDestroy"));
  }
}

}  // namespace mfr
