// GRPO math (see grpo_math.h for the formulas and their sources).
#include "rl/grpo_math.h"

#include <algorithm>

#include "kernels/grpo_token_loss.h"

namespace grpo::rl {
namespace {

double token_mean(const torch::Tensor& values, const torch::Tensor& mask, const torch::Tensor& tokens) {
  return ((values.detach() * mask).sum() / tokens).item<double>();
}

}  // namespace

torch::Tensor compute_advantages(const torch::Tensor& rewards, const torch::Tensor& scorable, AdvantageNorm norm, double eps) {
  TORCH_CHECK(rewards.dim() == 2, "rewards must be [P, G], got ", rewards.sizes());
  TORCH_CHECK(scorable.sizes() == rewards.sizes(), "scorable must match rewards ", rewards.sizes(), ", got ", scorable.sizes());
  const auto r = rewards.to(torch::kFloat64);
  const auto m = scorable.to(torch::kFloat64);
  const auto count = m.sum(1, /*keepdim=*/true);
  const auto mean = (r * m).sum(1, true) / count.clamp_min(1.0);
  const auto centered = (r - mean) * m;
  torch::Tensor advantages;
  switch (norm) {
    case AdvantageNorm::kGroup: {
      const auto var = centered.pow(2).sum(1, true) / (count - 1.0).clamp_min(1.0);
      advantages = centered / (var.sqrt() + eps);
      break;
    }
    case AdvantageNorm::kBatch: {
      // The std of every scorable reward in the batch around the batch mean (torch.std of the flattened rewards).
      const auto n = m.sum();
      const auto batch_mean = (r * m).sum() / n.clamp_min(1.0);
      const auto var = ((r - batch_mean) * m).pow(2).sum() / (n - 1.0).clamp_min(1.0);
      advantages = centered / (var.sqrt() + eps);
      break;
    }
    case AdvantageNorm::kNone:
      advantages = centered;
      break;
  }
  advantages = advantages.masked_fill(count < 2.0, 0.0);
  return advantages.to(rewards.scalar_type());
}

torch::Tensor group_advantages(const torch::Tensor& rewards, const torch::Tensor& scorable, double eps) {
  return compute_advantages(rewards, scorable, AdvantageNorm::kGroup, eps);
}

torch::Tensor kl_estimate(const torch::Tensor& logprobs, const torch::Tensor& ref_logprobs, KlEstimator estimator) {
  switch (estimator) {
    case KlEstimator::kK1:
      return logprobs - ref_logprobs;
    case KlEstimator::kK2:
      return 0.5 * (logprobs - ref_logprobs).pow(2);
    case KlEstimator::kK3: {
      const auto log_ratio = ref_logprobs - logprobs;  // log(π_ref / π_θ)
      return log_ratio.exp() - log_ratio - 1.0;
    }
  }
  TORCH_CHECK(false, "unknown KL estimator");
}

torch::Tensor kl_k3(const torch::Tensor& logprobs, const torch::Tensor& ref_logprobs) { return kl_estimate(logprobs, ref_logprobs, KlEstimator::kK3); }

torch::Tensor sequence_kl(const torch::Tensor& old_logprobs, const torch::Tensor& ref_logprobs, const torch::Tensor& mask, KlEstimator estimator) {
  return (kl_estimate(old_logprobs, ref_logprobs, estimator) * mask.to(old_logprobs.scalar_type())).sum(-1);
}

torch::Tensor aggregate_loss(const torch::Tensor& token_loss, const torch::Tensor& mask, LossAggregation aggregation, double token_budget,
                             double global_tokens, double global_sequences) {
  const auto m = mask.to(token_loss.scalar_type());
  const auto masked = token_loss * m;
  const auto sequences = global_sequences > 0.0 ? global_sequences : static_cast<double>(std::max<std::int64_t>(token_loss.size(0), 1));
  switch (aggregation) {
    case LossAggregation::kSeqMeanTokenMean:
      return (masked.sum(1) / m.sum(1).clamp_min(1.0)).sum() / sequences;
    case LossAggregation::kTokenMean:
      if (global_tokens > 0.0) return masked.sum() / global_tokens;
      return masked.sum() / m.sum().clamp_min(1.0);
    case LossAggregation::kTokenMeanLocal:
      return masked.sum() / m.sum().clamp_min(1.0);
    case LossAggregation::kSeqMeanTokenSumNorm:
      TORCH_CHECK(token_budget > 0.0, "seq_mean_token_sum_norm needs the token budget (L_budget)");
      return masked.sum() / (sequences * token_budget);
    case LossAggregation::kSeqMeanTokenSum:
      return masked.sum() / sequences;
  }
  TORCH_CHECK(false, "unknown loss aggregation");
}

namespace {
kernels::KlKind kernel_kl_kind(KlEstimator estimator) {
  switch (estimator) {
    case KlEstimator::kK1: return kernels::KlKind::kK1;
    case KlEstimator::kK2: return kernels::KlKind::kK2;
    case KlEstimator::kK3: return kernels::KlKind::kK3;
  }
  TORCH_CHECK(false, "unknown KL estimator");
}
}  // namespace

PolicyLoss policy_loss(const PolicyLossInputs& in, const PolicyLossParams& params) {
  const auto& logp = in.logprobs;
  TORCH_CHECK(logp.dim() == 2 && logp.sizes() == in.old_logprobs.sizes() && logp.sizes() == in.mask.sizes(),
              "policy_loss: logprobs ", logp.sizes(), ", old_logprobs ", in.old_logprobs.sizes(), " and mask ", in.mask.sizes(), " must be [B, T]");
  TORCH_CHECK(in.advantages.dim() == 1 && in.advantages.size(0) == logp.size(0), "policy_loss: advantages must be [B]");
  const auto m = in.mask.to(logp.scalar_type());
  const auto tokens = m.sum().clamp_min(1.0);
  const auto adv = in.advantages.to(logp.scalar_type()).unsqueeze(1);  // [B, 1]

  TORCH_CHECK(params.dual_clip == 0.0 || params.dual_clip > 1.0, "dual_clip must exceed 1 (verl uses 3), got ", params.dual_clip);
  TORCH_CHECK(params.kl_beta == 0.0 || in.ref_logprobs.defined(), "kl_beta != 0 needs reference log-probs");
  PolicyLoss out;
  torch::Tensor tis_weight;  // truncated importance weight per token, detached
  if (params.tis_cap > 0.0) {
    TORCH_CHECK(in.rollout_logprobs.defined(), "tis_cap > 0 needs the rollout engine's log-probs");
    const auto raw = (in.old_logprobs - in.rollout_logprobs).exp().detach();
    tis_weight = raw.clamp_max(params.tis_cap);
    out.tis_capped_fraction = token_mean((raw > params.tis_cap).to(m.scalar_type()), m, tokens);
  }
  torch::Tensor token_loss, ratio, kl;
  if (params.ratio_level == RatioLevel::kToken) {
    // Token-level ratios: the fused kernel (one pass, one saved [B, T] tensor; kernels/grpo_token_loss.h).
    const kernels::TokenLossParams fused{params.clip_eps_low, params.clip_eps_high, params.dual_clip,
                                         in.ref_logprobs.defined() ? params.kl_beta : 0.0, kernel_kl_kind(params.kl_estimator)};
    auto result = kernels::grpo_token_loss(logp, in.old_logprobs, in.ref_logprobs, in.advantages, tis_weight, fused);
    token_loss = result.loss;
    ratio = result.ratio;
    kl = result.kl;
  } else {
    // GSPO: one ratio per sequence, exp of the mean token log-ratio (composed: it couples a sequence's tokens).
    const auto log_ratio = ((logp - in.old_logprobs) * m).sum(-1, /*keepdim=*/true) / m.sum(-1, /*keepdim=*/true).clamp_min(1.0);  // [B, 1]
    const auto seq_ratio = log_ratio.exp();
    auto surrogate = torch::max(-adv * seq_ratio, -adv * seq_ratio.clamp(1.0 - params.clip_eps_low, 1.0 + params.clip_eps_high));
    if (params.dual_clip > 0.0) surrogate = torch::where(adv < 0, torch::min(-adv * params.dual_clip, surrogate), surrogate);
    if (tis_weight.defined()) surrogate = surrogate * tis_weight;
    token_loss = surrogate.expand_as(logp);
    if (in.ref_logprobs.defined()) {
      const auto kl_tokens = kl_estimate(logp, in.ref_logprobs, params.kl_estimator);
      if (params.kl_beta != 0.0) token_loss = token_loss + params.kl_beta * kl_tokens;
      kl = kl_tokens.detach();
    }
    ratio = seq_ratio.detach().expand_as(logp);
  }
  out.loss = aggregate_loss(token_loss, m, params.aggregation, params.token_budget, params.global_tokens, params.global_sequences);

  torch::NoGradGuard no_grad;
  if (kl.defined()) out.kl_mean = token_mean(kl, m, tokens);
  const auto adv_tokens = adv.expand_as(logp);
  out.clip_low_fraction = token_mean(((ratio < 1.0 - params.clip_eps_low) & (adv_tokens < 0)).to(m.scalar_type()), m, tokens);
  out.clip_high_fraction = token_mean(((ratio > 1.0 + params.clip_eps_high) & (adv_tokens > 0)).to(m.scalar_type()), m, tokens);
  if (params.dual_clip > 0.0) {
    // The tokens whose loss the dual clip capped: A < 0 and max(−A ρ, −A clip(ρ)) above −A · c.
    const auto surrogate = torch::max(-adv_tokens * ratio, -adv_tokens * ratio.clamp(1.0 - params.clip_eps_low, 1.0 + params.clip_eps_high));
    out.dual_clip_fraction = token_mean(((adv_tokens < 0) & (surrogate > -adv_tokens * params.dual_clip)).to(m.scalar_type()), m, tokens);
  }
  out.ratio_mean = token_mean(ratio, m, tokens);
  return out;
}

double overlong_penalty(std::int64_t length, std::int64_t max_length, std::int64_t cache) {
  const auto expected = max_length - cache;
  if (length <= expected) return 0.0;
  if (length <= max_length) return static_cast<double>(expected - length) / static_cast<double>(std::max<std::int64_t>(cache, 1));
  return -1.0;
}

std::vector<bool> groups_with_signal(const torch::Tensor& rewards, const torch::Tensor& scorable) {
  TORCH_CHECK(rewards.dim() == 2 && scorable.sizes() == rewards.sizes(), "groups_with_signal: rewards and scorable must be [P, G]");
  const auto r = rewards.to(torch::kFloat64).contiguous();
  const auto s = scorable.to(torch::kBool).contiguous();
  std::vector<bool> keep(static_cast<std::size_t>(r.size(0)), false);
  const auto ra = r.accessor<double, 2>();
  const auto sa = s.accessor<bool, 2>();
  for (std::int64_t p = 0; p < r.size(0); ++p) {
    std::optional<double> first;
    for (std::int64_t g = 0; g < r.size(1); ++g) {
      if (!sa[p][g]) continue;
      if (!first) {
        first = ra[p][g];
      } else if (ra[p][g] != *first) {
        keep[static_cast<std::size_t>(p)] = true;
        break;
      }
    }
  }
  return keep;
}

std::optional<AdvantageNorm> parse_advantage_norm(std::string_view name) {
  if (name == "group") return AdvantageNorm::kGroup;
  if (name == "batch") return AdvantageNorm::kBatch;
  if (name == "none") return AdvantageNorm::kNone;
  return std::nullopt;
}

std::optional<KlEstimator> parse_kl_estimator(std::string_view name) {
  if (name == "k1") return KlEstimator::kK1;
  if (name == "k2") return KlEstimator::kK2;
  if (name == "k3") return KlEstimator::kK3;
  return std::nullopt;
}

std::optional<LossAggregation> parse_loss_aggregation(std::string_view name) {
  if (name == "seq_mean_token_mean") return LossAggregation::kSeqMeanTokenMean;
  if (name == "token_mean") return LossAggregation::kTokenMean;
  if (name == "token_mean_local") return LossAggregation::kTokenMeanLocal;
  if (name == "seq_mean_token_sum_norm") return LossAggregation::kSeqMeanTokenSumNorm;
  if (name == "seq_mean_token_sum") return LossAggregation::kSeqMeanTokenSum;
  return std::nullopt;
}

std::optional<RatioLevel> parse_ratio_level(std::string_view name) {
  if (name == "token") return RatioLevel::kToken;
  if (name == "sequence") return RatioLevel::kSequence;
  return std::nullopt;
}

}  // namespace grpo::rl
