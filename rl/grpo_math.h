// The GRPO objective as pure tensor functions: group-relative advantages, the clipped surrogate, the k3 KL
// estimator and the loss aggregation. No model, no optimizer: the trainer composes these.
//
// Shapes: P prompts, G samples per prompt, B = P·G sequences, T completion tokens (right-padded; mask marks real
// tokens).
#pragma once

#include <torch/torch.h>

namespace grpo::rl {

// A_i = (r_i − mean_g r) / (std_g r + eps) within each group, std unbiased (N − 1) as TRL and verl compute it
// (DeepSeekMath eq. 3). rewards [P, G]; scorable [P, G] bool marks samples a grader could score: the others are left
// out of the group's mean and std and get advantage 0. A group with fewer than two scorable samples, or with equal
// rewards, gets advantage 0 (nothing to prefer).
torch::Tensor group_advantages(const torch::Tensor& rewards, const torch::Tensor& scorable, double eps);

// k3 estimator of KL(π_θ ‖ π_ref) per token (Schulman 2020; DeepSeekMath eq. 4):
// π_ref/π_θ − log(π_ref/π_θ) − 1, from log-probs [B, T]; ≥ 0, unbiased, low variance.
torch::Tensor kl_k3(const torch::Tensor& logprobs, const torch::Tensor& ref_logprobs);

struct SurrogateTerms {
  torch::Tensor loss;     // [B, T]: −min(ρ·A, clip(ρ, 1 − ε_low, 1 + ε_high)·A)
  torch::Tensor ratio;    // [B, T]: ρ = exp(logp − old_logp)
  torch::Tensor clipped;  // [B, T] bool: the clipped branch was the minimum (its gradient is zero)
};

// PPO-style clipped surrogate per token; advantages [B] broadcast over the tokens of each sequence.
SurrogateTerms clipped_surrogate(const torch::Tensor& logprobs, const torch::Tensor& old_logprobs, const torch::Tensor& advantages,
                                 double clip_eps_low, double clip_eps_high);

enum class LossAggregation {
  kSeqMeanTokenMean,  // (1/B) Σ_i (1/|o_i|) Σ_t l_it: GRPO paper; TRL "grpo", verl "seq-mean-token-mean"
  kTokenMean,         // Σ_i Σ_t l_it / Σ_i |o_i|: DAPO; TRL "dapo", verl "token-mean"
};

// token_loss [B, T], mask [B, T] (1 for real completion tokens) → scalar. Sequences with no tokens contribute 0.
torch::Tensor aggregate_loss(const torch::Tensor& token_loss, const torch::Tensor& mask, LossAggregation aggregation);

struct GrpoLossParams {
  double clip_eps_low = 0.2;
  double clip_eps_high = 0.2;
  double kl_beta = 0.04;
  LossAggregation aggregation = LossAggregation::kSeqMeanTokenMean;
};

struct GrpoLoss {
  torch::Tensor loss;           // scalar, differentiable
  double kl_mean = 0.0;         // token mean of k3 over the batch (0 when β = 0 and no reference is given)
  double clip_fraction = 0.0;   // share of tokens where the clipped branch was taken
  double ratio_mean = 0.0;
};

// Per-token l = −min(ρA, clip(ρ)A) + β·KL_k3, aggregated. ref_logprobs may be undefined when β = 0.
GrpoLoss grpo_loss(const torch::Tensor& logprobs, const torch::Tensor& old_logprobs, const torch::Tensor& ref_logprobs,
                   const torch::Tensor& advantages, const torch::Tensor& mask, const GrpoLossParams& params);

}  // namespace grpo::rl
