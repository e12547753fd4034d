// What the trainer reads from a Hugging Face tokenizer_config.json: the names of the EOS, padding and BOS tokens,
// model_max_length and the chat template.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace grpo::policy {

struct TokenizerConfig {
  // Token contents, given in the file as a string or an AddedToken object {"content": ...}; nullopt when absent/null.
  std::optional<std::string> eos_token;
  std::optional<std::string> pad_token;
  std::optional<std::string> bos_token;
  // add_bos_token: transformers' slow-tokenizer-compatible classes (LlamaTokenizerFast, as DeepSeek-R1 distills use)
  // put bos_token before every encoded text when it is true.
  bool add_bos_token = false;
  // nullopt when absent or at least 1e18 (transformers writes 1e30 for "no limit").
  std::optional<std::int64_t> model_max_length;
  // The chat_template string, or the one named "default" when the file lists {name, template} objects; empty when
  // there is none.
  std::string chat_template;
};

// Parses the text of tokenizer_config.json; `file` names it in errors. Throws TokenizerError saying which field is
// malformed.
TokenizerConfig parse_tokenizer_config(const std::string& text, const std::filesystem::path& file);

}  // namespace grpo::policy
