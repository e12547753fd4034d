// The "normalizer" of tokenizer.json: Unicode normalization forms (ICU), Lowercase, StripAccents, Replace, Prepend,
// Strip and Sequence, each applied as the `tokenizers` library applies it to one span of text.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "policy/tokenizer_json.h"
#include "policy/unicode_regex.h"

namespace grpo::policy {

class TextNormalizer {
 public:
  // The identity.
  TextNormalizer() = default;
  // From tokenizer.json's "normalizer" (null is the identity). Throws TokenizerError naming the component that is
  // malformed or not supported.
  static TextNormalizer from_json(const JsonNode& node);

  bool is_identity() const { return steps_.empty(); }
  // Normalizes valid UTF-8 `text` in place.
  void normalize(std::string& text) const;

 private:
  enum class Kind { kNfc, kNfd, kNfkc, kNfkd, kLowercase, kStripAccents, kReplace, kPrepend, kStrip };
  struct Step {
    Kind kind = Kind::kNfc;
    // Replace: the pattern and what each match becomes; Prepend: `content` is the prefix.
    std::optional<UnicodeRegex> pattern;
    std::string content;
    // Strip: which ends lose their White_Space characters.
    bool strip_left = false;
    bool strip_right = false;
  };

  static void append_steps(const JsonNode& node, std::vector<Step>& steps);
  static void apply(const Step& step, std::string& text);

  std::vector<Step> steps_;
};

}  // namespace grpo::policy
