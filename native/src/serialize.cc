// PyTorch's own file format (torch.save: a zip archive of a pickle and raw storages). libtorch
// reads the archive and writes whole files; src/torch/io/pth.ts interprets the pickle.
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <cstring>
#include <fstream>

#include "addon.h"

namespace mfr {

namespace {

// zipRecords(path): the record names of a torch.save archive, without its top folder
// ("data.pkl", "data/0", ...). The pickle itself is interpreted in TypeScript by a safe
// unpickler: libtorch 1.13's own one lacks opcodes Python emits (SETITEM, BUILD on dicts).
Napi::Value ZipRecords(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "zipRecords: path must be a string");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  MFR_GUARD_BEGIN
  caffe2::serialize::PyTorchStreamReader reader(path);
  auto names = reader.getAllRecords();
  Napi::Array out = Napi::Array::New(env, names.size());
  for (size_t i = 0; i < names.size(); ++i) out.Set(static_cast<uint32_t>(i), Napi::String::New(env, names[i]));
  return out;
  MFR_GUARD_END(env, path)
}

// zipRead(path, names): the bytes of each named record, as ArrayBuffers.
Napi::Value ZipRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsArray()) throw Napi::TypeError::New(env, "zipRead(path, names)");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  MFR_GUARD_BEGIN
  caffe2::serialize::PyTorchStreamReader reader(path);
  Napi::Array names = info[1].As<Napi::Array>();
  Napi::Array out = Napi::Array::New(env, names.Length());
  for (uint32_t i = 0; i < names.Length(); ++i) {
    std::string name = names.Get(i).As<Napi::String>().Utf8Value();
    if (!reader.hasRecord(name)) throw Napi::Error::New(env, path + ": archive has no record '" + name + "'");
    auto rec = reader.getRecord(name);
    size_t n = std::get<1>(rec);
    Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, n);
    if (n > 0) std::memcpy(buf.Data(), std::get<0>(rec).get(), n);
    out.Set(i, buf);
  }
  return out;
  MFR_GUARD_END(env, path)
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
                GetTensor(env, tensors.Get(i), "savePth").detach());
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
  exports.Set("zipRecords", Napi::Function::New(env, ZipRecords, "zipRecords"));
  exports.Set("zipRead", Napi::Function::New(env, ZipRead, "zipRead"));
  exports.Set("savePth", Napi::Function::New(env, SavePth, "savePth"));
}

}  // namespace mfr
