// The config loader's public face (see config_loader.h): parse (text_parse), apply overrides (overrides), resolve
// defaults and validate (validation), recording where every value came from.
#include "rl/config/config_loader.h"

#include <fmt/format.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <system_error>
#include <vector>

#include "rl/config/field_text.h"
#include "rl/config/overrides.h"
#include "rl/config/text_parse.h"
#include "rl/config/validation.h"

namespace grpo::config {
namespace {

namespace pb = google::protobuf;
using internal::join;

constexpr std::string_view kEmbeddedSourceName = "<embedded default>";

}  // namespace

std::string LoadedConfig::location(std::string_view field_path) const {
  internal::check_field_path(*RunConfig::descriptor(), field_path);
  const auto it = locations_.find(field_path);
  return it == locations_.end() ? std::string(kDefaultLocation) : it->second;
}

LoadedConfig load_config_text(std::string_view text, std::string source_name, std::span<const std::string> overrides) {
  LoadedConfig loaded;
  const internal::SourceText source(text, std::move(source_name));
  internal::parse_text(text, source, loaded.config, loaded.locations_);
  for (const std::string& assignment : overrides) internal::apply_override(assignment, loaded.config, loaded.locations_);
  internal::resolve_default_graders(*loaded.config.mutable_reward());
  internal::resolve_defaults(loaded.config);
  internal::validate(loaded);
  return loaded;
}

LoadedConfig load_config_file(const std::filesystem::path& file, std::span<const std::string> overrides) {
  std::error_code status_error;
  if (std::filesystem::is_directory(file, status_error)) {
    throw ConfigError(
        fmt::format("cannot read config file '{}': it is a directory; pass a .textproto file", file.string()));
  }
  errno = 0;
  std::ifstream input(file, std::ios::binary);
  if (!input) {
    throw ConfigError(
        fmt::format("cannot open config file '{}': {}", file.string(), std::generic_category().message(errno)));
  }
  std::ostringstream text;
  text << input.rdbuf();
  if (input.bad()) {
    throw ConfigError(
        fmt::format("cannot read config file '{}': {}", file.string(), std::generic_category().message(errno)));
  }
  return load_config_text(text.str(), file.string(), overrides);
}

LoadedConfig default_config(std::span<const std::string> overrides) {
  return load_config_text("", std::string(kEmbeddedSourceName), overrides);
}

std::string to_textproto(const google::protobuf::Message& message) {
  pb::TextFormat::Printer printer;
  std::string text;
  if (!printer.PrintToString(message, &text)) {
    throw ConfigError(fmt::format("cannot print a {} as text format", message.GetDescriptor()->full_name()));
  }
  return text;
}

void fail_at(const LoadedConfig& loaded, std::string_view field_path, std::string_view message) {
  throw ConfigError(fmt::format("{}: {}: {}", loaded.location(field_path), field_path, message));
}

void check_choice(const LoadedConfig& loaded, std::string_view field_path, std::string_view value,
                  std::span<const std::string> valid) {
  if (std::find(valid.begin(), valid.end(), value) != valid.end()) return;
  std::vector<std::string> choices(valid.begin(), valid.end());
  fail_at(loaded, field_path, fmt::format("'{}' is not a valid choice; valid choices: {}", value, join(choices, ", ")));
}

}  // namespace grpo::config
