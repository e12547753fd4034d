// Selective log-softmax: the log-probability of the chosen token at each position, without materialising the
// float32 [N, V] log-softmax. GRPO computes it for the policy, the old policy and the reference model.
#pragma once

#include <torch/types.h>

namespace grpo::kernels {

// Shapes: N rows (N = B·T positions), V vocabulary.
//   logits  [N, V]  float32, bfloat16 or float16 (upcast to float32 inside; the upcast is exact)
//   targets [N]     int64, each in [0, V)
//   result  [N]     float32, result[n] = logits[n, targets[n]] − logsumexp(logits[n, :])
//
// Runs the fused CUDA kernel when the logits are on a CUDA device, the build has the kernel (GRPO_HAVE_CUDA) and
// no gradient is needed (logits do not require grad, or grad mode is off, as for the old-policy and reference
// log-probs). Otherwise it runs the reference, so it is differentiable wherever autograd is on. The trainer itself
// goes from hidden states straight to log-probs, forward and backward, with chunked_token_logprobs.h.
// Throws c10::Error on a caller mistake: logits not 2-D or of another dtype, V = 0, targets not 1-D int64 of length
// N, tensors on different devices, or a target outside [0, V). The fused CUDA path does not synchronise to check
// target ranges: it writes NaN for a row whose target is out of range and never reads outside the row.
torch::Tensor selective_log_softmax(const torch::Tensor& logits, const torch::Tensor& targets);

// Defines the meaning: logits.float().log_softmax(-1).gather(-1, targets). Differentiable, any device, and
// materialises the float32 [N, V] log-softmax. Checks target ranges on every device (a host sync on CUDA).
torch::Tensor selective_log_softmax_reference(const torch::Tensor& logits, const torch::Tensor& targets);

#ifdef GRPO_HAVE_CUDA
// The fused kernel: one block per row, one pass over the row with an online logsumexp. Forward only (the result
// carries no autograd history); launches on the current CUDA stream of the logits' device. Row stride may be
// arbitrary, the vocabulary dimension must have stride 1 or the logits are copied contiguous first.
// Out-of-range targets give NaN for their row (see above).
torch::Tensor selective_log_softmax_cuda(const torch::Tensor& logits, const torch::Tensor& targets);
#endif

namespace detail {
// The input contract shared by every path above, except the target range check (see each function).
void check_selective_log_softmax_inputs(const torch::Tensor& logits, const torch::Tensor& targets);
}  // namespace detail

}  // namespace grpo::kernels
