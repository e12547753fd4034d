// CharTokenizer: the embedded vocabulary, encode/decode with Hugging Face `tokenizers` semantics, and the
// tokenizer.json / tokenizer_config.json reader and writer, which refuses every component it does not implement.
#include "policy/char_tokenizer.h"

#include <algorithm>
#include <fstream>
#include <limits>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace grpo::policy {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kPadToken = "<|pad|>";
constexpr std::string_view kEosToken = "<|endoftext|>";
constexpr std::string_view kUnkToken = "<unk>";
// The tags of the R1-Zero format; added tokens so that each is one id, not special because the model writes them.
constexpr std::array<std::string_view, 4> kReasoningTags = {"<think>", "</think>", "<answer>", "</answer>"};

// The Split pre-tokenizer patterns that isolate every character, checked against `tokenizers` 0.23 by the
// agreement test. "." alone is not one of them: the library's regex engine does not let it match "\n".
constexpr std::array<std::pair<std::string_view, std::string_view>, 3> kPerCharacterSplitPatterns = {{
    {"Regex", "[\\s\\S]"},
    {"Regex", "(?m)."},
    {"String", ""},
}};

// What transformers writes for "no length limit" (its VERY_LARGE_INTEGER, int(1e30)); a double keeps it in JSON.
constexpr double kUnlimitedModelMaxLength = 1e30;

// Bytes in the UTF-8 character that starts at text[pos], or 0 when the bytes there are not valid UTF-8.
std::size_t utf8_char_length(std::string_view text, std::size_t pos) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  std::size_t length = 0;
  if (lead < 0x80) {
    length = 1;
  } else if ((lead >> 5) == 0x6) {
    length = 2;
  } else if ((lead >> 4) == 0xE) {
    length = 3;
  } else if ((lead >> 3) == 0x1E) {
    length = 4;
  }
  if (length == 0 || pos + length > text.size()) return 0;
  for (std::size_t i = 1; i < length; ++i) {
    if ((static_cast<unsigned char>(text[pos + i]) & 0xC0) != 0x80) return 0;
  }
  return length;
}

bool is_single_character(std::string_view token) {
  return !token.empty() && utf8_char_length(token, 0) == token.size();
}

[[noreturn]] void fail(const std::filesystem::path& file, std::string_view what) {
  throw TokenizerError(fmt::format("{}: {}", file.string(), what));
}

Json read_json(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) fail(file, "cannot be opened for reading");
  try {
    return Json::parse(in);
  } catch (const Json::exception& e) {
    fail(file, fmt::format("is not valid JSON: {}", e.what()));
  }
}

void write_text(const std::filesystem::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << text << '\n';
  out.close();
  if (!out) fail(file, "cannot be written");
}

// How a component is named in messages: its "type" when it has one, else its JSON text.
std::string component_name(const Json& value) {
  if (value.is_object() && value.contains("type") && value["type"].is_string()) {
    return value["type"].get<std::string>();
  }
  return value.dump();
}

// The field `key` of `object`, or nullptr when it is absent or null.
const Json* find_field(const Json& object, std::string_view key) {
  const auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

// The field `key` of `object` when it is a string, else "" (for comparisons against known values).
std::string string_field(const Json& object, std::string_view key) {
  const Json* value = find_field(object, key);
  return value != nullptr && value->is_string() ? value->get<std::string>() : std::string();
}

// A boolean option; absent or null means false.
bool flag_field(const std::filesystem::path& file, const Json& object, std::string_view key, std::string_view owner) {
  const Json* value = find_field(object, key);
  if (value == nullptr) return false;
  if (!value->is_boolean()) {
    fail(file, fmt::format("{} field '{}' is {}, not true or false", owner, key, value->dump()));
  }
  return value->get<bool>();
}

bool is_per_character_split(const Json& pre_tokenizer) {
  if (!pre_tokenizer.is_object() || string_field(pre_tokenizer, "type") != "Split") return false;
  const Json* invert = find_field(pre_tokenizer, "invert");
  if (string_field(pre_tokenizer, "behavior") != "Isolated" || invert == nullptr || *invert != false) return false;
  const Json* pattern = find_field(pre_tokenizer, "pattern");
  if (pattern == nullptr || !pattern->is_object() || pattern->size() != 1 || !pattern->begin()->is_string()) {
    return false;
  }
  const std::string& kind = pattern->begin().key();
  const std::string& value = pattern->begin()->get_ref<const std::string&>();
  return std::any_of(kPerCharacterSplitPatterns.begin(), kPerCharacterSplitPatterns.end(),
                     [&](const auto& known) { return known.first == kind && known.second == value; });
}

// Top-level components that CharTokenizer does not implement must be absent or null.
void check_absent(const std::filesystem::path& file, const Json& config, std::string_view key, std::string_view why) {
  const Json* value = find_field(config, key);
  if (value != nullptr) {
    fail(file, fmt::format("{} '{}' is not supported by CharTokenizer ({})", key, component_name(*value), why));
  }
}

// transformers 5 writes this post-processor into tokenizers it saves even when they add nothing: $A alone, $A $B for
// pairs, no special tokens. It changes no encoding, so it is accepted; any other post-processor adds tokens.
bool is_identity_template(const Json& value) {
  if (!value.is_object() || value.value("type", "") != "TemplateProcessing") return false;
  const auto sequence_only = [](const Json* items, std::vector<std::string> ids) {
    if (items == nullptr || !items->is_array() || items->size() != ids.size()) return false;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const auto& item = (*items)[i];
      if (!item.is_object() || !item.contains("Sequence") || !item["Sequence"].is_object() || item["Sequence"].value("id", "") != ids[i]) {
        return false;
      }
    }
    return true;
  };
  const Json* special = find_field(value, "special_tokens");
  return sequence_only(find_field(value, "single"), {"A"}) && sequence_only(find_field(value, "pair"), {"A", "B"}) &&
         (special == nullptr || (special->is_object() && special->empty()));
}

void check_pre_tokenizer_and_decoder(const std::filesystem::path& file, const Json& config) {
  const Json* pre_tokenizer = find_field(config, "pre_tokenizer");
  if (pre_tokenizer != nullptr && !is_per_character_split(*pre_tokenizer)) {
    fail(file, fmt::format("pre_tokenizer '{}' is not supported by CharTokenizer (it takes none, or a Split with "
                           "behavior Isolated that isolates every character)",
                           component_name(*pre_tokenizer)));
  }
  const Json* decoder = find_field(config, "decoder");
  if (decoder == nullptr) {
    fail(file, "decoder is null, which joins tokens with spaces; CharTokenizer needs the 'Fuse' decoder");
  }
  if (component_name(*decoder) != "Fuse") {
    fail(file,
         fmt::format("decoder '{}' is not supported by CharTokenizer (it needs 'Fuse')", component_name(*decoder)));
  }
}

struct ModelSpec {
  std::string unk_token;
  bool fuse_unk = false;
  const Json* vocab = nullptr;
};

ModelSpec check_model(const std::filesystem::path& file, const Json& config) {
  const Json* model = find_field(config, "model");
  if (model == nullptr || !model->is_object()) fail(file, "has no 'model' object");
  const std::string type = string_field(*model, "type");
  ModelSpec spec;
  if (type == "BPE") {
    const Json* merges = find_field(*model, "merges");
    if (merges != nullptr && !merges->is_array()) fail(file, "model BPE 'merges' is not an array");
    if (merges != nullptr && !merges->empty()) {
      fail(file, fmt::format("model BPE has {} merges; byte-level BPE tokenizers are loaded by the BPE tokenizer, "
                             "not CharTokenizer (which needs a vocabulary of single characters and no merges)",
                             merges->size()));
    }
    for (const std::string_view affix : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      const Json* value = find_field(*model, affix);
      if (value != nullptr && (!value->is_string() || !value->get_ref<const std::string&>().empty())) {
        fail(file, fmt::format("model BPE {} {} is not supported by CharTokenizer", affix, value->dump()));
      }
    }
    if (flag_field(file, *model, "byte_fallback", "model BPE")) {
      fail(file, "model BPE byte_fallback is not supported by CharTokenizer (unknown characters map to unk_token)");
    }
    spec.fuse_unk = flag_field(file, *model, "fuse_unk", "model BPE");
  } else if (type == "WordLevel") {
    // WordLevel looks up whole pre-tokenized pieces, so it is per-character only behind a per-character Split.
    const Json* pre_tokenizer = find_field(config, "pre_tokenizer");
    if (pre_tokenizer == nullptr || !is_per_character_split(*pre_tokenizer)) {
      fail(file,
           "model WordLevel looks up whole pre-tokenized words; CharTokenizer supports it only behind a Split "
           "pre_tokenizer that isolates every character");
    }
  } else {
    fail(file, fmt::format("model type '{}' is not supported by CharTokenizer (it reads BPE without merges or "
                           "per-character WordLevel)",
                           type.empty() ? component_name(*model) : type));
  }
  const Json* unk = find_field(*model, "unk_token");
  if (unk == nullptr || !unk->is_string()) {
    fail(file, fmt::format("model {} has no unk_token; CharTokenizer maps unknown characters to one", type));
  }
  spec.unk_token = unk->get<std::string>();
  spec.vocab = find_field(*model, "vocab");
  if (spec.vocab == nullptr || !spec.vocab->is_object()) {
    fail(file, fmt::format("model {} has no 'vocab' object", type));
  }
  return spec;
}

std::int64_t read_id(const std::filesystem::path& file, const Json& value, std::string_view what) {
  if (!value.is_number_unsigned() ||
      value.get<std::uint64_t>() >= static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max())) {
    fail(file, fmt::format("{} has id {}, not a non-negative integer below 2^31", what, value.dump()));
  }
  return value.get<std::int64_t>();
}

// A token name in tokenizer_config.json: a string, an AddedToken object {"content": ...}, or absent/null.
std::optional<std::string> config_token(const std::filesystem::path& file, const Json& config, std::string_view key) {
  const Json* value = find_field(config, key);
  if (value == nullptr) return std::nullopt;
  if (value->is_string()) return value->get<std::string>();
  if (value->is_object() && value->contains("content") && (*value)["content"].is_string()) {
    return (*value)["content"].get<std::string>();
  }
  fail(file, fmt::format("{} is {}, not a token string or {{\"content\": ...}} object", key, value->dump()));
}

// The token list indexed by id: every id from 0 to the largest must name exactly one token, and no token may
// have two ids.
std::vector<std::string> tokens_by_id(const std::filesystem::path& file,
                                      const std::vector<std::pair<std::int64_t, std::string>>& entries) {
  std::vector<std::optional<std::string>> by_id;
  for (const auto& [id, token] : entries) {
    const auto index = static_cast<std::size_t>(id);
    if (index >= by_id.size()) by_id.resize(index + 1);
    if (by_id[index].has_value() && *by_id[index] != token) {
      fail(file, fmt::format("id {} is given to both '{}' and '{}'", id, *by_id[index], token));
    }
    by_id[index] = token;
  }
  std::vector<std::string> tokens;
  tokens.reserve(by_id.size());
  std::unordered_map<std::string_view, std::size_t> first_id;
  for (std::size_t id = 0; id < by_id.size(); ++id) {
    if (!by_id[id].has_value()) {
      fail(file, fmt::format("no token has id {} (ids must run from 0 to {} without gaps)", id, by_id.size() - 1));
    }
    if (const auto [it, inserted] = first_id.emplace(*by_id[id], id); !inserted) {
      fail(file, fmt::format("token '{}' has two ids, {} and {}", *by_id[id], it->second, id));
    }
    tokens.push_back(*by_id[id]);
  }
  return tokens;
}

// The id of `token`, which `source` names as its `role`; it must be in the vocabulary of `tokenizer_file`.
std::int64_t find_token_id(const std::filesystem::path& source, std::string_view role, const std::string& token,
                           const std::vector<std::string>& tokens, const std::filesystem::path& tokenizer_file) {
  const auto it = std::find(tokens.begin(), tokens.end(), token);
  if (it == tokens.end()) {
    fail(source, fmt::format("{} '{}' is not in the vocabulary of {}", role, token, tokenizer_file.string()));
  }
  return static_cast<std::int64_t>(it - tokens.begin());
}

struct TokenizerConfig {
  std::int64_t eos_id = 0;
  std::int64_t pad_id = 0;
  std::optional<std::int64_t> model_max_length;
};

// tokenizer_config.json is optional; without it (or without its names) EOS is "<|endoftext|>", and pad is
// "<|pad|>" when the vocabulary has it, else EOS.
TokenizerConfig read_tokenizer_config(const std::filesystem::path& config_file,
                                      const std::filesystem::path& tokenizer_file,
                                      const std::vector<std::string>& tokens) {
  Json config = Json::object();
  if (std::filesystem::exists(config_file)) {
    config = read_json(config_file);
    if (!config.is_object()) fail(config_file, fmt::format("is a JSON {}, not an object", config.type_name()));
  }
  const std::optional<std::string> eos_name = config_token(config_file, config, "eos_token");
  const std::optional<std::string> pad_name = config_token(config_file, config, "pad_token");
  if (!eos_name && std::find(tokens.begin(), tokens.end(), kEosToken) == tokens.end()) {
    fail(config_file,
         fmt::format("names no eos_token and the vocabulary of {} has no '{}'", tokenizer_file.string(), kEosToken));
  }
  TokenizerConfig result;
  result.eos_id =
      find_token_id(config_file, "eos_token", eos_name.value_or(std::string(kEosToken)), tokens, tokenizer_file);
  result.pad_id = result.eos_id;
  if (pad_name) {
    result.pad_id = find_token_id(config_file, "pad_token", *pad_name, tokens, tokenizer_file);
  } else if (const auto it = std::find(tokens.begin(), tokens.end(), kPadToken); it != tokens.end()) {
    result.pad_id = static_cast<std::int64_t>(it - tokens.begin());
  }
  // Larger values (transformers' 1e30 for "no limit") leave the length unknown.
  if (const Json* length = find_field(config, "model_max_length"); length != nullptr) {
    if (length->is_number_unsigned() &&
        length->get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      result.model_max_length = length->get<std::int64_t>();
    } else if (!length->is_number()) {
      fail(config_file, fmt::format("model_max_length is {}, not a number", length->dump()));
    }
  }
  return result;
}

}  // namespace

CharTokenizer::CharTokenizer(std::vector<std::string> tokens, std::vector<AddedToken> added, std::int64_t unk_id,
                             std::int64_t eos_id, std::int64_t pad_id, bool fuse_unk)
    : tokens_(std::move(tokens)),
      added_(std::move(added)),
      special_(tokens_.size(), false),
      unk_id_(unk_id),
      eos_id_(eos_id),
      pad_id_(pad_id),
      fuse_unk_(fuse_unk) {
  ascii_ids_.fill(-1);
  for (std::size_t id = 0; id < tokens_.size(); ++id) {
    const std::string& token = tokens_[id];
    ids_.emplace(token, static_cast<std::int64_t>(id));
    if (token.size() == 1 && static_cast<unsigned char>(token[0]) < 0x80) {
      ascii_ids_[static_cast<unsigned char>(token[0])] = static_cast<std::int64_t>(id);
    }
  }
  for (const AddedToken& token : added_) special_[static_cast<std::size_t>(token.id)] = token.special;
  // Longest first, so that the first match at a position is the longest one.
  std::stable_sort(added_.begin(), added_.end(),
                   [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });
}

CharTokenizer CharTokenizer::make_embedded() {
  std::vector<std::string> tokens = {std::string(kPadToken), std::string(kEosToken), std::string(kUnkToken)};
  for (std::string_view tag : kReasoningTags) tokens.emplace_back(tag);
  std::vector<AddedToken> added;
  for (std::size_t id = 0; id < tokens.size(); ++id) {
    added.push_back({.content = tokens[id], .id = static_cast<std::int64_t>(id), .special = id < 3});
  }
  for (char c = 0x20; c <= 0x7E; ++c) tokens.emplace_back(1, c);
  tokens.emplace_back("\n");
  return CharTokenizer(std::move(tokens), std::move(added), /*unk_id=*/2, /*eos_id=*/1, /*pad_id=*/0,
                       /*fuse_unk=*/false);
}

CharTokenizer CharTokenizer::load(const std::filesystem::path& dir) {
  const std::filesystem::path file = dir / "tokenizer.json";
  // The checks below name each malformed field; this catches the JSON type errors that slip past them.
  try {
    const Json config = read_json(file);
    if (!config.is_object()) fail(file, fmt::format("is a JSON {}, not an object", config.type_name()));
    // The model first: for a byte-level BPE file, "has N merges" is the message that says what to use instead.
    const ModelSpec model = check_model(file, config);
    check_absent(file, config, "normalizer", "it implements no normalizer");
    if (const Json* post = find_field(config, "post_processor"); post == nullptr || !is_identity_template(*post)) {
      check_absent(file, config, "post_processor", "it adds no tokens around the text");
    }
    check_absent(file, config, "truncation", "sequences are cut by the caller");
    check_absent(file, config, "padding", "batches are padded by the caller");
    check_pre_tokenizer_and_decoder(file, config);

    std::vector<AddedToken> added;
    std::vector<std::pair<std::int64_t, std::string>> entries;
    if (const Json* added_tokens = find_field(config, "added_tokens"); added_tokens != nullptr) {
      if (!added_tokens->is_array()) fail(file, "added_tokens is not an array");
      for (const Json& entry : *added_tokens) {
        added.push_back(read_added_token(file, entry, *model.vocab));
        entries.emplace_back(added.back().id, added.back().content);
      }
    }
    for (const auto& [token, id_value] : model.vocab->items()) {
      const bool is_added =
          std::any_of(added.begin(), added.end(), [&](const AddedToken& a) { return a.content == token; });
      if (!is_added && !is_single_character(token)) {
        fail(file, fmt::format("model vocab entry '{}' is neither a single character nor an added token; "
                               "CharTokenizer reads character-level vocabularies only",
                               token));
      }
      entries.emplace_back(read_id(file, id_value, fmt::format("model vocab entry '{}'", token)), token);
    }
    std::vector<std::string> tokens = tokens_by_id(file, entries);
    const std::int64_t unk_id = find_token_id(file, "model unk_token", model.unk_token, tokens, file);
    const TokenizerConfig names = read_tokenizer_config(dir / "tokenizer_config.json", file, tokens);

    CharTokenizer tokenizer(std::move(tokens), std::move(added), unk_id, names.eos_id, names.pad_id, model.fuse_unk);
    tokenizer.set_model_max_length(names.model_max_length);
    return tokenizer;
  } catch (const Json::exception& e) {
    fail(file, fmt::format("is malformed: {}", e.what()));
  }
}

CharTokenizer::AddedToken CharTokenizer::read_added_token(const std::filesystem::path& file, const Json& entry,
                                                          const Json& vocab) {
  if (!entry.is_object() || !entry.contains("content") || !entry["content"].is_string() ||
      entry["content"].get_ref<const std::string&>().empty() || !entry.contains("id")) {
    fail(file, fmt::format("added token {} needs a non-empty string 'content' and an 'id'", entry.dump()));
  }
  const std::string owner = fmt::format("added token '{}'", entry["content"].get_ref<const std::string&>());
  AddedToken token{.content = entry["content"].get<std::string>(),
                   .id = read_id(file, entry["id"], owner),
                   .special = flag_field(file, entry, "special", owner),
                   .normalized = flag_field(file, entry, "normalized", owner)};
  for (const std::string_view option : {"single_word", "lstrip", "rstrip"}) {
    if (flag_field(file, entry, option, owner)) {
      fail(file, fmt::format("{} sets {}, which CharTokenizer does not implement", owner, option));
    }
  }
  const auto in_vocab = vocab.find(token.content);
  if (in_vocab != vocab.end() && *in_vocab != entry["id"]) {
    fail(file, fmt::format("{} has id {} but the model vocab gives it id {}", owner, token.id, in_vocab->dump()));
  }
  return token;
}

void CharTokenizer::save(const std::filesystem::path& dir) const {
  // Always written as the BPE form: without merges it encodes exactly as the per-character WordLevel form.
  using OrderedJson = nlohmann::ordered_json;
  std::vector<AddedToken> added = added_;
  std::sort(added.begin(), added.end(), [](const AddedToken& a, const AddedToken& b) { return a.id < b.id; });
  OrderedJson added_tokens = OrderedJson::array();
  for (const AddedToken& token : added) {
    added_tokens.push_back({{"id", token.id},
                            {"content", token.content},
                            {"single_word", false},
                            {"lstrip", false},
                            {"rstrip", false},
                            {"normalized", token.normalized},
                            {"special", token.special}});
  }
  OrderedJson vocab = OrderedJson::object();
  for (std::size_t id = 0; id < tokens_.size(); ++id) vocab[tokens_[id]] = id;
  OrderedJson config = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added_tokens},
      {"normalizer", nullptr},
      {"pre_tokenizer", nullptr},
      {"post_processor", nullptr},
      {"decoder", {{"type", "Fuse"}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", tokens_[static_cast<std::size_t>(unk_id_)]},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", fuse_unk_},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", OrderedJson::array()}}},
  };
  OrderedJson tokenizer_config = {
      {"tokenizer_class", "PreTrainedTokenizerFast"},
      {"eos_token", tokens_[static_cast<std::size_t>(eos_id_)]},
      {"pad_token", tokens_[static_cast<std::size_t>(pad_id_)]},
      {"unk_token", tokens_[static_cast<std::size_t>(unk_id_)]},
      // transformers would otherwise decide per version whether decode() rewrites " ." as ".", which would break
      // the character-exact round trip.
      {"clean_up_tokenization_spaces", false},
  };
  if (model_max_length_) {
    tokenizer_config["model_max_length"] = *model_max_length_;
  } else {
    tokenizer_config["model_max_length"] = kUnlimitedModelMaxLength;
  }
  write_text(dir / "tokenizer.json", config.dump(2));
  write_text(dir / "tokenizer_config.json", tokenizer_config.dump(2));
}

void CharTokenizer::encode_characters(std::string_view text, std::vector<std::int64_t>& ids) const {
  bool previous_unknown = false;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto lead = static_cast<unsigned char>(text[pos]);
    std::int64_t id = -1;
    std::size_t length = 1;
    if (lead < 0x80) {
      id = ascii_ids_[lead];
    } else if (const std::size_t char_length = utf8_char_length(text, pos); char_length > 0) {
      length = char_length;
      if (const auto it = ids_.find(text.substr(pos, length)); it != ids_.end()) id = it->second;
    }
    pos += length;
    const bool unknown = id < 0;
    if (unknown && fuse_unk_ && previous_unknown) continue;
    ids.push_back(unknown ? unk_id_ : id);
    previous_unknown = unknown;
  }
}

void CharTokenizer::encode_pass(std::string_view text, bool normalized, std::vector<std::int64_t>& ids) const {
  auto flush = [&](std::string_view piece) {
    if (piece.empty()) return;
    if (normalized) {
      encode_characters(piece, ids);
    } else {
      encode_pass(piece, /*normalized=*/true, ids);
    }
  };
  std::size_t start = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto match = std::find_if(added_.begin(), added_.end(), [&](const AddedToken& token) {
      return token.normalized == normalized && text.substr(pos).starts_with(token.content);
    });
    if (match == added_.end()) {
      ++pos;
      continue;
    }
    flush(text.substr(start, pos - start));
    ids.push_back(match->id);
    pos += match->content.size();
    start = pos;
  }
  flush(text.substr(start));
}

std::vector<std::int64_t> CharTokenizer::encode(std::string_view text) const {
  std::vector<std::int64_t> ids;
  ids.reserve(text.size());
  encode_pass(text, /*normalized=*/false, ids);
  return ids;
}

std::string CharTokenizer::decode(std::span<const std::int64_t> ids, bool skip_special_tokens) const {
  std::string text;
  for (const std::int64_t id : ids) {
    if (id < 0 || id >= vocab_size()) {
      throw TokenizerError(fmt::format("CharTokenizer: token id {} is out of range [0, {})", id, vocab_size()));
    }
    if (skip_special_tokens && special_[static_cast<std::size_t>(id)]) continue;
    text += tokens_[static_cast<std::size_t>(id)];
  }
  return text;
}

std::optional<std::int64_t> CharTokenizer::token_to_id(std::string_view token) const {
  const auto it = ids_.find(token);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

std::string CharTokenizer::id_to_token(std::int64_t id) const {
  if (id < 0 || id >= vocab_size()) {
    throw TokenizerError(fmt::format("CharTokenizer: token id {} is out of range [0, {})", id, vocab_size()));
  }
  return tokens_[static_cast<std::size_t>(id)];
}

const std::string& CharTokenizer::chat_template() const {
  static const std::string none;
  return none;
}

bool CharTokenizer::is_special(std::int64_t id) const {
  if (id < 0 || id >= vocab_size()) return false;
  return special_[static_cast<std::size_t>(id)];
}

}  // namespace grpo::policy
