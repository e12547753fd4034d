// `grpo pretrain`: the supervised warm-up that makes the embedded base checkpoint from generated worked solutions,
// deliberately imperfect (see PretrainConfig in run_config.proto), so that GRPO has something to fix.
#pragma once

#include "rl/config/config_loader.h"

namespace grpo::rl {

// Returns the process exit status; prints the base policy's held-out greedy accuracy and format rate at the end.
int run_pretraining(const config::LoadedConfig& loaded);

}  // namespace grpo::rl
