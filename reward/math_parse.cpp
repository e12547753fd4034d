// The answer grammar, loosest binding first:
//   list      := relation ((',' | ';' | and | or) relation)*
//   relation  := union (relop union)*            relop: = < > \le \ge \ne \in
//   union     := additive (\cup additive)*
//   additive  := product (('+' | '-' | \pm) product)*
//   product   := unary (('*' | \cdot | '/' | \div) unary | power)*   a factor next to another multiplies
//   unary     := ('-' | '+' | \pm) unary | power
//   power     := postfix ('^' (group | unary))?
//   postfix   := primary ('!' | '%' | \circ)*
// Units and text after a value are dropped; a text block alone is a text answer.
#include "reward/math_parse.h"

#include <array>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "reward/math_lex.h"

namespace grpo::reward {
namespace {

struct ParseError {
  std::string what;
};

constexpr auto kFunctionCommands =
    std::to_array<std::string_view>({"sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh",
                                     "cosh", "tanh", "ln", "log", "exp", "lg"});
constexpr auto kMatrixEnvironments =
    std::to_array<std::string_view>({"matrix", "pmatrix", "bmatrix", "Bmatrix", "smallmatrix", "array"});

template <std::size_t N>
bool contains(const std::array<std::string_view, N>& table, std::string_view word) {
  for (const std::string_view entry : table) {
    if (entry == word) return true;
  }
  return false;
}

class Parser {
 public:
  Parser(std::vector<MathToken> tokens, const MathParseLimits& limits) : tokens_(std::move(tokens)), limits_(limits) {}

  MathExpr parse() {
    while (peek_kind(MathTokenKind::kSeparator)) ++pos_;
    if (pos_ >= tokens_.size()) fail("empty answer");
    expr_.root = parse_list();
    if (pos_ < tokens_.size()) fail(fmt::format("unexpected '{}'", tokens_[pos_].text));
    return std::move(expr_);
  }

 private:
  std::vector<MathToken> tokens_;
  MathParseLimits limits_;
  std::size_t pos_ = 0;
  MathExpr expr_;
  int depth_ = 0;
  bool in_exponent_ = false;  // no mixed numbers inside exponents: x^2\frac{1}{2} is not x^{2.5}

  class DepthGuard {
   public:
    explicit DepthGuard(Parser& parser) : parser_(parser) {
      if (++parser_.depth_ > parser_.limits_.max_depth) {
        parser_.fail(fmt::format("nested deeper than {} levels", parser_.limits_.max_depth));
      }
    }
    ~DepthGuard() { --parser_.depth_; }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;

   private:
    Parser& parser_;
  };

  [[noreturn]] void fail(std::string what) const { throw ParseError{std::move(what)}; }

  const MathToken* peek(std::size_t ahead = 0) const {
    return pos_ + ahead < tokens_.size() ? &tokens_[pos_ + ahead] : nullptr;
  }
  bool peek_kind(MathTokenKind kind, std::size_t ahead = 0) const {
    const MathToken* token = peek(ahead);
    return token != nullptr && token->kind == kind;
  }
  bool peek_char(std::string_view c, std::size_t ahead = 0) const {
    const MathToken* token = peek(ahead);
    return token != nullptr && token->kind == MathTokenKind::kChar && token->text == c;
  }
  bool peek_command(std::string_view name, std::size_t ahead = 0) const {
    const MathToken* token = peek(ahead);
    return token != nullptr && token->kind == MathTokenKind::kCommand && token->text == name;
  }
  void expect_char(std::string_view c, std::string_view context) {
    if (!peek_char(c)) fail(fmt::format("expected '{}' {}", c, context));
    ++pos_;
  }

  std::int32_t add(MathNode node) {
    if (expr_.nodes.size() >= limits_.max_nodes) fail(fmt::format("more than {} nodes", limits_.max_nodes));
    expr_.nodes.push_back(std::move(node));
    return static_cast<std::int32_t>(expr_.nodes.size() - 1);
  }
  std::int32_t make(MathNodeKind kind, std::vector<std::int32_t> children, std::string text = {}) {
    return add({.kind = kind, .text = std::move(text), .children = std::move(children)});
  }

  std::vector<std::int32_t> parse_items();
  std::int32_t parse_list();
  std::int32_t parse_relation();
  std::int32_t parse_union();
  std::int32_t parse_additive();
  std::int32_t parse_product();
  std::int32_t parse_unary();
  std::int32_t parse_power();
  std::int32_t parse_postfix();
  std::int32_t parse_primary();
  std::int32_t parse_command_primary(const MathToken& token);
  std::int32_t parse_number();
  std::optional<std::int32_t> parse_mixed_fraction();
  std::int32_t parse_symbol();
  std::int32_t parse_bracketed();
  std::int32_t parse_closed_list(MathNodeKind kind, std::string_view close);
  std::int32_t parse_group();
  std::int32_t parse_argument();
  std::int32_t parse_fraction();
  std::int32_t parse_root();
  std::int32_t parse_function(const std::string& name);
  std::int32_t parse_matrix(const std::string& environment);
  bool starts_factor() const;
  void skip_units(bool after_value);
};

std::vector<std::int32_t> Parser::parse_items() {
  std::vector<std::int32_t> items = {parse_relation()};
  while (peek_char(",") || peek_char(";") || peek_kind(MathTokenKind::kSeparator)) {
    while (peek_char(",") || peek_char(";") || peek_kind(MathTokenKind::kSeparator)) ++pos_;
    const MathToken* next = peek();
    const bool closes =
        next == nullptr ||
        (next->kind == MathTokenKind::kChar && (next->text == ")" || next->text == "]" || next->text == "}")) ||
        (next->kind == MathTokenKind::kCommand && (next->text == "}" || next->text == "rangle"));
    if (closes) break;  // a trailing separator
    items.push_back(parse_relation());
  }
  return items;
}

std::int32_t Parser::parse_list() {
  std::vector<std::int32_t> items = parse_items();
  return items.size() == 1 ? items.front() : make(MathNodeKind::kList, std::move(items));
}

std::int32_t Parser::parse_relation() {
  if (peek_char("=")) ++pos_;  // "= 5": a model restating the left-hand side it left out
  std::vector<std::int32_t> operands = {parse_union()};
  std::string ops;
  for (;;) {
    const MathToken* token = peek();
    if (token == nullptr) break;
    char op = '\0';
    if (token->kind == MathTokenKind::kChar && (token->text == "=" || token->text == "<" || token->text == ">")) {
      op = token->text[0];
    } else if (token->kind == MathTokenKind::kCommand) {
      if (token->text == "le") op = 'l';
      if (token->text == "ge") op = 'g';
      if (token->text == "ne") op = 'n';
      if (token->text == "in") op = 'i';
    }
    if (op == '\0') break;
    ++pos_;
    ops += op;
    operands.push_back(parse_union());
  }
  return ops.empty() ? operands.front() : make(MathNodeKind::kRelation, std::move(operands), std::move(ops));
}

std::int32_t Parser::parse_union() {
  std::vector<std::int32_t> pieces = {parse_additive()};
  while (peek_command("cup")) {
    ++pos_;
    pieces.push_back(parse_additive());
  }
  return pieces.size() == 1 ? pieces.front() : make(MathNodeKind::kUnion, std::move(pieces));
}

std::int32_t Parser::parse_additive() {
  std::vector<std::int32_t> terms = {parse_product()};
  auto sum = [&] { return terms.size() == 1 ? terms.front() : make(MathNodeKind::kAdd, terms); };
  for (;;) {
    if (peek_char("+")) {
      ++pos_;
      terms.push_back(parse_product());
    } else if (peek_char("-")) {
      ++pos_;
      const std::int32_t term = parse_product();
      terms.push_back(make(MathNodeKind::kNegate, {term}));
    } else if (peek_command("pm")) {
      ++pos_;
      const std::int32_t left = sum();
      const std::int32_t right = parse_product();
      MathNode node{.kind = MathNodeKind::kPlusMinus, .children = {left, right}};
      node.ordinal = expr_.plus_minus_count++;
      terms = {add(std::move(node))};
    } else {
      return sum();
    }
  }
}

bool Parser::starts_factor() const {
  const MathToken* token = peek();
  if (token == nullptr) return false;
  switch (token->kind) {
    case MathTokenKind::kNumber:
    case MathTokenKind::kLetter:
      return true;
    case MathTokenKind::kChar:
      return token->text == "(" || token->text == "{";
    case MathTokenKind::kCommand:
      return token->text == "frac" || token->text == "sqrt" || token->text == "pi" || token->text == "infty" ||
             token->text.starts_with("begin:") || contains(kFunctionCommands, token->text);
    default:
      return false;
  }
}

// Units ("cm", "\text{ dollars}", "\text{ cm}^2") and any text after a value carry no value.
void Parser::skip_units(bool after_value) {
  while (peek_kind(MathTokenKind::kUnit) || (after_value && peek_kind(MathTokenKind::kText))) {
    ++pos_;
    if (peek_char("^") && (peek_kind(MathTokenKind::kNumber, 1) || peek_char("{", 1))) {
      ++pos_;
      if (peek_char("{")) {
        parse_group();
      } else {
        ++pos_;
      }
    }
  }
}

std::int32_t Parser::parse_product() {
  std::vector<std::int32_t> factors = {parse_unary()};
  for (;;) {
    skip_units(/*after_value=*/true);
    if (peek_char("*") || peek_command("cdot")) {
      ++pos_;
      factors.push_back(parse_unary());
    } else if (peek_char("/") || peek_command("div")) {
      ++pos_;
      const std::int32_t divisor = parse_unary();
      factors.push_back(make(MathNodeKind::kReciprocal, {divisor}));
    } else if (starts_factor()) {
      factors.push_back(parse_power());
    } else {
      break;
    }
  }
  if (factors.size() == 1) return factors.front();
  if (factors.size() == 2 && expr_.at(factors[1]).kind == MathNodeKind::kReciprocal) {
    return make(MathNodeKind::kDivide, {factors[0], expr_.at(factors[1]).children[0]});
  }
  return make(MathNodeKind::kMultiply, std::move(factors));
}

std::int32_t Parser::parse_unary() {
  const DepthGuard guard(*this);
  if (peek_char("-")) {
    ++pos_;
    const std::int32_t operand = parse_unary();
    return make(MathNodeKind::kNegate, {operand});
  }
  if (peek_char("+")) {
    ++pos_;
    return parse_unary();
  }
  if (peek_command("pm")) {  // "\pm 2" is 0 ± 2
    ++pos_;
    const std::int32_t zero = add({.kind = MathNodeKind::kNumber, .digits = "0"});
    const std::int32_t operand = parse_unary();
    MathNode node{.kind = MathNodeKind::kPlusMinus, .children = {zero, operand}};
    node.ordinal = expr_.plus_minus_count++;
    return add(std::move(node));
  }
  return parse_power();
}

std::int32_t Parser::parse_power() {
  const std::int32_t base = parse_postfix();
  if (!peek_char("^")) return base;
  ++pos_;
  if (peek_command("circ")) {  // 90^\circ: degrees are a unit
    ++pos_;
    return base;
  }
  if (peek_char("{") && peek_command("circ", 1) && peek_char("}", 2)) {
    pos_ += 3;
    return base;
  }
  const bool was_in_exponent = in_exponent_;
  in_exponent_ = true;
  const std::int32_t exponent = peek_char("{") ? parse_group() : parse_unary();
  in_exponent_ = was_in_exponent;
  return make(MathNodeKind::kPower, {base, exponent});
}

std::int32_t Parser::parse_postfix() {
  std::int32_t operand = parse_primary();
  for (;;) {
    if (peek_char("!")) {
      ++pos_;
      operand = make(MathNodeKind::kFactorial, {operand});
    } else if (peek_command("%")) {
      ++pos_;
      operand = make(MathNodeKind::kPercent, {operand});
    } else if (peek_command("circ")) {
      ++pos_;
    } else {
      return operand;
    }
  }
}

std::int32_t Parser::parse_primary() {
  const DepthGuard guard(*this);
  skip_units(/*after_value=*/false);
  const MathToken* token = peek();
  if (token == nullptr) fail("answer ends where a value was expected");
  switch (token->kind) {
    case MathTokenKind::kNumber:
      return parse_number();
    case MathTokenKind::kLetter:
      return parse_symbol();
    case MathTokenKind::kText: {
      ++pos_;
      return add({.kind = MathNodeKind::kText, .text = token->text});
    }
    case MathTokenKind::kCommand:
      return parse_command_primary(*token);
    case MathTokenKind::kChar:
      if (token->text == "(" || token->text == "[") return parse_bracketed();
      if (token->text == "{") return parse_group();
      if (token->text == "|") {
        ++pos_;
        const std::int32_t inner = parse_union();
        expect_char("|", "to close an absolute value");
        return make(MathNodeKind::kAbs, {inner});
      }
      break;
    default:
      break;
  }
  fail(fmt::format("unexpected '{}'", token->text));
}

std::int32_t Parser::parse_command_primary(const MathToken& token) {
  const std::string& name = token.text;
  if (name == "frac") return parse_fraction();
  if (name == "sqrt") return parse_root();
  if (contains(kFunctionCommands, name)) return parse_function(name);
  if (name.starts_with("begin:")) return parse_matrix(name.substr(6));
  if (name == "{") return parse_closed_list(MathNodeKind::kSet, "}");
  if (name == "langle") return parse_closed_list(MathNodeKind::kTuple, "rangle");
  ++pos_;
  if (name == "pi") return make(MathNodeKind::kPi, {});
  if (name == "infty") return make(MathNodeKind::kInfinity, {});
  if (name == "emptyset") return make(MathNodeKind::kSet, {});
  fail(fmt::format("unexpected '\\{}'", name));
}

std::int32_t Parser::parse_number() {
  const MathToken& token = tokens_[pos_++];
  const std::int32_t number = add({.kind = MathNodeKind::kNumber,
                                   .digits = token.text,
                                   .frac_digits = token.frac_digits,
                                   .exponent10 = token.exponent10,
                                   .is_decimal = token.is_decimal});
  if (in_exponent_ || token.is_decimal) return number;
  const std::optional<std::int32_t> fraction = parse_mixed_fraction();
  return fraction ? make(MathNodeKind::kAdd, {number, *fraction}) : number;
}

// After an integer: "\frac{1}{2}" with integer parts ("3\frac{1}{2}" is 3.5) or " 1/2" ("3 1/2").
std::optional<std::int32_t> Parser::parse_mixed_fraction() {
  auto is_integer = [](const MathToken* token) {
    return token != nullptr && token->kind == MathTokenKind::kNumber && !token->is_decimal;
  };
  if (is_integer(peek()) && peek()->space_before && peek_char("/", 1) && is_integer(peek(2)) && !peek_char("^", 3)) {
    const std::int32_t num = parse_number();
    ++pos_;
    const std::int32_t den = add({.kind = MathNodeKind::kNumber, .digits = tokens_[pos_++].text});
    return make(MathNodeKind::kDivide, {num, den});
  }
  if (!peek_command("frac")) return std::nullopt;
  const std::size_t saved_pos = pos_;
  const std::size_t saved_nodes = expr_.nodes.size();
  const std::int32_t fraction = parse_fraction();
  auto integer_literal = [&](std::int32_t index) {
    const MathNode& node = expr_.at(index);
    return node.kind == MathNodeKind::kNumber && !node.is_decimal;
  };
  const MathNode& node = expr_.at(fraction);
  if (integer_literal(node.children[0]) && integer_literal(node.children[1])) return fraction;
  pos_ = saved_pos;  // not a mixed number: the fraction multiplies, and is parsed again as a factor
  expr_.nodes.resize(saved_nodes);
  return std::nullopt;
}

std::int32_t Parser::parse_symbol() {
  std::string name = tokens_[pos_++].text;
  if (peek_char("_")) {
    ++pos_;
    const std::int32_t subscript = parse_argument();
    name = fmt::format("{}_{}", name, to_string(expr_, subscript));
  }
  if (name == "e") return make(MathNodeKind::kEuler, {});
  return add({.kind = MathNodeKind::kSymbol, .text = std::move(name)});
}

// (a, b) is a tuple or an open interval, [a, b] and the half-open forms are intervals, (a) and [a] are groups.
std::int32_t Parser::parse_bracketed() {
  const bool open_square = tokens_[pos_++].text == "[";
  std::vector<std::int32_t> items;
  if (!peek_char(")") && !peek_char("]")) items = parse_items();
  if (!peek_char(")") && !peek_char("]")) fail("unclosed bracket");
  const bool close_square = tokens_[pos_++].text == "]";
  if (items.size() == 1 && open_square == close_square) return items.front();
  if (items.size() == 2 && (open_square || close_square)) {
    MathNode interval{.kind = MathNodeKind::kInterval, .children = std::move(items)};
    interval.left_closed = open_square;
    interval.right_closed = close_square;
    return add(std::move(interval));
  }
  if (open_square != close_square) fail("a half-open interval needs exactly two endpoints");
  return make(MathNodeKind::kTuple, std::move(items));
}

// \{ a, b \} (a set) or \langle a, b \rangle (a vector).
std::int32_t Parser::parse_closed_list(MathNodeKind kind, std::string_view close) {
  ++pos_;
  std::vector<std::int32_t> items;
  if (!peek_command(close)) items = parse_items();
  if (!peek_command(close)) fail(fmt::format("expected '\\{}'", close));
  ++pos_;
  return make(kind, std::move(items));
}

std::int32_t Parser::parse_group() {
  expect_char("{", "to open a group");
  if (peek_char("}")) fail("empty group");
  const std::int32_t inner = parse_list();
  expect_char("}", "to close a group");
  return inner;
}

// A command argument: a group, or one token as TeX reads it (\frac12 is \frac{1}{2}).
std::int32_t Parser::parse_argument() {
  const DepthGuard guard(*this);
  if (peek_char("{")) return parse_group();
  if (peek_char("(")) return parse_bracketed();
  MathToken* token = pos_ < tokens_.size() ? &tokens_[pos_] : nullptr;
  if (token == nullptr) fail("missing argument");
  if (token->kind == MathTokenKind::kNumber && !token->is_decimal && token->text.size() > 1) {
    std::string first(1, token->text[0]);
    token->text.erase(0, 1);
    token->space_before = false;
    return add({.kind = MathNodeKind::kNumber, .digits = std::move(first)});
  }
  if (token->kind == MathTokenKind::kNumber) {
    const bool was_in_exponent = in_exponent_;
    in_exponent_ = true;  // no mixed number inside an argument
    const std::int32_t number = parse_number();
    in_exponent_ = was_in_exponent;
    return number;
  }
  if (token->kind == MathTokenKind::kLetter) return parse_symbol();
  if (token->kind == MathTokenKind::kCommand) return parse_primary();
  fail(fmt::format("unexpected '{}' as an argument", token->text));
}

std::int32_t Parser::parse_fraction() {
  ++pos_;
  const std::int32_t num = parse_argument();
  const std::int32_t den = parse_argument();
  return make(MathNodeKind::kDivide, {num, den});
}

std::int32_t Parser::parse_root() {
  ++pos_;
  std::int32_t index = -1;
  if (peek_char("[")) {
    ++pos_;
    index = parse_additive();
    expect_char("]", "to close a root index");
  }
  if (index < 0) index = add({.kind = MathNodeKind::kNumber, .digits = "2"});
  const std::int32_t radicand = parse_argument();
  return make(MathNodeKind::kRoot, {radicand, index});
}

// \sin x, \sin^2(x), \log_2 8, \ln(2): the power applies to the function's value.
std::int32_t Parser::parse_function(const std::string& name) {
  ++pos_;
  std::int32_t base = -1;
  if (peek_char("_")) {
    ++pos_;
    base = parse_argument();
  }
  std::int32_t exponent = -1;
  if (peek_char("^")) {
    ++pos_;
    exponent = parse_argument();
  }
  const std::int32_t argument = peek_char("(") ? parse_bracketed() : parse_power();
  std::vector<std::int32_t> children = {argument};
  if (base >= 0) children.push_back(base);
  const std::int32_t call = make(MathNodeKind::kFunction, std::move(children), name);
  return exponent >= 0 ? make(MathNodeKind::kPower, {call, exponent}) : call;
}

std::int32_t Parser::parse_matrix(const std::string& environment) {
  if (!contains(kMatrixEnvironments, environment)) fail(fmt::format("unsupported environment '{}'", environment));
  ++pos_;
  const std::string end = fmt::format("end:{}", environment);
  std::vector<std::vector<std::int32_t>> rows(1);
  for (;;) {
    if (peek_command(end)) {
      ++pos_;
      break;
    }
    rows.back().push_back(parse_relation());
    if (peek_char("&")) {
      ++pos_;
    } else if (peek_command("\\\\")) {
      ++pos_;
      rows.emplace_back();
    } else if (!peek_command(end)) {
      fail(fmt::format("expected '&', '\\\\' or \\end{{{}}}", environment));
    }
  }
  if (rows.back().empty()) rows.pop_back();  // a trailing \\ before \end
  if (rows.empty()) fail("empty matrix");
  MathNode matrix{.kind = MathNodeKind::kMatrix};
  for (const std::vector<std::int32_t>& row : rows) {
    if (row.size() != rows.front().size()) fail("matrix rows of different lengths");
    matrix.children.insert(matrix.children.end(), row.begin(), row.end());
  }
  matrix.rows = static_cast<std::int32_t>(rows.size());
  matrix.cols = static_cast<std::int32_t>(rows.front().size());
  return add(std::move(matrix));
}

}  // namespace

MathParseResult parse_math(std::string_view text, const MathParseLimits& limits) {
  MathParseResult result;
  if (text.size() > limits.max_bytes) {
    result.error = fmt::format("answer of {} bytes is longer than the {}-byte limit", text.size(), limits.max_bytes);
    return result;
  }
  MathLexResult lexed = lex_math(text);
  if (!lexed.error.empty()) {
    result.error = std::move(lexed.error);
    return result;
  }
  try {
    result.expr = Parser(std::move(lexed.tokens), limits).parse();
  } catch (const ParseError& error) {
    result.error = error.what;
    result.expr = {};
  }
  return result;
}

}  // namespace grpo::reward
