// JsonNode accessors and the JSON file reader shared by the BPE tokenizer's component parsers.
#include "policy/tokenizer_json.h"

#include <fstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace grpo::policy {

void JsonNode::fail(std::string_view what) const {
  throw TokenizerError(fmt::format("{}: {}: {}", file_->string(), path_.empty() ? "(top level)" : path_, what));
}

JsonNode JsonNode::child(std::string_view key) const {
  if (!value_->is_object()) fail(fmt::format("is a JSON {}, not an object", value_->type_name()));
  const auto it = value_->find(key);
  if (it == value_->end()) fail(fmt::format("has no '{}'", key));
  return JsonNode(*it, path_.empty() ? std::string(key) : fmt::format("{}.{}", path_, key), *file_);
}

std::optional<JsonNode> JsonNode::optional_child(std::string_view key) const {
  if (!value_->is_object()) fail(fmt::format("is a JSON {}, not an object", value_->type_name()));
  const auto it = value_->find(key);
  if (it == value_->end() || it->is_null()) return std::nullopt;
  return JsonNode(*it, path_.empty() ? std::string(key) : fmt::format("{}.{}", path_, key), *file_);
}

JsonNode JsonNode::element(std::size_t index) const {
  if (!value_->is_array()) fail(fmt::format("is a JSON {}, not an array", value_->type_name()));
  return JsonNode((*value_)[index], fmt::format("{}[{}]", path_, index), *file_);
}

std::string JsonNode::string_field(std::string_view key) const {
  const JsonNode field = child(key);
  if (!field.value().is_string()) field.fail(fmt::format("is {}, not a string", field.value().dump()));
  return field.value().get<std::string>();
}

std::optional<std::string> JsonNode::optional_string_field(std::string_view key) const {
  const std::optional<JsonNode> field = optional_child(key);
  if (!field) return std::nullopt;
  if (!field->value().is_string()) field->fail(fmt::format("is {}, not a string", field->value().dump()));
  return field->value().get<std::string>();
}

bool JsonNode::bool_field(std::string_view key, bool default_value) const {
  const std::optional<JsonNode> field = optional_child(key);
  if (!field) return default_value;
  if (!field->value().is_boolean()) field->fail(fmt::format("is {}, not true or false", field->value().dump()));
  return field->value().get<bool>();
}

std::int64_t JsonNode::int_field(std::string_view key, std::int64_t default_value) const {
  const std::optional<JsonNode> field = optional_child(key);
  if (!field) return default_value;
  if (!field->value().is_number_integer()) field->fail(fmt::format("is {}, not an integer", field->value().dump()));
  return field->value().get<std::int64_t>();
}

std::string JsonNode::type() const { return string_field("type"); }

void JsonNode::unsupported_type(std::initializer_list<std::string_view> supported) const {
  fail(fmt::format("type '{}' is not supported; supported: {}", type(), fmt::join(supported, ", ")));
}

UnicodeRegex read_pattern(const JsonNode& component) {
  const JsonNode pattern = component.child("pattern");
  try {
    if (const auto literal = pattern.optional_string_field("String")) return UnicodeRegex::literal(*literal);
    if (const auto regex = pattern.optional_string_field("Regex")) return UnicodeRegex::oniguruma(*regex);
  } catch (const std::invalid_argument& e) {
    pattern.fail(e.what());
  }
  pattern.fail("needs a \"String\" or a \"Regex\"");
}

std::string read_text_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw TokenizerError(fmt::format("{}: cannot be opened (missing or unreadable)", file.string()));
  std::string text;
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  in.seekg(0, std::ios::beg);
  if (size > 0) {
    text.resize(static_cast<std::size_t>(size));
    in.read(text.data(), size);
  }
  if (!in) throw TokenizerError(fmt::format("{}: could not be read", file.string()));
  return text;
}

Json parse_json_text(std::string_view text, const std::filesystem::path& file) {
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    throw TokenizerError(fmt::format("{}: is not valid JSON: {}", file.string(), e.what()));
  }
}

}  // namespace grpo::policy
