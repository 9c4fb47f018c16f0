// PyTorch's own file format (torch.save: a zip archive of a pickle and raw storages). libtorch
// reads and writes the archive; src/torch/io/pth.ts reads and writes the pickle.
#include <caffe2/serialize/inline_container.h>

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

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

// writePth(fd, pickle, tensors): torch.save's zip archive onto an open file: data.pkl (the
// pickle src/torch/io/pth.ts made, naming storage i as data/i), each tensor's bytes as data/i
// straight from its CPU copy (never through JS), byteorder, and the version record the writer
// adds. libtorch's own pickle_save would tag its dict with torch.jit._pickle globals, which
// torch.load refuses by default since PyTorch 2.6 (weights_only).
Napi::Value WritePth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsTypedArray() || !info[2].IsArray()) {
    throw Napi::TypeError::New(env, "writePth(fd, pickle, tensors)");
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  Napi::Uint8Array pickle = info[1].As<Napi::Uint8Array>();
  Napi::Array tensors = info[2].As<Napi::Array>();
  MFR_GUARD_BEGIN
  // A failed write is remembered and the rest discarded, so the zip writer never sees an error:
  // it would throw again from its destructor while finishing the archive.
  int failure = 0;
  auto write = [fd, &failure](const void* data, size_t size) -> size_t {
    const char* p = static_cast<const char*>(data);
    for (size_t done = 0; failure == 0 && done < size;) {
      ssize_t n = ::write(fd, p + done, size - done);
      if (n > 0) done += static_cast<size_t>(n);
      else if (n == 0 || errno != EINTR) failure = n == 0 ? EIO : errno;
    }
    return size;
  };
  {
    caffe2::serialize::PyTorchStreamWriter writer(write);
    writer.writeRecord("data.pkl", pickle.Data(), pickle.ByteLength());
    writer.writeRecord("byteorder", "little", 6);
    for (uint32_t i = 0; i < tensors.Length() && failure == 0; ++i) {
      at::Tensor t = GetTensor(env, tensors.Get(i), "writePth").detach().to(at::kCPU).contiguous();
      writer.writeRecord("data/" + std::to_string(i), t.data_ptr(), t.nbytes());
    }
    writer.writeEndOfFile();
  }
  if (failure != 0) throw std::runtime_error(std::string("write failed: ") + std::strerror(failure));
  return env.Undefined();
  MFR_GUARD_END(env, "writePth")
}

}  // namespace

void InitSerialize(Napi::Env env, Napi::Object exports) {
  exports.Set("zipRecords", Napi::Function::New(env, ZipRecords, "zipRecords"));
  exports.Set("zipRead", Napi::Function::New(env, ZipRead, "zipRead"));
  exports.Set("writePth", Napi::Function::New(env, WritePth, "writePth"));
}

}  // namespace mfr
