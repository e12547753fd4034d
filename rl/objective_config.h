// The run config's GRPO section in the terms of rl/grpo_math.h: the one place that maps the schema's enums to the
// math's, so that adding a variant means one enum value in run_config.proto, one here and one case in grpo_math.cpp.
#pragma once

#include "rl/config/run_config.pb.h"
#include "rl/grpo_math.h"

namespace grpo::rl {

AdvantageNorm advantage_norm(config::AdvantageNorm norm);
KlEstimator kl_estimator(config::KlEstimator estimator);

// The loss parameters for one optimizer step; max_new_tokens is the default token budget (Dr. GRPO's L_budget).
PolicyLossParams policy_loss_params(const config::GrpoConfig& grpo, int max_new_tokens);

// Whether the run needs a reference model: a KL term in the loss or in the reward with β > 0.
bool needs_reference(const config::GrpoConfig& grpo);

}  // namespace grpo::rl
