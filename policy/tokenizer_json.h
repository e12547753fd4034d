// Reading the components of tokenizer.json with errors that say which file and which component were wrong, e.g.
// ".../tokenizer.json: normalizer.normalizers[0]: type 'BertNormalizer' is not supported; supported: NFC, ...".
#pragma once

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/tokenizer.h"
#include "policy/unicode_regex.h"

namespace grpo::policy {

using Json = nlohmann::json;

// One JSON value of a tokenizer file together with where it is ("model.merges[12]").
class JsonNode {
 public:
  JsonNode(const Json& value, std::string path, const std::filesystem::path& file)
      : value_(&value), path_(std::move(path)), file_(&file) {}

  const Json& value() const { return *value_; }
  const std::string& path() const { return path_; }
  const std::filesystem::path& file() const { return *file_; }
  bool is_null() const { return value_->is_null(); }

  // Throws TokenizerError "<file>: <path>: <what>".
  [[noreturn]] void fail(std::string_view what) const;

  // The member `key`; fails when this is not an object or the member is missing.
  JsonNode child(std::string_view key) const;
  // The member `key`, or nullopt when it is missing or null.
  std::optional<JsonNode> optional_child(std::string_view key) const;
  JsonNode element(std::size_t index) const;

  std::string string_field(std::string_view key) const;
  std::optional<std::string> optional_string_field(std::string_view key) const;
  bool bool_field(std::string_view key, bool default_value) const;
  std::int64_t int_field(std::string_view key, std::int64_t default_value) const;
  // The "type" member of a component.
  std::string type() const;
  // Fails saying that the component's type is not one of `supported`.
  [[noreturn]] void unsupported_type(std::initializer_list<std::string_view> supported) const;

 private:
  const Json* value_;
  std::string path_;
  const std::filesystem::path* file_;
};

// The {"String": ...} or {"Regex": ...} member "pattern" of a Split, Replace or decoder component.
UnicodeRegex read_pattern(const JsonNode& component);

// The bytes of `file`; throws TokenizerError naming it when it is missing or unreadable.
std::string read_text_file(const std::filesystem::path& file);
// tokenizer.json with its two large members read into flat lists instead of JSON values (building and freeing a
// JSON object of 150k entries costs several times the parse): `root` has model.vocab and model.merges only when they
// are not an object and an array (so that the model reader can say what they are instead).
struct TokenizerJson {
  Json root;
  std::optional<std::vector<std::pair<std::string, std::int64_t>>> vocab;
  // Each merge as its two tokens, from "left right" or ["left", "right"]; "#version" lines left out.
  std::optional<std::vector<std::pair<std::string, std::string>>> merges;
};

// Parses the text of tokenizer.json; throws TokenizerError naming `file`, the position and the reason, or a malformed
// vocab or merges entry.
TokenizerJson parse_tokenizer_json(std::string_view text, const std::filesystem::path& file);

// Parses JSON `text` read from `file`; throws TokenizerError naming the file, the position and the reason.
Json parse_json_text(std::string_view text, const std::filesystem::path& file);

}  // namespace grpo::policy
