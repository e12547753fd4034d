// What the trainer, the rollout engine and the evaluators need of a tokenizer, whichever kind the checkpoint
// carries: the embedded character-level one (policy/char_tokenizer.h) or a Hugging Face byte-level BPE one
// (policy/bpe_tokenizer.h). load_tokenizer() picks the implementation from tokenizer.json.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace grpo::policy {

// A tokenizer file that cannot be read or uses a component we do not implement, or an invalid token id. The
// message names the file (or the id) and the component that was wrong.
class TokenizerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // The ids of `text` as the Hugging Face `tokenizers` pipeline gives them with add_special_tokens=False: no BOS
  // or EOS is added, and added tokens written inside the text ("<|im_start|>", "<think>") are matched as such.
  virtual std::vector<std::int64_t> encode(std::string_view text) const = 0;
  // The text of `ids`, leaving out special tokens when asked. Throws TokenizerError for an id outside
  // [0, vocab_size()).
  virtual std::string decode(std::span<const std::int64_t> ids, bool skip_special_tokens = false) const = 0;

  // One more than the largest id (model vocabulary and added tokens together).
  virtual std::int64_t vocab_size() const = 0;
  virtual std::optional<std::int64_t> token_to_id(std::string_view token) const = 0;
  // The token's string as tokenizer.json writes it (byte-level BPE tokens are in the byte-to-unicode alphabet).
  // Throws TokenizerError for an id outside [0, vocab_size()).
  virtual std::string id_to_token(std::int64_t id) const = 0;
  // Whether `id` is a special added token (left out by decode(..., skip_special_tokens=true)); false out of range.
  virtual bool is_special(std::int64_t id) const = 0;

  // The end-of-sequence and padding ids from tokenizer_config.json (eos_token, pad_token); nullopt when the files
  // name none. A checkpoint's generation_config.json may add further stop ids (see policy/checkpoint.h).
  virtual std::optional<std::int64_t> eos_id() const = 0;
  virtual std::optional<std::int64_t> pad_id() const = 0;
  // The id transformers puts before a prompt it encodes with add_special_tokens=True (tokenizer_config.json's
  // add_bos_token with its bos_token), which models trained that way expect; nullopt when none is added.
  virtual std::optional<std::int64_t> prompt_bos_id() const { return std::nullopt; }
  // tokenizer_config.json's model_max_length; nullopt when unset or transformers' "unbounded" 1e30.
  virtual std::optional<std::int64_t> model_max_length() const = 0;

  // tokenizer_config.json's chat_template (Jinja source), empty when the files have none.
  virtual const std::string& chat_template() const = 0;

  // Writes dir/tokenizer.json and dir/tokenizer_config.json so that this class and transformers'
  // AutoTokenizer.from_pretrained(dir) read back the same tokenizer.
  virtual void save(const std::filesystem::path& dir) const = 0;
};

// Reads dir/tokenizer.json (+ tokenizer_config.json): a BPE model with merges or a byte-level pre-tokenizer gives a
// BpeTokenizer, the embedded character-level layout a CharTokenizer. Throws TokenizerError naming the file and
// the unsupported or malformed component.
std::shared_ptr<const Tokenizer> load_tokenizer(const std::filesystem::path& dir);

}  // namespace grpo::policy
