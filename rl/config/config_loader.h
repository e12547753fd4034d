// Loads a run's configuration (rl/config/run_config.proto): a text-format file plus `--set path=value` overrides,
// with every schema default resolved and every value validated before any work starts.
#pragma once

#include <google/protobuf/message.h>

#include <filesystem>
#include <functional>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include "rl/config/run_config.pb.h"

namespace grpo::config {

// Field path → where its value came from; see LoadedConfig::location.
using FieldLocations = std::map<std::string, std::string, std::less<>>;
// The location of a value nobody wrote: it holds the schema default.
inline constexpr std::string_view kDefaultLocation = "default";

// A configuration the user has to fix. The message reads "<where>: <what was wrong>", and lists the valid choices
// when there is a list, e.g. "examples/x.textproto:7:3: rollout.group_size = 0 is out of range; valid range [2, 1024]".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A resolved, validated configuration and where each of its values came from.
//
//   const std::vector<std::string> overrides = {"rollout.group_size=16"};
//   LoadedConfig loaded = load_config_file("examples/arithmetic.textproto", overrides);
//   loaded.config.rollout().group_size();            // 16
//   loaded.location("rollout.group_size");           // "--set rollout.group_size=16"
//   loaded.location("rollout.temperature");          // "examples/arithmetic.textproto:9:3", or "default"
//   check_choice(loaded, "task.prompt_template", loaded.config.task().prompt_template(), template_names);
class LoadedConfig {
 public:
  // Every singular field, recursively, is set: to the file's value, an override's, or the schema default, so that
  // printing it (to_textproto) shows the whole run. An empty reward.graders becomes {accuracy 1.0, format 0.5}.
  RunConfig config;

  // Where the value of `field_path` came from: "<file>:<line>:<column>" (1-based) for a value written in the file,
  // "--set <assignment>" for an override, "default" otherwise. Paths are dotted field names with an index on
  // repeated fields: "rollout.group_size", "reward.graders[1].weight". Throws std::invalid_argument for a path that
  // names no field of RunConfig (a programming error, not a configuration one).
  std::string location(std::string_view field_path) const;

 private:
  friend LoadedConfig load_config_text(std::string_view text, std::string source_name,
                                       std::span<const std::string> overrides);

  // Field path → location, for the values the file or an override set; absent paths hold their default.
  FieldLocations locations_;
};

// Reads `file` (text-format RunConfig), then applies `overrides` in order (each "path=value", as written after
// --set; a later one wins), resolves defaults and validates. Throws ConfigError naming the file and the OS reason
// when it cannot be read, and with "<file>:<line>:<column>: ..." for parse and validation errors.
LoadedConfig load_config_file(const std::filesystem::path& file, std::span<const std::string> overrides);

// As load_config_file, for text already in memory; `source_name` stands for the file in locations and errors.
LoadedConfig load_config_text(std::string_view text, std::string source_name, std::span<const std::string> overrides);

// The embedded default run (every value from the schema) plus `overrides`.
LoadedConfig default_config(std::span<const std::string> overrides);

// Text format, fields in field-number order: stable, so a saved config.textproto diffs cleanly and loads back to
// an equal message.
std::string to_textproto(const google::protobuf::Message& message);

// Throws ConfigError "<location of field_path>: <field_path>: <message>", for checks made outside this loader
// (for example a registry lookup) that must still point the user at the line to fix.
[[noreturn]] void fail_at(const LoadedConfig& loaded, std::string_view field_path, std::string_view message);

// Throws ConfigError through fail_at, listing `valid`, when `value` is not one of them.
void check_choice(const LoadedConfig& loaded, std::string_view field_path, std::string_view value,
                  std::span<const std::string> valid);

}  // namespace grpo::config
