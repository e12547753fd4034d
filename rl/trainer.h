// The GRPO trainer: each step is a short list of named, timed phases
//   rollout → score → reference log-probs → advantages → update
// over P prompts × G samples, with evaluation before the first and after the last update, metrics.jsonl, a progress
// bar, periodic checkpoints and a checkpoint of the last finished step on Ctrl-C. The trainer owns no math: the
// objective lives in grpo_math.h, log-probs in policy_ops.h, sampling in rollout/, rewards in reward/.
#pragma once

#include "rl/config/config_loader.h"

namespace grpo::rl {

// Runs `grpo train` for a loaded config. Returns the process exit status (0, or kInterruptedExitCode after Ctrl-C
// or SIGTERM, which save a checkpoint of the last finished step); throws config::ConfigError for settings that
// cannot be used (exit 2) and std::exception for other failures (exit 1). With `resume`, continues the run from the
// newest complete checkpoint in its folder (rl/trainer_state.h): on the CPU every later step's metrics are those of
// the run that was never interrupted (timings aside).
int run_training(const config::LoadedConfig& loaded, bool resume = false);

}  // namespace grpo::rl
