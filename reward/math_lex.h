// Tokens of LaTeX-ish math answers ("\frac{1}{2}", "3 1/2", "1,000", "x \ge 3", "5\text{ cm}"): the lexer reads
// numbers with their separators, commands, text blocks and unit words, so that the parser sees only structure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace grpo::reward {

enum class MathTokenKind {
  kNumber,     // digits (separators removed), frac_digits, exponent10, is_decimal
  kLetter,     // one variable letter, or a Greek letter / unknown command used as a name
  kCommand,    // a command by canonical name: "frac", "sqrt", "pi", "le", "cdot", "%", "{", "}", "\\", "begin", ...
  kText,       // the content of \text{...}, \mathrm{...} and friends
  kUnit,       // a unit word (cm, dollars, degrees): ignored after a value
  kSeparator,  // "and" / "or" between answers
  kChar,       // punctuation: + - * / ^ _ ( ) [ ] { } , ; = < > ! | &
};

struct MathToken {
  MathTokenKind kind = MathTokenKind::kChar;
  std::string text = {};  // kNumber: the digits; kLetter: the name; kCommand: the name; kText: the content
  bool space_before = false;
  // kNumber only
  std::int32_t frac_digits = 0;
  std::int32_t exponent10 = 0;
  bool is_decimal = false;
};

struct MathLexResult {
  std::vector<MathToken> tokens;
  std::string error;  // non-empty when the text cannot be tokenised; says what and where
};

// Linear in the input; never throws except std::bad_alloc. Bytes outside ASCII are accepted only for the few math
// symbols models write in Unicode (−, ×, ÷, π, ∞, ≤, ≥, ≠, √, °, ±).
MathLexResult lex_math(std::string_view text);

}  // namespace grpo::reward
