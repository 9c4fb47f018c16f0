// Module entry: one AddonData per environment, so the addon also loads in worker_threads.
#include "addon.h"

static Napi::Object InitMfr(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new mfr::AddonData());
  mfr::InitTensor(env, exports);
  mfr::InitOps(env, exports);
  mfr::InitAutograd(env, exports);
  mfr::InitSerialize(env, exports);
  mfr::InitDist(env, exports);
  mfr::InitDevice(env, exports);
  return exports;
}

NODE_API_MODULE(mfr_native, InitMfr)
