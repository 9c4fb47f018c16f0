{
  "targets": [
    {
      "target_name": "mfr_native",
      "sources": [
        "src/addon.cc",
        "src/tensor.cc",
        "src/ops.cc",
        "src/autograd.cc",
        "src/serialize.cc",
        "src/dist.cc",
        "src/device.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node torch-config.cjs include)"
      ],
      # NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS: an error raised while the environment shuts down
      # (process exit, worker termination) is dropped instead of escaping as std::terminate.
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS",
        "<!@(node torch-config.cjs defines)"
      ],
      "cflags!": ["-fno-rtti", "-fno-exceptions"],
      "cflags_cc!": ["-fno-rtti", "-fno-exceptions"],
      "cflags_cc": ["<!(node torch-config.cjs std)", "-frtti", "-fexceptions", "-O2", "-Wno-unused-parameter", "-Wno-deprecated-declarations"],
      "ldflags": ["<!@(node torch-config.cjs ldflags)"]
    }
  ]
}
