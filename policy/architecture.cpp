// The architecture table (see architecture.h); entries are defined in policy/architectures/*.cpp.
#include "policy/architecture.h"

#include <array>
#include <cstdint>
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
  // Qwen2Config and Qwen3Config type it bool (null is an error there); sliding_window alone changes nothing.
  if (bool_field(json, "use_sliding_window", source, NullField::kIsError).value_or(false)) {
    throw std::invalid_argument(fmt::format("{}: use_sliding_window true is not supported (sliding-window attention)", source.string()));
  }
  if (const auto types = json.find("layer_types"); types != json.end() && !types->is_null()) {
    if (!types->is_array()) {
      throw std::invalid_argument(
          fmt::format("{}: field 'layer_types' must be a list of strings, got {}", source.string(), types->dump()));
    }
    for (std::size_t i = 0; i < types->size(); ++i) {
      const auto& type = (*types)[i];
      if (!type.is_string() || type.get<std::string>() != "full_attention") {
        throw std::invalid_argument(fmt::format("{}: layer_types[{}] is {}; only \"full_attention\" is supported", source.string(), i, type.dump()));
      }
    }
  }
}

}  // namespace architectures_detail

namespace {

// The field's value, or null when it is missing or (kIsMissing) null; a null under kIsError is returned to be
// reported by the caller's type check.
const nlohmann::json* find_field(const nlohmann::json& object, const char* key, NullField null) {
  const auto found = object.find(key);
  if (found == object.end() || (found->is_null() && null == NullField::kIsMissing)) return nullptr;
  return &*found;
}

[[noreturn]] void wrong_type(const nlohmann::json& value, const char* key, const std::filesystem::path& source,
                             std::string_view parent, std::string_view expected) {
  const auto name = parent.empty() ? std::string(key) : fmt::format("{}.{}", parent, key);
  throw std::invalid_argument(
      fmt::format("{}: field '{}' must be {}, got {}", source.string(), name, expected, value.dump()));
}

}  // namespace

std::optional<std::int64_t> int_field(const nlohmann::json& object, const char* key,
                                      const std::filesystem::path& source, NullField null, std::string_view parent) {
  const auto* value = find_field(object, key, null);
  if (value == nullptr) return std::nullopt;
  // is_number_integer() is also true of unsigned values past INT64_MAX, which get<std::int64_t>() would wrap.
  if (!value->is_number_integer() || (value->is_number_unsigned() && value->get<std::uint64_t>() > INT64_MAX)) {
    wrong_type(*value, key, source, parent, "an integer");
  }
  return value->get<std::int64_t>();
}

std::optional<double> number_field(const nlohmann::json& object, const char* key, const std::filesystem::path& source,
                                   NullField null, std::string_view parent) {
  const auto* value = find_field(object, key, null);
  if (value == nullptr) return std::nullopt;
  if (!value->is_number()) wrong_type(*value, key, source, parent, "a number");
  return value->get<double>();
}

std::optional<bool> bool_field(const nlohmann::json& object, const char* key, const std::filesystem::path& source,
                               NullField null, std::string_view parent) {
  const auto* value = find_field(object, key, null);
  if (value == nullptr) return std::nullopt;
  if (!value->is_boolean()) wrong_type(*value, key, source, parent, "true or false");
  return value->get<bool>();
}

std::optional<std::string> string_field(const nlohmann::json& object, const char* key,
                                        const std::filesystem::path& source, NullField null, std::string_view parent) {
  const auto* value = find_field(object, key, null);
  if (value == nullptr) return std::nullopt;
  if (!value->is_string()) wrong_type(*value, key, source, parent, "a string");
  return value->get<std::string>();
}

}  // namespace grpo::policy
