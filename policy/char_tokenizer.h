// The embedded policy's tokenizer: one token per character plus a few added tokens (<think>, <answer>, ...),
// saved and loaded as a Hugging Face tokenizer.json that the `tokenizers` library reads with the same results.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "policy/tokenizer.h"

namespace grpo::policy {

// Encodes as the Hugging Face `tokenizers` pipeline does for this family (no normalizer, a BPE model without
// merges or a per-character WordLevel model, Fuse decoder) with add_special_tokens=False: added tokens are split
// out first (leftmost, then longest), every other character becomes its own token or, when it is not in the
// vocabulary, the unk token.
class CharTokenizer final : public Tokenizer {
 public:
  // Ids 0..6: "<|pad|>", "<|endoftext|>" (EOS), "<unk>", then the reasoning tags "<think>", "</think>",
  // "<answer>", "</answer>" (added but not special: the model writes them as text); then the printable ASCII
  // characters 0x20..0x7E and "\n". 103 tokens.
  static CharTokenizer make_embedded();

  // Reads dir/tokenizer.json, and dir/tokenizer_config.json when present for the eos/pad token names and
  // model_max_length. Throws TokenizerError naming the file and the unsupported or malformed component.
  static CharTokenizer load(const std::filesystem::path& dir);

  // Writes dir/tokenizer.json (always the BPE form) and dir/tokenizer_config.json (tokenizer_class
  // "PreTrainedTokenizerFast", the eos/pad/unk names, model_max_length or transformers' 1e30 when unset).
  void save(const std::filesystem::path& dir) const override;
  // The embedded tokenizer has no chat format.
  const std::string& chat_template() const override;

  std::vector<std::int64_t> encode(std::string_view text) const override;
  // Concatenates the tokens of `ids`, leaving out special tokens (pad, EOS, unk) when asked.
  // Throws TokenizerError for an id outside [0, vocab_size()).
  std::string decode(std::span<const std::int64_t> ids, bool skip_special_tokens = false) const override;

  // Always set for this tokenizer (the embedded one and every file it loads name eos and pad tokens).
  std::optional<std::int64_t> eos_id() const override { return eos_id_; }
  std::optional<std::int64_t> pad_id() const override { return pad_id_; }
  std::int64_t unk_id() const { return unk_id_; }
  std::int64_t vocab_size() const override { return static_cast<std::int64_t>(tokens_.size()); }
  std::optional<std::int64_t> token_to_id(std::string_view token) const override;
  // Throws TokenizerError for an id outside [0, vocab_size()).
  std::string id_to_token(std::int64_t id) const override;
  // Whether `id` is a special added token (left out by decode(..., skip_special_tokens=true)); false out of range.
  bool is_special(std::int64_t id) const override;

  // The longest sequence the model takes, written to tokenizer_config.json; unset means unknown.
  std::optional<std::int64_t> model_max_length() const override { return model_max_length_; }
  void set_model_max_length(std::optional<std::int64_t> length) { model_max_length_ = length; }

 private:
  // Lets unordered_map look up a std::string_view without building a std::string.
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
  };

  struct AddedToken {
    std::string content;
    std::int64_t id = 0;
    bool special = false;
    // The `tokenizers` library splits non-normalized added tokens out of the text before normalized ones.
    bool normalized = false;
  };

  // `tokens[id]` is the token of each id (all distinct); `added` lists which of them are added tokens.
  CharTokenizer(std::vector<std::string> tokens, std::vector<AddedToken> added, std::int64_t unk_id,
                std::int64_t eos_id, std::int64_t pad_id, bool fuse_unk);

  // One entry of tokenizer.json's "added_tokens", checked against the model vocab.
  static AddedToken read_added_token(const std::filesystem::path& file, const nlohmann::json& entry,
                                     const nlohmann::json& vocab);

  // Appends the ids of `text`, from which every added token has been split out, one character at a time.
  void encode_characters(std::string_view text, std::vector<std::int64_t>& ids) const;
  // Splits out the added tokens whose `normalized` flag equals `normalized`; other text goes to the next pass.
  void encode_pass(std::string_view text, bool normalized, std::vector<std::int64_t>& ids) const;

  std::vector<std::string> tokens_;
  std::unordered_map<std::string, std::int64_t, StringHash, std::equal_to<>> ids_;
  std::vector<AddedToken> added_;
  std::vector<bool> special_;
  // Ids of single-byte (ASCII) characters, -1 where absent: the common case of encode without hashing.
  std::array<std::int64_t, 128> ascii_ids_{};
  std::int64_t unk_id_ = 0;
  std::int64_t eos_id_ = 0;
  std::int64_t pad_id_ = 0;
  // The BPE option that merges a run of unknown characters into one unk token.
  bool fuse_unk_ = false;
  std::optional<std::int64_t> model_max_length_;
};

}  // namespace grpo::policy
