// The reward terms of a run config, as graders: each `reward.graders` entry comes from the registry (with the code
// grader's settings), a shared-library plug-in or a remote server. The one place that maps config to graders, used by
// training and by `grpo grade --config`.
#pragma once

#include <memory>

#include "reward/grader.h"
#include "rl/config/run_config.pb.h"

namespace grpo {

// Throws std::invalid_argument (unknown name, bad address) or std::runtime_error (a plug-in that does not load) with
// a message that names the grader; callers add the config location.
std::unique_ptr<reward::Grader> make_configured_grader(const config::GraderWeight& entry);

}  // namespace grpo
