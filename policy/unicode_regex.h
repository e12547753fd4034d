// The regular expressions of tokenizer.json (Split pre-tokenizer, Replace normalizer and decoder), written in the
// Oniguruma dialect the `tokenizers` library runs them with, translated to PCRE2 (UTF, UCP, JIT) with the same
// meaning, and matched with the same iteration rule as the library's onig find_iter.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct pcre2_real_code_8;

namespace grpo::policy {

class UnicodeRegex {
 public:
  struct Match {
    std::size_t start = 0;
    std::size_t end = 0;
  };

  // Compiles an Oniguruma (Ruby syntax) pattern. Throws std::invalid_argument saying what is wrong: a PCRE2 compile
  // error with its offset, or a construct whose Oniguruma meaning PCRE2 cannot express (\w, \b and their negations,
  // nested classes, class intersection &&).
  static UnicodeRegex oniguruma(std::string_view pattern);
  // Matches `text` itself (the {"String": ...} patterns).
  static UnicodeRegex literal(std::string_view text);

  // The PCRE2 pattern that means what the Oniguruma `pattern` means: Oniguruma's \s is exactly White_Space, its \h is
  // a hex digit, \uHHHH is a code point, and its Unicode tables are newer than PCRE2's, so \p{..} and \d get the code
  // points PCRE2 lacks (policy/unicode_regex_table.inc, made by scripts/make_regex_unicode_table.py).
  static std::string translate_oniguruma(std::string_view pattern);

  // Appends the matches in `text` (valid UTF-8), leftmost first, each search starting where the previous match
  // ended; an empty match right at the end of the previous one is skipped and the search moves on one character.
  void find_all(std::string_view text, std::vector<Match>& matches) const;

  const std::string& pattern() const { return pattern_; }

 private:
  UnicodeRegex(std::string pattern, std::shared_ptr<pcre2_real_code_8> code)
      : pattern_(std::move(pattern)), code_(std::move(code)) {}

  static UnicodeRegex compile(std::string pcre2_pattern, std::string_view source, bool literal);

  std::string pattern_;
  std::shared_ptr<pcre2_real_code_8> code_;
};

}  // namespace grpo::policy
