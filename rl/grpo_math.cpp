// GRPO math (see grpo_math.h for the formulas and their sources).
#include "rl/grpo_math.h"

namespace grpo::rl {

torch::Tensor group_advantages(const torch::Tensor& rewards, const torch::Tensor& scorable, double eps) {
  TORCH_CHECK(rewards.dim() == 2, "rewards must be [P, G], got ", rewards.sizes());
  TORCH_CHECK(scorable.sizes() == rewards.sizes(), "scorable must match rewards ", rewards.sizes(), ", got ", scorable.sizes());
  const auto r = rewards.to(torch::kFloat64);
  const auto m = scorable.to(torch::kFloat64);
  const auto count = m.sum(1, /*keepdim=*/true);
  const auto mean = (r * m).sum(1, true) / count.clamp_min(1.0);
  const auto centered = (r - mean) * m;
  const auto var = centered.pow(2).sum(1, true) / (count - 1.0).clamp_min(1.0);
  auto advantages = centered / (var.sqrt() + eps);
  advantages = advantages.masked_fill(count < 2.0, 0.0);
  return advantages.to(rewards.scalar_type());
}

torch::Tensor kl_k3(const torch::Tensor& logprobs, const torch::Tensor& ref_logprobs) {
  const auto log_ratio = ref_logprobs - logprobs;  // log(π_ref / π_θ)
  return log_ratio.exp() - log_ratio - 1.0;
}

SurrogateTerms clipped_surrogate(const torch::Tensor& logprobs, const torch::Tensor& old_logprobs, const torch::Tensor& advantages,
                                 double clip_eps_low, double clip_eps_high) {
  TORCH_CHECK(logprobs.sizes() == old_logprobs.sizes(), "logprobs ", logprobs.sizes(), " and old_logprobs ", old_logprobs.sizes(), " differ");
  TORCH_CHECK(advantages.dim() == 1 && advantages.size(0) == logprobs.size(0), "advantages must be [B]");
  const auto ratio = (logprobs - old_logprobs).exp();
  const auto adv = advantages.unsqueeze(1).to(logprobs.scalar_type());
  const auto unclipped = ratio * adv;
  const auto clipped = ratio.clamp(1.0 - clip_eps_low, 1.0 + clip_eps_high) * adv;
  return {-torch::min(unclipped, clipped), ratio, clipped < unclipped};
}

torch::Tensor aggregate_loss(const torch::Tensor& token_loss, const torch::Tensor& mask, LossAggregation aggregation) {
  const auto m = mask.to(token_loss.scalar_type());
  const auto masked = token_loss * m;
  switch (aggregation) {
    case LossAggregation::kSeqMeanTokenMean:
      return (masked.sum(1) / m.sum(1).clamp_min(1.0)).mean();
    case LossAggregation::kTokenMean:
      return masked.sum() / m.sum().clamp_min(1.0);
  }
  TORCH_CHECK(false, "unknown loss aggregation");
}

GrpoLoss grpo_loss(const torch::Tensor& logprobs, const torch::Tensor& old_logprobs, const torch::Tensor& ref_logprobs,
                   const torch::Tensor& advantages, const torch::Tensor& mask, const GrpoLossParams& params) {
  auto terms = clipped_surrogate(logprobs, old_logprobs, advantages, params.clip_eps_low, params.clip_eps_high);
  auto token_loss = terms.loss;
  const auto m = mask.to(logprobs.scalar_type());
  const auto tokens = m.sum().clamp_min(1.0);
  GrpoLoss out;
  if (params.kl_beta != 0.0) {
    TORCH_CHECK(ref_logprobs.defined(), "kl_beta != 0 needs reference log-probs");
    const auto kl = kl_k3(logprobs, ref_logprobs);
    token_loss = token_loss + params.kl_beta * kl;
    out.kl_mean = ((kl.detach() * m).sum() / tokens).item<double>();
  } else if (ref_logprobs.defined()) {
    out.kl_mean = ((kl_k3(logprobs, ref_logprobs).detach() * m).sum() / tokens).item<double>();
  }
  out.loss = aggregate_loss(token_loss, mask, params.aggregation);
  out.clip_fraction = ((terms.clipped.to(m.scalar_type()) * m).sum() / tokens).item<double>();
  out.ratio_mean = ((terms.ratio.detach() * m).sum() / tokens).item<double>();
  return out;
}

}  // namespace grpo::rl
