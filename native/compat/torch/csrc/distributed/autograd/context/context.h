// Debian's libtorch-dev 1.13 ships c10d/reducer.hpp but not this header, which it includes for
// two names only: DistAutogradContext::GradCallback (checked by a static_assert) and ContextPtr
// (held as a shared_ptr and an atomic pointer, so the class's contents never matter to the
// Reducer's layout). torch-config.cjs adds this folder only when the real header is missing.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>

namespace torch {
namespace distributed {
namespace autograd {

class DistAutogradContext {
 public:
  using GradCallback = std::function<bool(at::Tensor&)>;
};

using ContextPtr = std::shared_ptr<DistAutogradContext>;

}  // namespace autograd
}  // namespace distributed
}  // namespace torch
