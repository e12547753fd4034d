// Tokeniser for math answers: numbers with thousands separators, decimals and exponents; LaTeX commands mapped to
// canonical names; text blocks; unit and connective words; the few Unicode symbols models emit.
#include "reward/math_lex.h"

#include <array>
#include <optional>
#include <utility>

#include <fmt/format.h>

namespace grpo::reward {
namespace {

constexpr std::size_t kMaxNumberDigits = 10'000;  // longer literals are hostile, not answers

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::string lower(std::string_view text) {
  std::string result(text);
  for (char& c : result) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return result;
}

template <std::size_t N>
bool contains(const std::array<std::string_view, N>& table, std::string_view word) {
  for (const std::string_view entry : table) {
    if (entry == word) return true;
  }
  return false;
}

// Commands that only change spacing or sizing.
constexpr auto kIgnoredCommands = std::to_array<std::string_view>(
    {"left",  "right",  "big",      "Big",       "bigg",         "Bigg",      "bigl",        "bigr",
     "Bigl",  "Bigr",   "biggl",    "biggr",     "displaystyle", "textstyle", "scriptstyle", "quad",
     "qquad", "limits", "nolimits", "mathstrut", "strut",        "hfill",     "medspace",    "thinspace"});
// Commands whose braced argument is ordinary math.
constexpr auto kTransparentCommands = std::to_array<std::string_view>(
    {"boxed", "fbox", "mathbf", "mathit", "bm", "boldsymbol", "mathsf", "mathcal", "mathbb", "pmb", "underline"});
// Commands whose braced argument is text (units, words, choices).
constexpr auto kTextCommands =
    std::to_array<std::string_view>({"text", "textbf", "textit", "textrm", "texttt", "textsf", "textnormal", "mbox",
                                     "mathrm", "hbox", "operatorname", "textup"});
constexpr auto kFunctions =
    std::to_array<std::string_view>({"sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh",
                                     "cosh", "tanh", "ln", "log", "exp", "sqrt", "lg"});
constexpr auto kGreek = std::to_array<std::string_view>(
    {"alpha", "beta",   "gamma", "delta", "epsilon", "varepsilon", "zeta",   "eta",   "theta",   "vartheta", "iota",
     "kappa", "lambda", "mu",    "nu",    "xi",      "rho",        "sigma",  "tau",   "upsilon", "phi",      "varphi",
     "chi",   "psi",    "omega", "Gamma", "Delta",   "Theta",      "Lambda", "Sigma", "Phi",     "Psi",      "Omega"});
// Unit words dropped after a value. Two letters or more: single letters are variables.
constexpr auto kUnitWords = std::to_array<std::string_view>(
    {"cm",    "mm",     "km",      "meter", "meters", "metre",  "metres",  "inch",  "inches", "ft",      "feet",
     "foot",  "yard",   "yards",   "yd",    "mile",   "miles",  "kg",      "gram",  "grams",  "lb",      "lbs",
     "pound", "pounds", "oz",      "ounce", "ounces", "ton",    "tons",    "liter", "liters", "litre",   "litres",
     "ml",    "dollar", "dollars", "cent",  "cents",  "usd",    "euros",   "unit",  "units",  "degree",  "degrees",
     "deg",   "hour",   "hours",   "hr",    "hrs",    "minute", "minutes", "min",   "mins",   "seconds", "day",
     "days",  "week",   "weeks",   "year",  "years",  "mph",    "square"});

// Canonical names for synonyms; a name not listed maps to itself.
std::string_view canonical_command(std::string_view name) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 26> kAliases = {{
      {"dfrac", "frac"},
      {"tfrac", "frac"},
      {"cfrac", "frac"},
      {"leq", "le"},
      {"leqslant", "le"},
      {"geq", "ge"},
      {"geqslant", "ge"},
      {"neq", "ne"},
      {"times", "cdot"},
      {"ast", "cdot"},
      {"infin", "infty"},
      {"infinity", "infty"},
      {"varnothing", "emptyset"},
      {"lbrace", "{"},
      {"rbrace", "}"},
      {"degree", "circ"},
      {"mp", "pm"},
      {"approx", "eq"},
      {"equiv", "eq"},
      {"lvert", "|"},
      {"rvert", "|"},
      {"vert", "|"},
      {"mid", "|"},
      {"lbrack", "["},
      {"rbrack", "]"},
      {"colon", ":"},
  }};
  for (const auto& [alias, name_for] : kAliases) {
    if (alias == name) return name_for;
  }
  return name;
}

// (UTF-8 bytes, token kind, token text) for the Unicode math symbols accepted.
struct UnicodeSymbol {
  std::string_view bytes;
  MathTokenKind kind;
  std::string_view text;
};
constexpr std::array<UnicodeSymbol, 17> kUnicodeSymbols = {{
    {"\xe2\x88\x92", MathTokenKind::kChar, "-"},
    {"\xe2\x80\x93", MathTokenKind::kChar, "-"},
    {"\xc3\x97", MathTokenKind::kCommand, "cdot"},
    {"\xc2\xb7", MathTokenKind::kCommand, "cdot"},
    {"\xc3\xb7", MathTokenKind::kCommand, "div"},
    {"\xcf\x80", MathTokenKind::kCommand, "pi"},
    {"\xe2\x88\x9e", MathTokenKind::kCommand, "infty"},
    {"\xe2\x89\xa4", MathTokenKind::kCommand, "le"},
    {"\xe2\x89\xa5", MathTokenKind::kCommand, "ge"},
    {"\xe2\x89\xa0", MathTokenKind::kCommand, "ne"},
    {"\xe2\x88\x9a", MathTokenKind::kCommand, "sqrt"},
    {"\xc2\xb0", MathTokenKind::kCommand, "circ"},
    {"\xc2\xb1", MathTokenKind::kCommand, "pm"},
    {"\xe2\x88\xaa", MathTokenKind::kCommand, "cup"},
    {"\xe2\x88\x88", MathTokenKind::kCommand, "in"},
    {"\xc2\xb2", MathTokenKind::kNumber, "2"},
    {"\xc2\xb3", MathTokenKind::kNumber, "3"},
}};

class Lexer {
 public:
  explicit Lexer(std::string_view text) : text_(text) {}

  MathLexResult run() {
    while (pos_ < text_.size() && out_.error.empty()) step();
    if (!out_.error.empty()) out_.tokens.clear();
    return std::move(out_);
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
  int bracket_depth_ = 0;  // thousands separators ',' and ' ' count only outside brackets: "(100,200)" is a pair
  bool space_ = false;
  MathLexResult out_;

  char at(std::size_t i) const { return i < text_.size() ? text_[i] : '\0'; }
  bool starts_with(std::string_view prefix) const { return text_.substr(pos_).starts_with(prefix); }

  void fail(std::string_view what) { out_.error = fmt::format("{} at byte {}", what, pos_); }

  void emit(MathTokenKind kind, std::string text) {
    out_.tokens.push_back({.kind = kind, .text = std::move(text), .space_before = space_});
    space_ = false;
  }

  void step() {
    const char c = text_[pos_];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '~') {
      space_ = true;
      ++pos_;
    } else if (is_digit(c) || (c == '.' && is_digit(at(pos_ + 1)))) {
      lex_number();
    } else if (c == '\\') {
      lex_command();
    } else if (is_letter(c)) {
      lex_letters();
    } else if (static_cast<unsigned char>(c) >= 0x80) {
      lex_unicode();
    } else {
      lex_punctuation(c);
    }
  }

  // After an integer part of one to three digits: "1,000", "1{,}000", "1\,000", "1 000", and the MATH dataset's
  // "10,\!000" (a comma then a negative thin space, sometimes followed by a space). Returns the length of the
  // separator when one is followed by exactly three digits, else 0.
  std::size_t thousands_separator_length() const {
    std::size_t length = 0;
    if (starts_with("{,}")) {
      length = 3;
    } else if (starts_with(",\\!")) {
      length = at(pos_ + 3) == ' ' ? 4 : 3;
    } else if (starts_with("\\,")) {
      length = 2;
    } else if ((at(pos_) == ',' || at(pos_) == ' ') && bracket_depth_ == 0) {
      length = 1;
    } else {
      return 0;
    }
    const std::size_t group = pos_ + length;
    const bool three_digits =
        is_digit(at(group)) && is_digit(at(group + 1)) && is_digit(at(group + 2)) && !is_digit(at(group + 3));
    return three_digits && at(group + 3) != '/' ? length : 0;
  }

  void read_digits(std::string& digits) {
    while (pos_ < text_.size() && is_digit(text_[pos_])) digits += text_[pos_++];
  }

  void lex_number() {
    MathToken token{.kind = MathTokenKind::kNumber, .space_before = space_};
    space_ = false;
    std::string& digits = token.text;
    read_digits(digits);
    if (!digits.empty() && digits.size() <= 3) {
      for (std::size_t length = thousands_separator_length(); length != 0; length = thousands_separator_length()) {
        pos_ += length;
        read_digits(digits);
      }
    }
    if (at(pos_) == '.' && is_digit(at(pos_ + 1))) {
      ++pos_;
      const std::size_t before = digits.size();
      read_digits(digits);
      token.frac_digits = static_cast<std::int32_t>(std::min<std::size_t>(digits.size() - before, kMaxNumberDigits));
      token.is_decimal = true;
    }
    if (!lex_exponent(token)) return;
    if (digits.size() > kMaxNumberDigits) return fail(fmt::format("number of {} digits is too long", digits.size()));
    out_.tokens.push_back(std::move(token));
  }

  // "1.5e3", "2E-7": an exponent only when the letter is followed by digits and then not by another letter, so that
  // "2e" stays 2·e. Returns false after a failure.
  bool lex_exponent(MathToken& token) {
    if (at(pos_) != 'e' && at(pos_) != 'E') return true;
    std::size_t end = pos_ + 1;
    const bool negative = at(end) == '-';
    if (at(end) == '+' || at(end) == '-') ++end;
    const std::size_t digits_begin = end;
    while (is_digit(at(end))) ++end;
    if (end == digits_begin || is_letter(at(end))) return true;
    if (end - digits_begin > 7) {
      fail("exponent too long");
      return false;
    }
    std::int32_t exponent = 0;
    for (std::size_t i = digits_begin; i < end; ++i) exponent = exponent * 10 + (text_[i] - '0');
    token.exponent10 = negative ? -exponent : exponent;
    token.is_decimal = true;
    pos_ = end;
    return true;
  }

  // The content of a braced argument starting at pos_ (which must be '{'), braces matched, escapes skipped.
  std::optional<std::string_view> read_braced() {
    while (at(pos_) == ' ') ++pos_;
    if (at(pos_) != '{') return std::nullopt;
    const std::size_t begin = pos_ + 1;
    int depth = 0;
    for (std::size_t i = pos_; i < text_.size(); ++i) {
      if (text_[i] == '\\') {
        ++i;
      } else if (text_[i] == '{') {
        ++depth;
      } else if (text_[i] == '}' && --depth == 0) {
        pos_ = i + 1;
        return text_.substr(begin, i - begin);
      }
    }
    return std::nullopt;
  }

  void lex_command();
  void lex_named_command(std::string_view name);
  void lex_text_block(std::string_view content);
  void lex_environment(std::string_view which);
  void lex_letters();
  void lex_unicode();
  void lex_punctuation(char c);
};

void Lexer::lex_command() {
  ++pos_;  // the backslash
  if (is_letter(at(pos_))) {
    const std::size_t begin = pos_;
    while (is_letter(at(pos_))) ++pos_;
    return lex_named_command(text_.substr(begin, pos_ - begin));
  }
  const char c = at(pos_);
  ++pos_;
  switch (c) {
    case ',':
    case ';':
    case ':':
    case '!':
    case ' ':
    case '$':
    case '(':
    case ')':
    case '[':
    case ']':
    case '_':
      space_ = true;  // spacing, escaped dollars and math delimiters carry no meaning here
      return;
    case '{':
    case '}':
    case '%':
    case '|':
      if (c == '{') ++bracket_depth_;
      if (c == '}' && bracket_depth_ > 0) --bracket_depth_;
      return emit(c == '|' ? MathTokenKind::kChar : MathTokenKind::kCommand, std::string(1, c));
    case '\\':
      return emit(MathTokenKind::kCommand, "\\\\");
    default:
      return fail(fmt::format("unsupported escape '\\{}'", c == '\0' ? std::string("end") : std::string(1, c)));
  }
}

void Lexer::lex_named_command(std::string_view name) {
  if (contains(kIgnoredCommands, name)) {
    if (name == "left" || name == "right") {
      if (at(pos_) == '.') ++pos_;  // \left. is an invisible delimiter
    }
    space_ = true;
    return;
  }
  if (contains(kTransparentCommands, name)) return;
  if (contains(kTextCommands, name)) {
    const std::optional<std::string_view> content = read_braced();
    if (!content) return fail(fmt::format("\\{} without a braced argument", name));
    return lex_text_block(*content);
  }
  if (name == "begin" || name == "end") return lex_environment(name);
  if (contains(kGreek, name)) return emit(MathTokenKind::kLetter, std::string(name));
  const std::string_view canonical = canonical_command(name);
  if (canonical == "eq") return emit(MathTokenKind::kChar, "=");
  if (canonical == "lt" || canonical == "gt") return emit(MathTokenKind::kChar, canonical == "lt" ? "<" : ">");
  if (canonical == "|" || canonical == "[" || canonical == "]" || canonical == ":") {
    return emit(MathTokenKind::kChar, std::string(canonical));
  }
  if (canonical == "{") ++bracket_depth_;
  if (canonical == "}" && bracket_depth_ > 0) --bracket_depth_;
  emit(MathTokenKind::kCommand, std::string(canonical));
}

void Lexer::lex_text_block(std::string_view content) {
  std::size_t begin = 0;
  std::size_t end = content.size();
  while (begin < end && (content[begin] == ' ' || content[begin] == '~')) ++begin;
  while (end > begin && (content[end - 1] == ' ' || content[end - 1] == '~')) --end;
  const std::string word = lower(content.substr(begin, end - begin));
  if (word.empty()) {
    space_ = true;
  } else if (word == "and" || word == "or" || word == "," || word == ", and") {
    emit(MathTokenKind::kSeparator, word);
  } else if (word == "%" || word == "\\%" || word == "percent") {
    emit(MathTokenKind::kCommand, "%");
  } else if (contains(kUnitWords, word) || word.starts_with("unit") || word.starts_with("sq")) {
    emit(MathTokenKind::kUnit, word);
  } else {
    emit(MathTokenKind::kText, std::string(content.substr(begin, end - begin)));
  }
}

// \begin{pmatrix} becomes the command "begin:pmatrix"; an array's column specification is skipped.
void Lexer::lex_environment(std::string_view which) {
  const std::optional<std::string_view> name = read_braced();
  if (!name) return fail(fmt::format("\\{} without an environment name", which));
  emit(MathTokenKind::kCommand, fmt::format("{}:{}", which, *name));
  if (which == "begin" && *name == "array") {
    if (!read_braced()) return fail("array without a column specification");
  }
}

void Lexer::lex_letters() {
  const std::size_t begin = pos_;
  while (is_letter(at(pos_))) ++pos_;
  const std::string_view run = text_.substr(begin, pos_ - begin);
  const std::string word = lower(run);
  if (word == "and" || word == "or") return emit(MathTokenKind::kSeparator, word);
  if (word == "percent" || word == "percentage" || word == "pct") return emit(MathTokenKind::kCommand, "%");
  if (contains(kFunctions, run)) return emit(MathTokenKind::kCommand, std::string(run));
  if (word == "pi") return emit(MathTokenKind::kCommand, "pi");
  if (word == "infty" || word == "infinity" || word == "inf") return emit(MathTokenKind::kCommand, "infty");
  if (run.size() >= 2 && contains(kUnitWords, word)) return emit(MathTokenKind::kUnit, word);
  for (const char letter : run) emit(MathTokenKind::kLetter, std::string(1, letter));
}

void Lexer::lex_unicode() {
  for (const UnicodeSymbol& symbol : kUnicodeSymbols) {
    if (!starts_with(symbol.bytes)) continue;
    pos_ += symbol.bytes.size();
    if (symbol.kind == MathTokenKind::kNumber) emit(MathTokenKind::kChar, "^");  // superscript digits
    return emit(symbol.kind, std::string(symbol.text));
  }
  if (starts_with("\xc2\xa0")) {  // no-break space
    pos_ += 2;
    space_ = true;
    return;
  }
  fail(fmt::format("unsupported byte 0x{:02x}", static_cast<unsigned char>(text_[pos_])));
}

void Lexer::lex_punctuation(char c) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 6> kPairs = {
      {{"<=", "le"}, {">=", "ge"}, {"!=", "ne"}, {"**", "^"}, {"==", "="}, {"=<", "le"}}};
  for (const auto& [pair, name] : kPairs) {
    if (!starts_with(pair)) continue;
    pos_ += 2;
    return emit(name.size() == 1 ? MathTokenKind::kChar : MathTokenKind::kCommand, std::string(name));
  }
  ++pos_;
  switch (c) {
    case '(':
    case '[':
    case '{':
      ++bracket_depth_;
      return emit(MathTokenKind::kChar, std::string(1, c));
    case ')':
    case ']':
    case '}':
      if (bracket_depth_ > 0) --bracket_depth_;
      return emit(MathTokenKind::kChar, std::string(1, c));
    case '+':
    case '-':
    case '*':
    case '/':
    case '^':
    case '_':
    case ',':
    case ';':
    case '=':
    case '<':
    case '>':
    case '!':
    case '|':
    case '&':
    case ':':
      return emit(MathTokenKind::kChar, std::string(1, c));
    case '%':
      return emit(MathTokenKind::kCommand, "%");
    case '$':
      space_ = true;  // math delimiters
      return;
    case '.':
      // A sentence's final period; anywhere else a stray '.' is not math.
      for (std::size_t i = pos_; i < text_.size(); ++i) {
        if (text_[i] != ' ' && text_[i] != '\n' && text_[i] != '$') return fail("unexpected '.'");
      }
      pos_ = text_.size();
      return;
    default:
      --pos_;
      return fail(fmt::format("unexpected character 0x{:02x}", static_cast<unsigned char>(c)));
  }
}

}  // namespace

MathLexResult lex_math(std::string_view text) { return Lexer(text).run(); }

}  // namespace grpo::reward
