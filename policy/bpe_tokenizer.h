// A Hugging Face tokenizer.json with a BPE model (Qwen, DeepSeek, Llama 3, GPT-2 style byte-level BPE, and the
// SentencePiece-style BPE with byte fallback), encoding and decoding as the `tokenizers` library does with
// add_special_tokens=False. The pipeline: added tokens split out of the raw text, normalizer, added tokens with
// normalized=true split out of the normalized text, pre-tokenizer, BPE model; decode runs the decoder.
//
//   auto tokenizer = BpeTokenizer::load("checkpoints/qwen3");
//   std::vector<std::int64_t> ids = tokenizer->encode("<|im_start|>user\nHi<|im_end|>");
//   std::string text = tokenizer->decode(ids);  // the text again
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "policy/tokenizer.h"

namespace grpo::policy {

class BpeTokenizer final : public Tokenizer {
 public:
  // Reads dir/tokenizer.json and, when present, dir/tokenizer_config.json and dir/chat_template.jinja (which, as in
  // transformers, takes the place of the config's chat_template). Throws TokenizerError naming the file and the
  // component that is malformed or not supported (the message lists what is).
  static std::shared_ptr<const BpeTokenizer> load(const std::filesystem::path& dir);
  // The same from the files' texts (nullopt: the file is absent); `dir` only names the files in messages.
  static std::shared_ptr<const BpeTokenizer> from_texts(std::string tokenizer_json,
                                                        std::optional<std::string> config_json,
                                                        const std::filesystem::path& dir,
                                                        std::optional<std::string> chat_template_jinja = {});

  ~BpeTokenizer() override;
  BpeTokenizer(const BpeTokenizer&) = delete;
  BpeTokenizer& operator=(const BpeTokenizer&) = delete;

  // Thread-safe. Text that is not valid UTF-8 is first repaired as Python's bytes.decode(errors="replace") would
  // (each ill-formed sequence becomes U+FFFD), since the library only takes Unicode strings.
  std::vector<std::int64_t> encode(std::string_view text) const override;
  std::string decode(std::span<const std::int64_t> ids, bool skip_special_tokens = false) const override;

  std::int64_t vocab_size() const override;
  std::optional<std::int64_t> token_to_id(std::string_view token) const override;
  // As the library's id_to_token: an added token with normalized=true comes back normalized (so "Ｄｏｇ" under NFKC
  // is "Dog"), which is also how decode() spells it.
  std::string id_to_token(std::int64_t id) const override;
  bool is_special(std::int64_t id) const override;

  std::optional<std::int64_t> eos_id() const override;
  std::optional<std::int64_t> pad_id() const override;
  std::optional<std::int64_t> bos_id() const;
  std::optional<std::int64_t> prompt_bos_id() const override;
  std::optional<std::int64_t> model_max_length() const override;
  // chat_template.jinja, else tokenizer_config.json's chat_template (the "default" one when it lists several); empty
  // when there is none.
  const std::string& chat_template() const override;

  // Writes the files exactly as they were read (tokenizer.json, tokenizer_config.json, chat_template.jinja when it was
  // read), so a checkpoint carries its base tokenizer unchanged. Without a tokenizer_config.json to copy, writes
  // {"tokenizer_class": "PreTrainedTokenizerFast"} so that transformers can load the folder.
  void save(const std::filesystem::path& dir) const override;

  // The loaded components; defined in bpe_tokenizer.cpp.
  struct State;

 private:
  explicit BpeTokenizer(std::unique_ptr<State> state);

  // Encodes a span between raw-text added tokens: normalize, split out normalized added tokens, pre-tokenize, BPE.
  void encode_span(std::string_view span, bool at_text_start, std::vector<std::int64_t>& ids) const;

  std::unique_ptr<State> state_;
};

}  // namespace grpo::policy
