// The "decoder" of tokenizer.json: ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace and Sequence, each a
// step over the list of token strings as the library's decode_chain; the result is the steps' strings joined.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/tokenizer_json.h"
#include "policy/unicode_regex.h"

namespace grpo::policy {

class TokenDecoder {
 public:
  // No decoder: the library joins the tokens with spaces.
  TokenDecoder() = default;
  // From tokenizer.json's "decoder" (null: none). Throws TokenizerError naming an unsupported or malformed component.
  static TokenDecoder from_json(const JsonNode& node);

  // The text of `tokens`; invalid UTF-8 that byte-level tokens spell (a cut multi-byte character) becomes U+FFFD as
  // Python's errors="replace" does.
  std::string decode(const std::vector<std::string_view>& tokens) const;

 private:
  enum class Kind { kByteLevel, kReplace, kByteFallback, kFuse, kStrip, kMetaspace };
  struct Step {
    Kind kind = Kind::kFuse;
    // Replace: pattern -> content. Strip: content is the character, start/stop how many to strip at each end.
    // Metaspace: content is the replacement character, prepend whether a prefix was added (prepend_scheme != never).
    std::optional<UnicodeRegex> pattern;
    std::string content;
    std::size_t start = 0;
    std::size_t stop = 0;
    bool prepend = true;
  };

  static void append_steps(const JsonNode& node, std::vector<Step>& steps);
  static void apply(const Step& step, std::vector<std::string>& tokens);

  std::vector<Step> steps_;
  bool present_ = false;
};

}  // namespace grpo::policy
