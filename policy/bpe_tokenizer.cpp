// BpeTokenizer: reading tokenizer.json into its components (each parsed by its own file), the added-token ids as the
// library assigns them, and the encode/decode pipeline that strings the components together.
#include "policy/bpe_tokenizer.h"

#include <algorithm>
#include <fstream>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "policy/added_tokens.h"
#include "policy/bpe_decoders.h"
#include "policy/bpe_model.h"
#include "policy/bpe_pretokenizers.h"
#include "policy/tokenizer_config.h"
#include "policy/tokenizer_json.h"
#include "policy/unicode_normalizer.h"
#include "policy/utf8.h"

namespace grpo::policy {
namespace {

const Json kNullJson;

// The component `key` of tokenizer.json, or a null node when it is missing or null.
JsonNode component(const JsonNode& root, std::string_view key) {
  if (std::optional<JsonNode> node = root.optional_child(key)) return *node;
  return JsonNode(kNullJson, std::string(key), root.file());
}

AddedToken read_added_token(const JsonNode& entry) {
  if (!entry.value().is_object()) entry.fail(fmt::format("is {}, not an object", entry.value().dump()));
  const JsonNode id = entry.child("id");
  if (!id.value().is_number_integer() || id.value().get<std::int64_t>() < 0) {
    id.fail(fmt::format("is {}, not a non-negative integer", id.value().dump()));
  }
  // The library's AddedToken defaults: normalized true, the rest false.
  return AddedToken{.content = entry.string_field("content"),
                    .id = id.value().get<std::int64_t>(),
                    .special = entry.bool_field("special", false),
                    .normalized = entry.bool_field("normalized", true),
                    .lstrip = entry.bool_field("lstrip", false),
                    .rstrip = entry.bool_field("rstrip", false),
                    .single_word = entry.bool_field("single_word", false)};
}

void write_file(const std::filesystem::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) throw TokenizerError(fmt::format("{}: could not be written", file.string()));
}

// Passes each pre-token to the model.
class ModelSink final : public PieceSink {
 public:
  ModelSink(const BpeModel& model, std::vector<std::int64_t>& ids) : model_(model), ids_(ids) {}
  void piece(std::string_view text) override { model_.encode(text, ids_); }

 private:
  const BpeModel& model_;
  std::vector<std::int64_t>& ids_;
};

}  // namespace

struct BpeTokenizer::State {
  std::filesystem::path dir;
  std::string tokenizer_json;
  std::optional<std::string> config_json;
  std::optional<std::string> chat_template_file;

  BpeModel model;
  TextNormalizer normalizer;
  PreTokenizer pre_tokenizer;
  TokenDecoder decoder;
  // Added tokens matched on the raw text (normalized=false) and on the normalized text.
  AddedTokenMatcher raw_matcher;
  AddedTokenMatcher normalized_matcher;
  // The string each added token decodes as: its content, or its normalized content when it is normalized.
  std::unordered_map<std::int64_t, std::string> added_by_id;
  std::unordered_map<std::string, std::int64_t> added_by_content;
  std::unordered_set<std::int64_t> special_ids;
  std::int64_t vocab_size = 0;

  TokenizerConfig config;
  std::optional<std::int64_t> eos_id;
  std::optional<std::int64_t> pad_id;
  std::optional<std::int64_t> bos_id;

  explicit State(BpeModel bpe) : model(std::move(bpe)) {}
};

namespace {

// Reads "added_tokens", checking each id against the one the library gives it on loading: the vocabulary's id for a
// token the model has, else the next of the ids numbered from the vocabulary's entry count up, in file order.
void read_added_tokens(const JsonNode& root, BpeTokenizer::State& state);

}  // namespace

BpeTokenizer::BpeTokenizer(std::unique_ptr<State> state) : state_(std::move(state)) {}
BpeTokenizer::~BpeTokenizer() = default;

std::shared_ptr<const BpeTokenizer> BpeTokenizer::load(const std::filesystem::path& dir) {
  std::string tokenizer_json = read_text_file(dir / "tokenizer.json");
  const auto read_if_present = [&](std::string_view name) {
    std::optional<std::string> text;
    if (std::filesystem::exists(dir / name)) text = read_text_file(dir / name);
    return text;
  };
  return from_texts(std::move(tokenizer_json), read_if_present("tokenizer_config.json"), dir,
                    read_if_present("chat_template.jinja"));
}

std::shared_ptr<const BpeTokenizer> BpeTokenizer::from_texts(std::string tokenizer_json,
                                                             std::optional<std::string> config_json,
                                                             const std::filesystem::path& dir,
                                                             std::optional<std::string> chat_template_jinja) {
  const std::filesystem::path file = dir / "tokenizer.json";
  TokenizerJson parsed = parse_tokenizer_json(tokenizer_json, file);
  const JsonNode root(parsed.root, "", file);
  if (!parsed.root.is_object()) root.fail(fmt::format("is a JSON {}, not an object", parsed.root.type_name()));
  std::unique_ptr<State> state;
  // The component parsers name what they reject; this catches JSON type errors that slip past them.
  try {
    state = std::make_unique<State>(BpeModel::from_json(root.child("model"), parsed));
    state->normalizer = TextNormalizer::from_json(component(root, "normalizer"));
    state->pre_tokenizer = PreTokenizer::from_json(component(root, "pre_tokenizer"), state->model.can_take_raw_bytes());
    if (state->pre_tokenizer.raw_byte_output()) state->model.use_raw_bytes();
    state->decoder = TokenDecoder::from_json(component(root, "decoder"));
    // "post_processor" adds special tokens, which add_special_tokens=False leaves out; "truncation" and "padding" are
    // reset by transformers on every call unless asked for, as the trainer does itself.
    read_added_tokens(root, *state);
  } catch (const Json::exception& e) {
    throw TokenizerError(fmt::format("{}: is malformed: {}", file.string(), e.what()));
  }
  state->dir = dir;
  state->tokenizer_json = std::move(tokenizer_json);

  const std::filesystem::path config_file = dir / "tokenizer_config.json";
  if (config_json) state->config = parse_tokenizer_config(*config_json, config_file);
  state->config_json = std::move(config_json);
  if (chat_template_jinja) state->config.chat_template = *chat_template_jinja;
  state->chat_template_file = std::move(chat_template_jinja);
  auto tokenizer = std::shared_ptr<BpeTokenizer>(new BpeTokenizer(std::move(state)));
  State& s = *tokenizer->state_;
  const auto resolve = [&](const std::optional<std::string>& name, std::string_view role) {
    std::optional<std::int64_t> id;
    if (!name) return id;
    id = tokenizer->token_to_id(*name);
    if (!id) {
      throw TokenizerError(
          fmt::format("{}: {} '{}' is not in the vocabulary of {}", config_file.string(), role, *name, file.string()));
    }
    return id;
  };
  s.eos_id = resolve(s.config.eos_token, "eos_token");
  s.pad_id = resolve(s.config.pad_token, "pad_token");
  s.bos_id = resolve(s.config.bos_token, "bos_token");
  return tokenizer;
}

namespace {

void read_added_tokens(const JsonNode& root, BpeTokenizer::State& state) {
  std::vector<AddedToken> specials;
  std::vector<AddedToken> others;
  std::int64_t largest_added = -1;
  // The library numbers the added tokens the model lacks from the vocabulary's entry count up, in file order.
  std::int64_t next_id = state.model.entry_count();
  if (const std::optional<JsonNode> list = root.optional_child("added_tokens")) {
    if (!list->value().is_array()) list->fail("is not an array");
    for (std::size_t i = 0; i < list->value().size(); ++i) {
      const JsonNode entry = list->element(i);
      AddedToken token = read_added_token(entry);
      // The library ignores added tokens without content.
      if (token.content.empty()) continue;
      if (state.added_by_content.contains(token.content)) {
        entry.fail(fmt::format("'{}' is listed twice", token.content));
      }
      const std::optional<std::int64_t> in_vocab = state.model.token_to_id(token.content);
      const std::int64_t expected = in_vocab ? *in_vocab : next_id++;
      if (token.id != expected) {
        entry.fail(
            fmt::format("'{}' has id {}, but the `tokenizers` library gives it id {} ({}); the ids of "
                        "tokenizer.json must be the ones it loads with",
                        token.content, token.id, expected,
                        in_vocab ? "its id in model.vocab" : "the next id after the vocabulary"));
      }
      largest_added = std::max(largest_added, token.id);
      state.added_by_content.emplace(token.content, token.id);
      state.added_by_id.emplace(token.id, token.content);
      if (token.special) state.special_ids.insert(token.id);
      (token.special ? specials : others).push_back(std::move(token));
    }
  }
  state.vocab_size = std::max(state.model.id_limit(), largest_added + 1);
  // The library's order: special tokens, then the others; each group split by `normalized`.
  std::vector<AddedToken> raw;
  std::vector<AddedToken> normalized;
  std::vector<std::string> raw_patterns;
  std::vector<std::string> normalized_patterns;
  for (std::vector<AddedToken>* group : {&specials, &others}) {
    for (AddedToken& token : *group) {
      if (token.normalized) {
        std::string pattern = token.content;
        state.normalizer.normalize(pattern);
        // The library decodes (and id_to_token gives) such a token as its normalized form.
        state.added_by_id[token.id] = pattern;
        normalized_patterns.push_back(std::move(pattern));
        normalized.push_back(std::move(token));
      } else {
        raw_patterns.push_back(token.content);
        raw.push_back(std::move(token));
      }
    }
  }
  state.raw_matcher = AddedTokenMatcher(std::move(raw), raw_patterns);
  state.normalized_matcher = AddedTokenMatcher(std::move(normalized), normalized_patterns);
}

}  // namespace

std::vector<std::int64_t> BpeTokenizer::encode(std::string_view text) const {
  std::string repaired;
  if (!utf8::is_valid(text)) {
    repaired = utf8::repair(text);
    text = repaired;
  }
  std::vector<std::int64_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (state_->raw_matcher.empty()) {
    encode_span(text, /*at_text_start=*/true, ids);
    return ids;
  }
  std::vector<TextSegment> segments;
  state_->raw_matcher.split(text, segments);
  for (const TextSegment& segment : segments) {
    if (segment.id >= 0) {
      ids.push_back(segment.id);
    } else {
      encode_span(text.substr(segment.start, segment.end - segment.start), segment.start == 0, ids);
    }
  }
  return ids;
}

void BpeTokenizer::encode_span(std::string_view span, bool at_text_start, std::vector<std::int64_t>& ids) const {
  if (span.empty()) return;
  const State& s = *state_;
  std::string normalized;
  if (!s.normalizer.is_identity()) {
    normalized.assign(span);
    s.normalizer.normalize(normalized);
    span = normalized;
  }
  ModelSink sink(s.model, ids);
  PreTokenizer::Scratch scratch;
  if (s.normalized_matcher.empty()) {
    s.pre_tokenizer.split(span, at_text_start, sink, scratch);
    return;
  }
  std::vector<TextSegment> segments;
  s.normalized_matcher.split(span, segments);
  for (const TextSegment& segment : segments) {
    if (segment.id >= 0) {
      ids.push_back(segment.id);
    } else {
      s.pre_tokenizer.split(span.substr(segment.start, segment.end - segment.start),
                            at_text_start && segment.start == 0, sink, scratch);
    }
  }
}

std::string BpeTokenizer::decode(std::span<const std::int64_t> ids, bool skip_special_tokens) const {
  const State& s = *state_;
  std::vector<std::string_view> tokens;
  tokens.reserve(ids.size());
  for (const std::int64_t id : ids) {
    if (id < 0 || id >= s.vocab_size) {
      throw TokenizerError(fmt::format("BpeTokenizer: token id {} is out of range [0, {})", id, s.vocab_size));
    }
    if (skip_special_tokens && s.special_ids.contains(id)) continue;
    if (const auto added = s.added_by_id.find(id); added != s.added_by_id.end()) {
      tokens.push_back(added->second);
    } else if (const std::string* token = s.model.token(id)) {
      tokens.push_back(*token);
    }
    // An id in range that names no token (a gap in the vocabulary) is skipped, as the library skips it.
  }
  return s.decoder.decode(tokens);
}

std::int64_t BpeTokenizer::vocab_size() const { return state_->vocab_size; }

std::optional<std::int64_t> BpeTokenizer::token_to_id(std::string_view token) const {
  if (const auto it = state_->added_by_content.find(std::string(token)); it != state_->added_by_content.end()) {
    return it->second;
  }
  return state_->model.token_to_id(token);
}

std::string BpeTokenizer::id_to_token(std::int64_t id) const {
  if (const auto it = state_->added_by_id.find(id); it != state_->added_by_id.end()) return it->second;
  if (const std::string* token = state_->model.token(id)) return *token;
  if (id < 0 || id >= state_->vocab_size) {
    throw TokenizerError(fmt::format("BpeTokenizer: token id {} is out of range [0, {})", id, state_->vocab_size));
  }
  throw TokenizerError(
      fmt::format("BpeTokenizer: no token has id {} (a gap in {})", id, (state_->dir / "tokenizer.json").string()));
}

bool BpeTokenizer::is_special(std::int64_t id) const { return state_->special_ids.contains(id); }

std::optional<std::int64_t> BpeTokenizer::eos_id() const { return state_->eos_id; }
std::optional<std::int64_t> BpeTokenizer::pad_id() const { return state_->pad_id; }
std::optional<std::int64_t> BpeTokenizer::bos_id() const { return state_->bos_id; }

std::optional<std::int64_t> BpeTokenizer::prompt_bos_id() const {
  return state_->config.add_bos_token ? state_->bos_id : std::nullopt;
}
std::optional<std::int64_t> BpeTokenizer::model_max_length() const { return state_->config.model_max_length; }
const std::string& BpeTokenizer::chat_template() const { return state_->config.chat_template; }

void BpeTokenizer::save(const std::filesystem::path& dir) const {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) throw TokenizerError(fmt::format("{}: cannot create the folder: {}", dir.string(), error.message()));
  write_file(dir / "tokenizer.json", state_->tokenizer_json);
  write_file(dir / "tokenizer_config.json",
             state_->config_json.value_or("{\n  \"tokenizer_class\": \"PreTrainedTokenizerFast\"\n}\n"));
  if (state_->chat_template_file) write_file(dir / "chat_template.jinja", *state_->chat_template_file);
}

}  // namespace grpo::policy
