// The architecture table (see architecture.h); entries are defined in policy/architectures/*.cpp.
#include "policy/architecture.h"

#include <array>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace grpo::policy {
namespace {

const std::array<const Architecture*, 3>& table() {
  static const std::array<const Architecture*, 3> entries = {&architectures_detail::kLlama, &architectures_detail::kQwen2,
                                                             &architectures_detail::kQwen3};
  return entries;
}

}  // namespace

std::span<const Architecture> architectures() {
  static const std::vector<Architecture> copies = [] {
    std::vector<Architecture> out;
    for (const auto* entry : table()) out.push_back(*entry);
    return out;
  }();
  return copies;
}

std::vector<std::string> architecture_names() {
  std::vector<std::string> names;
  for (const auto* entry : table()) names.emplace_back(entry->name);
  return names;
}

const Architecture& find_architecture(std::string_view name) {
  for (const auto* entry : table()) {
    if (entry->name == name) return *entry;
  }
  throw std::invalid_argument(fmt::format("architecture '{}' is not supported; supported: {}", name, fmt::join(architecture_names(), ", ")));
}

namespace architectures_detail {

void reject_sliding_window(const nlohmann::json& json, const std::filesystem::path& source) {
  if (json.value("use_sliding_window", false)) {
    throw std::invalid_argument(fmt::format("{}: use_sliding_window true is not supported (sliding-window attention)", source.string()));
  }
  if (const auto types = json.find("layer_types"); types != json.end() && types->is_array()) {
    for (std::size_t i = 0; i < types->size(); ++i) {
      const auto& type = (*types)[i];
      if (!type.is_string() || type.get<std::string>() != "full_attention") {
        throw std::invalid_argument(fmt::format("{}: layer_types[{}] is {}; only \"full_attention\" is supported", source.string(), i, type.dump()));
      }
    }
  }
}

}  // namespace architectures_detail
}  // namespace grpo::policy
