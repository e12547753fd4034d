// Config → GRPO math (see objective_config.h).
#include "rl/objective_config.h"

namespace grpo::rl {
namespace {

LossAggregation aggregation(config::LossAggregation value) {
  switch (value) {
    case config::SEQ_MEAN_TOKEN_MEAN: return LossAggregation::kSeqMeanTokenMean;
    case config::TOKEN_MEAN: return LossAggregation::kTokenMean;
    case config::TOKEN_MEAN_LOCAL: return LossAggregation::kTokenMeanLocal;
    case config::SEQ_MEAN_TOKEN_SUM_NORM: return LossAggregation::kSeqMeanTokenSumNorm;
    case config::SEQ_MEAN_TOKEN_SUM: return LossAggregation::kSeqMeanTokenSum;
  }
  return LossAggregation::kSeqMeanTokenMean;
}

}  // namespace

AdvantageNorm advantage_norm(config::AdvantageNorm norm) {
  switch (norm) {
    case config::GROUP_STD: return AdvantageNorm::kGroup;
    case config::BATCH_STD: return AdvantageNorm::kBatch;
    case config::NO_STD: return AdvantageNorm::kNone;
  }
  return AdvantageNorm::kGroup;
}

KlEstimator kl_estimator(config::KlEstimator estimator) {
  switch (estimator) {
    case config::K3: return KlEstimator::kK3;
    case config::K1: return KlEstimator::kK1;
    case config::K2: return KlEstimator::kK2;
  }
  return KlEstimator::kK3;
}

PolicyLossParams policy_loss_params(const config::GrpoConfig& g, int max_new_tokens) {
  PolicyLossParams params;
  params.clip_eps_low = g.clip_eps_low();
  params.clip_eps_high = g.clip_eps_high();
  params.dual_clip = g.dual_clip();
  params.ratio_level = g.ratio_level() == config::SEQUENCE_RATIO ? RatioLevel::kSequence : RatioLevel::kToken;
  params.kl_beta = g.kl_placement() == config::KL_IN_LOSS ? g.kl_beta() : 0.0;
  params.kl_estimator = kl_estimator(g.kl_estimator());
  params.aggregation = aggregation(g.loss_aggregation());
  params.token_budget = g.token_budget() > 0 ? g.token_budget() : max_new_tokens;
  params.tis_cap = g.tis_cap();
  return params;
}

bool needs_reference(const config::GrpoConfig& g) { return g.kl_beta() > 0.0; }

}  // namespace grpo::rl
