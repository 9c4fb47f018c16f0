// PyTorch's own file format: state dicts written by torch.save (zip archive + pickle),
// read through libtorch's unpickler so arcface_torch checkpoints load without Python.
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/import_read.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <fstream>

#include "addon.h"

namespace mfr {

namespace {

// loadPth(path): the unpickled object, tensors mapped to the CPU wherever they were saved
// (checkpoints trained on GPUs carry cuda storage locations).
Napi::Value LoadPth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "loadPth: path must be a string");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  MFR_GUARD_BEGIN
  std::ifstream probe(path, std::ios::binary);
  if (!probe) throw Napi::Error::New(env, "loadPth: cannot open " + path);
  char magic[2] = {0, 0};
  probe.read(magic, 2);
  if (magic[0] != 'P' || magic[1] != 'K') {
    throw Napi::Error::New(env, "loadPth: " + path +
                                    " is not a zip-format torch.save file (legacy format; re-save it "
                                    "with a PyTorch >= 1.6 torch.save)");
  }
  probe.close();
  caffe2::serialize::PyTorchStreamReader reader(path);
  c10::IValue value = torch::jit::readArchiveAndTensors("data", "", "", c10::nullopt, c10::nullopt,
                                                        c10::Device(c10::kCPU), reader);
  return IValueToJs(env, value);
  MFR_GUARD_END(env, "loadPth " + path)
}

// savePth(path, names, tensors): a dict of tensors in torch.save's zip format, so a state
// dict saved here loads with torch.load.
Napi::Value SavePth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsArray() || !info[2].IsArray()) {
    throw Napi::TypeError::New(env, "savePth(path, names, tensors)");
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  MFR_GUARD_BEGIN
  Napi::Array names = info[1].As<Napi::Array>();
  Napi::Array tensors = info[2].As<Napi::Array>();
  if (names.Length() != tensors.Length()) throw Napi::Error::New(env, "savePth: names and tensors differ in length");
  c10::Dict<std::string, at::Tensor> dict;
  for (uint32_t i = 0; i < names.Length(); ++i) {
    dict.insert(names.Get(i).As<Napi::String>().Utf8Value(),
                TensorWrap::From(env, tensors.Get(i), "savePth").detach());
  }
  std::vector<char> bytes = torch::jit::pickle_save(c10::IValue(dict));
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Napi::Error::New(env, "savePth: cannot write " + path);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw Napi::Error::New(env, "savePth: failed writing " + path);
  return env.Undefined();
  MFR_GUARD_END(env, "savePth " + path)
}

}  // namespace

void InitSerialize(Napi::Env env, Napi::Object exports) {
  exports.Set("loadPth", Napi::Function::New(env, LoadPth, "loadPth"));
  exports.Set("savePth", Napi::Function::New(env, SavePth, "savePth"));
}

}  // namespace mfr
