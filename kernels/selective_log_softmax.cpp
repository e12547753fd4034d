// Selective log-softmax: input checks, the ATen reference that defines the op, and the dispatcher that picks the
// fused CUDA kernel where it applies (kernels/selective_log_softmax.cu).
#include "kernels/selective_log_softmax.h"

#include <torch/torch.h>

namespace grpo::kernels {

namespace detail {

void check_selective_log_softmax_inputs(const torch::Tensor& logits, const torch::Tensor& targets) {
  // logits [N, V], targets [N]
  TORCH_CHECK(logits.dim() == 2, "selective_log_softmax: logits must be 2-D [N, V], got shape ", logits.sizes());
  const auto dtype = logits.scalar_type();
  TORCH_CHECK(dtype == torch::kFloat32 || dtype == torch::kBFloat16 || dtype == torch::kFloat16,
              "selective_log_softmax: logits must be float32, bfloat16 or float16, got ", dtype);
  TORCH_CHECK(logits.size(1) > 0, "selective_log_softmax: the vocabulary dimension V of logits is empty");
  TORCH_CHECK(targets.dim() == 1, "selective_log_softmax: targets must be 1-D [N], got shape ", targets.sizes());
  TORCH_CHECK(targets.scalar_type() == torch::kInt64, "selective_log_softmax: targets must be int64, got ",
              targets.scalar_type());
  TORCH_CHECK(targets.size(0) == logits.size(0), "selective_log_softmax: targets has ", targets.size(0),
              " rows but logits has ", logits.size(0));
  TORCH_CHECK(targets.device() == logits.device(), "selective_log_softmax: logits are on ", logits.device(),
              " but targets are on ", targets.device());
}

}  // namespace detail

namespace {

// targets [N] against vocabulary size V; a host sync when targets are on a GPU.
void check_target_range(const torch::Tensor& targets, int64_t vocab) {
  if (targets.numel() == 0) {
    return;
  }
  const auto [lo, hi] = torch::aminmax(targets);
  const auto min_target = lo.item<int64_t>();
  const auto max_target = hi.item<int64_t>();
  TORCH_CHECK(min_target >= 0 && max_target < vocab, "selective_log_softmax: targets must lie in [0, ", vocab,
              "), got values in [", min_target, ", ", max_target, "]");
}

}  // namespace

torch::Tensor selective_log_softmax_reference(const torch::Tensor& logits, const torch::Tensor& targets) {
  // logits [N, V], targets [N] -> [N] float32
  detail::check_selective_log_softmax_inputs(logits, targets);
  check_target_range(targets, logits.size(1));
  return logits.to(torch::kFloat32).log_softmax(/*dim=*/-1).gather(/*dim=*/-1, targets.unsqueeze(-1)).squeeze(-1);
}

torch::Tensor selective_log_softmax(const torch::Tensor& logits, const torch::Tensor& targets) {
  // logits [N, V], targets [N] -> [N] float32
#ifdef GRPO_HAVE_CUDA
  const bool needs_grad = logits.requires_grad() && torch::GradMode::is_enabled();
  if (logits.is_cuda() && !needs_grad) {
    return selective_log_softmax_cuda(logits, targets);
  }
#endif
  return selective_log_softmax_reference(logits, targets);
}

}  // namespace grpo::kernels
