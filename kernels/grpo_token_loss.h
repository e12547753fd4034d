// The GRPO token loss in one elementwise pass: the clipped surrogate (clip-higher, dual clip), the truncated
// importance-sampling weight and the KL penalty against the reference, with the derivative with respect to the
// policy's log-prob computed in the same pass and kept for backward. The composed ATen version (the reference below)
// holds about ten [B, T] intermediates for autograd; this holds one.
//
// Shapes: B sequences, T completion tokens.
#pragma once

#include <torch/types.h>

namespace grpo::kernels {

enum class KlKind { kK1, kK2, kK3 };  // log ρ; ½ (log ρ)²; ρ⁻¹ − log ρ⁻¹ − 1 with ρ = π_θ / π_ref

struct TokenLossParams {
  double clip_eps_low = 0.2;
  double clip_eps_high = 0.2;
  double dual_clip = 0.0;  // 0: off; else > 1, caps the loss of negative-advantage tokens at −A · dual_clip
  double kl_beta = 0.0;    // weight of the KL term (needs ref_logprobs when not 0)
  KlKind kl = KlKind::kK3;
};

struct TokenLoss {
  torch::Tensor loss;   // [B, T] differentiable with respect to logprobs only
  torch::Tensor ratio;  // [B, T] π_θ / π_old, detached
  torch::Tensor kl;     // [B, T] the KL estimate, detached; undefined without ref_logprobs
};

// logprobs, old_logprobs [B, T] of one floating dtype and device; advantages [B]; ref_logprobs [B, T] or undefined;
// tis_weight [B, T] (detached importance weights) or undefined. Per token:
//   ρ = exp(logp − old), s = max(−A ρ, −A clip(ρ, 1 − ε_low, 1 + ε_high)), for A < 0 with dual clip s = min(s, −A c),
//   loss = w · s + β · KL(logp, ref).
// Runs the CUDA kernel for CUDA tensors (when built with it), a CPU loop otherwise; the same per-token function
// (grpo_token_loss_element.h) in both. Ties follow PyTorch's max/min (the gradient is split), so that the result
// and its gradient equal the reference's.
TokenLoss grpo_token_loss(const torch::Tensor& logprobs, const torch::Tensor& old_logprobs, const torch::Tensor& ref_logprobs,
                          const torch::Tensor& advantages, const torch::Tensor& tis_weight, const TokenLossParams& params);

// The definition, as ATen operators (the formulas as TRL and verl write them).
TokenLoss grpo_token_loss_reference(const torch::Tensor& logprobs, const torch::Tensor& old_logprobs, const torch::Tensor& ref_logprobs,
                                    const torch::Tensor& advantages, const torch::Tensor& tis_weight, const TokenLossParams& params);

namespace detail {
struct TokenLossOutputs {
  torch::Tensor loss, dloss, ratio, kl;
};
// Fills loss, d loss / d logp, ratio and kl (when ref is defined) for contiguous inputs.
void grpo_token_loss_cpu(const torch::Tensor& logp, const torch::Tensor& old, const torch::Tensor& ref, const torch::Tensor& adv,
                         const torch::Tensor& weight, const TokenLossParams& params, TokenLossOutputs& out);
#ifdef GRPO_HAVE_CUDA
void grpo_token_loss_cuda(const torch::Tensor& logp, const torch::Tensor& old, const torch::Tensor& ref, const torch::Tensor& adv,
                          const torch::Tensor& weight, const TokenLossParams& params, TokenLossOutputs& out);
#endif
}  // namespace detail

}  // namespace grpo::kernels
