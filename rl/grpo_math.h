// The GRPO objective and its published variants as pure tensor functions: group-relative advantages (three
// normalisations), the clipped surrogate (token- or sequence-level ratio, clip-higher, dual clip, truncated importance
// sampling), three KL estimators in the loss or in the reward, and five loss aggregations. No model, no optimizer:
// the trainer composes these. Each family is one enum with one dispatch point (the switch in grpo_math.cpp) and its
// names in parse_* below; every variant is checked against golden values from scripts/make_grpo_golden.py, which
// writes the formulas as TRL and verl implement them.
//
// Shapes: P prompts, G samples per prompt, B = P·G sequences, T completion tokens (right-padded; mask marks real
// tokens).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <torch/torch.h>

namespace grpo::rl {

// ---- advantages ---------------------------------------------------------------------------------------------------

enum class AdvantageNorm {
  kGroup,  // (r − mean_g) / (std_g + ε): DeepSeekMath eq. 3; TRL scale_rewards="group", verl norm_adv_by_std_in_grpo
  kBatch,  // (r − mean_g) / (std over the batch + ε): TRL scale_rewards="batch"
  kNone,   // r − mean_g: Dr. GRPO (equals RLOO's up to G/(G−1))
};

// rewards [P, G]; scorable [P, G] bool marks samples a grader could score: the others are left out of means and
// stds and get advantage 0. std is unbiased (N − 1) as torch.std in TRL and verl. A group with fewer than two
// scorable samples gets advantage 0 (nothing to prefer); a group whose rewards are all equal gets 0 under every norm.
torch::Tensor compute_advantages(const torch::Tensor& rewards, const torch::Tensor& scorable, AdvantageNorm norm, double eps);
// compute_advantages with kGroup.
torch::Tensor group_advantages(const torch::Tensor& rewards, const torch::Tensor& scorable, double eps);

// ---- KL -----------------------------------------------------------------------------------------------------------

enum class KlEstimator {
  kK1,  // log(π_θ/π_ref): verl "kl"
  kK2,  // ½ (log π_θ/π_ref)²: verl "mse"
  kK3,  // π_ref/π_θ − log(π_ref/π_θ) − 1 (Schulman 2020; DeepSeekMath eq. 4): TRL, verl "low_var_kl"; ≥ 0
};

// Per token, from log-probs [B, T].
torch::Tensor kl_estimate(const torch::Tensor& logprobs, const torch::Tensor& ref_logprobs, KlEstimator estimator);
torch::Tensor kl_k3(const torch::Tensor& logprobs, const torch::Tensor& ref_logprobs);

// KL in the reward (verl use_kl_in_reward): Σ_t KL(π_old ‖ π_ref) over each sequence's tokens, [B]; the trainer
// subtracts β times it from the sequence's reward before advantages.
torch::Tensor sequence_kl(const torch::Tensor& old_logprobs, const torch::Tensor& ref_logprobs, const torch::Tensor& mask, KlEstimator estimator);

// ---- the surrogate and its aggregation ----------------------------------------------------------------------------

enum class RatioLevel {
  kToken,     // ρ_t = π_θ/π_old per token (PPO, GRPO)
  kSequence,  // s_i = exp(mean_t log ρ_t), one per sequence (GSPO; TRL importance_sampling_level="sequence")
};

enum class LossAggregation {
  kSeqMeanTokenMean,     // (1/B) Σ_i (1/|o_i|) Σ_t l: GRPO paper; TRL "grpo", verl "seq-mean-token-mean"
  kTokenMean,            // Σ l / (tokens of the global batch): DAPO; TRL "dapo", verl "token-mean"
  kTokenMeanLocal,       // Σ l / (tokens of this batch): TRL "bnpo"
  kSeqMeanTokenSumNorm,  // Σ l / (B · L_budget): Dr. GRPO; TRL "dr_grpo", verl "seq-mean-token-sum-norm"
  kSeqMeanTokenSum,      // (1/B) Σ_i Σ_t l: verl "seq-mean-token-sum"
};

struct PolicyLossParams {
  double clip_eps_low = 0.2;
  double clip_eps_high = 0.2;
  // verl clip_ratio_c: for negative advantages the token loss is at most −A·c (c > 1); 0 turns it off.
  double dual_clip = 0.0;
  RatioLevel ratio_level = RatioLevel::kToken;
  // β of the KL term in the loss (0: none, and no reference is needed).
  double kl_beta = 0.0;
  KlEstimator kl_estimator = KlEstimator::kK3;
  LossAggregation aggregation = LossAggregation::kSeqMeanTokenMean;
  // kSeqMeanTokenSumNorm's L_budget (the generation budget, TRL max_completion_length).
  double token_budget = 0.0;
  // kTokenMean's normaliser: the completion tokens of the whole optimizer-step batch (all micro-batches and ranks);
  // 0 uses this batch's.
  double global_tokens = 0.0;
  // The sequence-mean aggregations' B: the sequences of the whole optimizer-step batch (all ranks); 0 uses this
  // batch's. Data parallelism sets both normalisers, so that the ranks' losses add up to the one-process loss.
  double global_sequences = 0.0;
  // Truncated importance sampling for rollout/trainer mismatch: each token's surrogate times min(π_old/π_rollout, cap),
  // detached (verl's rollout importance sampling, token level); 0 turns it off.
  double tis_cap = 0.0;
};

struct PolicyLossInputs {
  torch::Tensor logprobs;          // [B, T] under π_θ, differentiable
  torch::Tensor old_logprobs;      // [B, T] under π_old (the sampling policy, or recomputed by the trainer)
  torch::Tensor ref_logprobs;      // [B, T] under π_ref; undefined when kl_beta = 0
  torch::Tensor rollout_logprobs;  // [B, T] the rollout engine's; needed when tis_cap > 0
  torch::Tensor advantages;        // [B]
  torch::Tensor mask;              // [B, T] 1 for real completion tokens
};

struct PolicyLoss {
  torch::Tensor loss;            // scalar, differentiable
  double kl_mean = 0.0;          // token mean of the estimator against the reference (0 without one)
  double clip_low_fraction = 0.0;   // tokens with A < 0 and ratio below 1 − ε_low (their gradient is zero)
  double clip_high_fraction = 0.0;  // tokens with A > 0 and ratio above 1 + ε_high
  double dual_clip_fraction = 0.0;  // tokens with A < 0 whose loss the dual clip capped
  double ratio_mean = 0.0;
  double tis_capped_fraction = 0.0;  // tokens whose importance weight hit tis_cap
};

PolicyLoss policy_loss(const PolicyLossInputs& inputs, const PolicyLossParams& params);

// token_loss [B, T], mask [B, T] → scalar. Sequences with no tokens contribute 0.
torch::Tensor aggregate_loss(const torch::Tensor& token_loss, const torch::Tensor& mask, LossAggregation aggregation,
                             double token_budget = 0.0, double global_tokens = 0.0, double global_sequences = 0.0);

// ---- reward shaping -----------------------------------------------------------------------------------------------

// DAPO's soft overlong punishment for a completion of `length` tokens with budget max_length and window cache:
// 0 up to max_length − cache, then falling linearly to −1 at max_length, −1 beyond.
double overlong_penalty(std::int64_t length, std::int64_t max_length, std::int64_t cache);

// DAPO's dynamic sampling: the groups (of rewards [P, G], scorable [P, G]) worth keeping, i.e. whose scorable rewards
// are not all equal (an all-correct or all-wrong group has zero advantage everywhere and teaches nothing).
std::vector<bool> groups_with_signal(const torch::Tensor& rewards, const torch::Tensor& scorable);

// ---- names --------------------------------------------------------------------------------------------------------
// The config's spellings (lower case, as in run_config.proto); nullopt for an unknown name.
std::optional<AdvantageNorm> parse_advantage_norm(std::string_view name);
std::optional<KlEstimator> parse_kl_estimator(std::string_view name);
std::optional<LossAggregation> parse_loss_aggregation(std::string_view name);
std::optional<RatioLevel> parse_ratio_level(std::string_view name);

}  // namespace grpo::rl
