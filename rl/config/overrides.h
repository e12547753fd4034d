// `--set path=value` overrides applied to a RunConfig by reflection: any singular field, with the value checked
// against the field's type and the error naming the override. Internal to the config loader.
#pragma once

#include <string>

#include "rl/config/config_loader.h"

namespace grpo::config::internal {

// Applies one "path=value" (as written after --set) and records "--set <assignment>" as the field's location.
// Throws ConfigError for an unknown path, a repeated or message field, or a value of the wrong type.
void apply_override(const std::string& assignment, RunConfig& config, FieldLocations& locations);

}  // namespace grpo::config::internal
