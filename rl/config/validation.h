// What the loader does after parsing: schema defaults filled in, and every value checked against the schema's
// (valid_min)/(valid_max) and the rules that span fields. Internal to the config loader.
#pragma once

#include <google/protobuf/message.h>

#include "rl/config/config_loader.h"

namespace grpo::config::internal {

// Sets every unset singular field to its schema default, recursively, including inside repeated messages.
void resolve_defaults(google::protobuf::Message& message);

// The R1-Zero reward (DeepSeek-R1 report): accuracy 1.0 plus format 0.5 when reward.graders is empty.
// run_config.proto documents this as the meaning of an empty list; it is applied here and nowhere else.
void resolve_default_graders(RewardConfig& reward);

// Every check, so that one run of the loader reports every problem; throws one ConfigError with a line each.
void validate(const LoadedConfig& loaded);

}  // namespace grpo::config::internal
