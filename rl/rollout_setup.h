// Builds the rollout backend a run config asks for (rollout.workers, rollout.local_workers, rollout.overlap): the
// trainer's one place that knows how rollouts are configured.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "policy/checkpoint.h"
#include "rl/config/config_loader.h"
#include "rollout/rollout_backend.h"

namespace grpo::rl {

// The first line of a token file without surrounding whitespace. Throws std::runtime_error naming the file when it
// cannot be read or holds no token.
std::string read_token_file(const std::filesystem::path& path);

// In-process (inline, or threaded with overlap), remote workers, or local worker processes whose logs go to
// log_dir. Throws config::ConfigError for an unreadable token file and std::runtime_error when no worker answers.
std::unique_ptr<rollout::RolloutBackend> make_rollout_backend(const config::LoadedConfig& loaded, policy::Policy& policy,
                                                              const std::filesystem::path& log_dir);

}  // namespace grpo::rl
