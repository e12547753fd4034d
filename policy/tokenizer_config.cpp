// parse_tokenizer_config: the few fields of tokenizer_config.json we use; every other field is left to transformers.
#include "policy/tokenizer_config.h"

#include <fmt/format.h>

#include "policy/tokenizer_json.h"

namespace grpo::policy {
namespace {

// transformers' "unbounded" is int(1e30); anything this large means no limit.
constexpr double kUnboundedLength = 1e18;

std::optional<std::string> token_name(const JsonNode& config, std::string_view key) {
  const std::optional<JsonNode> field = config.optional_child(key);
  if (!field) return std::nullopt;
  if (field->value().is_string()) return field->value().get<std::string>();
  if (field->value().is_object()) return field->string_field("content");
  field->fail(fmt::format("is {}, not a string or an object with \"content\"", field->value().dump()));
}

std::optional<std::int64_t> max_length(const JsonNode& config) {
  const std::optional<JsonNode> field = config.optional_child("model_max_length");
  if (!field) return std::nullopt;
  const Json& value = field->value();
  if (!value.is_number()) field->fail(fmt::format("is {}, not a number", value.dump()));
  const double as_double = value.get<double>();
  if (as_double >= kUnboundedLength) return std::nullopt;
  if (as_double < 1) field->fail(fmt::format("is {}; a length must be at least 1", value.dump()));
  return value.is_number_integer() ? value.get<std::int64_t>() : static_cast<std::int64_t>(as_double);
}

std::string chat_template(const JsonNode& config) {
  const std::optional<JsonNode> field = config.optional_child("chat_template");
  if (!field) return {};
  if (field->value().is_string()) return field->value().get<std::string>();
  if (!field->value().is_array()) {
    field->fail(fmt::format("is a JSON {}, not a string or a list of {{name, template}}", field->value().type_name()));
  }
  for (std::size_t i = 0; i < field->value().size(); ++i) {
    const JsonNode entry = field->element(i);
    if (entry.string_field("name") == "default") return entry.string_field("template");
  }
  return {};
}

}  // namespace

TokenizerConfig parse_tokenizer_config(const std::string& text, const std::filesystem::path& file) {
  const Json json = parse_json_text(text, file);
  const JsonNode config(json, "", file);
  if (!json.is_object()) config.fail(fmt::format("is a JSON {}, not an object", json.type_name()));
  TokenizerConfig result;
  result.eos_token = token_name(config, "eos_token");
  result.pad_token = token_name(config, "pad_token");
  result.bos_token = token_name(config, "bos_token");
  result.add_bos_token = config.bool_field("add_bos_token", false);
  result.model_max_length = max_length(config);
  result.chat_template = chat_template(config);
  return result;
}

}  // namespace grpo::policy
