// Mixed precision as torch.autocast does it: inside an AutocastGuard, matmuls and linear layers on the device run in
// bfloat16 (or float16) while weights, gradients and the optimizer stay in float32. Ops that recompute in backward
// (checkpointed layers, chunked log-probs) capture the state of their forward and restore it, so that the
// recomputation rounds as the forward did.
#pragma once

#include <ATen/autocast_mode.h>
#include <c10/core/Device.h>

namespace grpo::kernels {

struct AutocastState {
  c10::DeviceType device = c10::DeviceType::CPU;
  bool enabled = false;
  c10::ScalarType dtype = c10::ScalarType::BFloat16;

  static AutocastState capture(c10::DeviceType device) {
    return {device, at::autocast::is_autocast_enabled(device), at::autocast::get_autocast_dtype(device)};
  }
};

// Sets `state` for its scope, restores the previous one after (clearing the cast cache, as torch.autocast does).
class AutocastGuard {
 public:
  explicit AutocastGuard(const AutocastState& state) : previous_(AutocastState::capture(state.device)) { apply(state); }
  AutocastGuard(c10::DeviceType device, bool enabled, c10::ScalarType dtype = c10::ScalarType::BFloat16) : AutocastGuard(AutocastState{device, enabled, dtype}) {}
  ~AutocastGuard() {
    apply(previous_);
    if (!previous_.enabled) at::autocast::clear_cache();
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  static void apply(const AutocastState& state) {
    at::autocast::set_autocast_enabled(state.device, state.enabled);
    at::autocast::set_autocast_dtype(state.device, state.dtype);
  }
  AutocastState previous_;
};

}  // namespace grpo::kernels
