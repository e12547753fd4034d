// load_tokenizer: which implementation reads a tokenizer.json (see tokenizer.h).
#include "policy/tokenizer.h"

#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "policy/bpe_tokenizer.h"
#include "policy/char_tokenizer.h"

namespace grpo::policy {
namespace {

constexpr std::uintmax_t kLargestCharacterLevelFile = 1 << 20;

// The embedded character-level layout: a BPE model with no merges and no pre-tokenizer (CharTokenizer writes it),
// or a per-character WordLevel model. Everything else (merges, byte-level pre-tokenizers) is a real BPE tokenizer.
bool is_character_level(const nlohmann::json& tokenizer) {
  const auto& model = tokenizer.value("model", nlohmann::json::object());
  const auto type = model.value("type", std::string());
  if (type == "WordLevel") return true;
  if (type != "BPE") return false;
  const auto merges = model.find("merges");
  const bool no_merges = merges == model.end() || (merges->is_array() && merges->empty());
  const auto pre_tokenizer = tokenizer.find("pre_tokenizer");
  const bool no_pre_tokenizer = pre_tokenizer == tokenizer.end() || pre_tokenizer->is_null();
  return no_merges && no_pre_tokenizer;
}

}  // namespace

std::shared_ptr<const Tokenizer> load_tokenizer(const std::filesystem::path& dir) {
  const auto file = dir / "tokenizer.json";
  // Real BPE vocabularies are megabytes: those go straight to BpeTokenizer, whose streaming reader avoids building
  // a JSON tree of the whole file. Only small files can be the character-level layout, and only they are parsed here.
  std::error_code size_error;
  const auto size = std::filesystem::file_size(file, size_error);
  if (!size_error && size > kLargestCharacterLevelFile) return BpeTokenizer::load(dir);
  std::ifstream in(file, std::ios::binary);
  if (!in) throw TokenizerError(fmt::format("{}: cannot open (a Hugging Face tokenizer folder needs tokenizer.json)", file.string()));
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& error) {
    throw TokenizerError(fmt::format("{}: invalid JSON: {}", file.string(), error.what()));
  }
  if (!json.is_object()) throw TokenizerError(fmt::format("{}: expected a JSON object", file.string()));
  if (is_character_level(json)) return std::make_shared<const CharTokenizer>(CharTokenizer::load(dir));
  return BpeTokenizer::load(dir);
}

}  // namespace grpo::policy
