// Config entries to graders (see grader_factory.h).
#include "rl/grader_factory.h"

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "reward/code_grader.h"
#include "reward/format_grader.h"
#include "reward/grader_registry.h"
#include "reward/plugin_grader.h"
#include "reward/remote/remote_grader.h"
#include "rollout/wire/frame.h"

namespace grpo {
namespace {

std::unique_ptr<reward::Grader> make_code_grader(const config::CodeGraderConfig& code) {
  reward::CodeGraderOptions options;
  const auto language = reward::parse_code_language(code.default_language());
  if (!language) throw std::invalid_argument(fmt::format("unknown code language '{}'", code.default_language()));
  options.default_language = *language;
  options.score_policy =
      code.score_policy() == config::PASS_FRACTION ? reward::CodeScorePolicy::kPassFraction : reward::CodeScorePolicy::kAllPass;
  options.slots = code.slots();
  options.run_limits.cpu_seconds = code.cpu_seconds();
  options.run_limits.wall_seconds = code.wall_seconds();
  options.run_limits.address_space_bytes = static_cast<std::size_t>(code.memory_mb()) << 20;
  options.run_limits.output_bytes = static_cast<std::size_t>(code.output_mb()) << 20;
  return std::make_unique<reward::CodeGrader>(options);
}

std::unique_ptr<reward::Grader> make_remote_grader(const config::RemoteGraderConfig& remote) {
  std::pair<std::string, std::uint16_t> endpoint;
  try {
    endpoint = wire::parse_endpoint(remote.address());
  } catch (const std::invalid_argument& error) {
    throw std::invalid_argument(fmt::format("remote grader {}", error.what()));
  }
  const auto& [host, port] = endpoint;
  reward::RemoteGraderOptions options;
  options.host = host;
  options.port = port;
  options.grader = remote.grader();
  options.request_timeout = std::chrono::milliseconds(remote.timeout_ms());
  options.retries = remote.retries();
  options.max_in_flight = remote.max_in_flight();
  options.max_batch = remote.max_batch();
  return std::make_unique<reward::RemoteGrader>(options);
}

}  // namespace

std::unique_ptr<reward::Grader> make_configured_grader(const config::GraderWeight& entry) {
  if (entry.has_plugin()) {
    const auto& plugin = entry.plugin();
    return reward::load_plugin_grader({.library = plugin.path(),
                                       .config_json = plugin.config_json(),
                                       .isolation = plugin.in_process() ? reward::PluginIsolation::kInProcess
                                                                        : reward::PluginIsolation::kSubprocess,
                                       .call_timeout = std::chrono::milliseconds(plugin.timeout_ms())});
  }
  if (entry.has_remote()) return make_remote_grader(entry.remote());
  if (entry.name() == "code") return make_code_grader(entry.has_code() ? entry.code() : config::CodeGraderConfig());
  if (entry.name() == "format" && entry.has_format()) {
    const auto& tags = entry.format();
    return std::make_unique<reward::FormatGrader>(
        reward::TemplateTags{tags.think_open(), tags.think_close(), tags.answer_open(), tags.answer_close()});
  }
  return reward::make_grader(entry.name());
}

}  // namespace grpo
