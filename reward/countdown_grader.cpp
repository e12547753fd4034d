// Countdown answers: a small recursive-descent parser over + − × ÷ and parentheses, exact rationals (see
// countdown_grader.h).
#include "reward/countdown_grader.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "reward/math_rational.h"
#include "reward/r1_format.h"

namespace grpo::reward {
namespace {

constexpr std::size_t kMaxExpressionBytes = 4096;
constexpr std::size_t kMaxNumbers = 64;
constexpr int kMaxDepth = 64;

struct Parser {
  explicit Parser(std::string_view expression) : text(expression) {}
  std::string_view text;
  std::size_t at = 0;
  std::vector<std::int64_t> used;
  ExactBudget budget;
  std::string error;
  int depth = 0;

  void skip_space() {
    while (at < text.size() && is_ascii_space(text[at])) ++at;
  }
  bool fail(std::string message) {
    if (error.empty()) error = std::move(message);
    return false;
  }
  // expression := term (('+' | '-') term)*
  bool expression(Rational& out) {
    if (++depth > kMaxDepth) return fail("nested too deeply");
    if (!term(out)) return false;
    for (;;) {
      skip_space();
      if (at >= text.size() || (text[at] != '+' && text[at] != '-')) break;
      const char op = text[at++];
      Rational rhs;
      if (!term(rhs)) return false;
      const auto value = op == '+' ? add(out, rhs, budget) : subtract(out, rhs, budget);
      if (!value) return fail("the numbers grow too large");
      out = *value;
    }
    --depth;
    return true;
  }
  // term := factor (('*' | '/') factor)*
  bool term(Rational& out) {
    if (!factor(out)) return false;
    for (;;) {
      skip_space();
      if (at >= text.size()) break;
      char op = text[at];
      if (op == 'x' || op == 'X') op = '*';
      if (op != '*' && op != '/') {
        // "×" and "÷" in UTF-8.
        if (text.substr(at, 2) == "\xc3\x97") op = '*';
        else if (text.substr(at, 2) == "\xc3\xb7") op = '/';
        else break;
        ++at;
      }
      ++at;
      Rational rhs;
      if (!factor(rhs)) return false;
      if (op == '/' && rhs.is_zero()) return fail("division by zero");
      const auto value = op == '*' ? multiply(out, rhs, budget) : divide(out, rhs, budget);
      if (!value) return fail("the numbers grow too large");
      out = *value;
    }
    return true;
  }
  // factor := number | '(' expression ')'
  bool factor(Rational& out) {
    skip_space();
    if (at >= text.size()) return fail("the expression ends early");
    if (text[at] == '(') {
      ++at;
      if (!expression(out)) return false;
      skip_space();
      if (at >= text.size() || text[at] != ')') return fail("a '(' is not closed");
      ++at;
      return true;
    }
    if (!std::isdigit(static_cast<unsigned char>(text[at]))) {
      return fail(fmt::format("unexpected {} at position {}", quote_excerpt(text.substr(at, 8)), at));
    }
    std::int64_t value = 0;
    const auto begin = at;
    while (at < text.size() && std::isdigit(static_cast<unsigned char>(text[at]))) {
      if (at - begin >= 12) return fail("a number is too long");
      value = value * 10 + (text[at] - '0');
      ++at;
    }
    if (used.size() >= kMaxNumbers) return fail("too many numbers");
    used.push_back(value);
    out = Rational(BigInt(value));
    return true;
  }
};

}  // namespace

std::string countdown_reference(const CountdownPuzzle& puzzle) {
  return nlohmann::json{{"target", puzzle.target}, {"numbers", puzzle.numbers}}.dump();
}

std::optional<CountdownPuzzle> parse_countdown_reference(std::string_view reference) {
  try {
    const auto json = nlohmann::json::parse(reference);
    CountdownPuzzle puzzle;
    puzzle.target = json.at("target").get<std::int64_t>();
    puzzle.numbers = json.at("numbers").get<std::vector<std::int64_t>>();
    if (puzzle.numbers.empty() || puzzle.numbers.size() > kMaxNumbers) return std::nullopt;
    return puzzle;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

CountdownCheck check_countdown_answer(std::string_view expression, const CountdownPuzzle& puzzle) {
  auto text = trim_ascii_space(expression);
  if (text.empty()) return {false, "no expression"};
  if (text.size() > kMaxExpressionBytes) return {false, fmt::format("the expression is {} bytes long", text.size())};
  // "44 + 19 + 35 = 98": the part before '=' is the expression (what follows must be the target).
  if (const auto equals = text.find('='); equals != std::string_view::npos) {
    const auto claimed = trim_ascii_space(text.substr(equals + 1));
    if (claimed != std::to_string(puzzle.target)) return {false, fmt::format("it claims to equal {}, the target is {}", quote_excerpt(claimed), puzzle.target)};
    text = trim_ascii_space(text.substr(0, equals));
  }
  Parser parser(text);
  Rational value;
  if (!parser.expression(value)) return {false, "not an expression: " + parser.error};
  parser.skip_space();
  if (parser.at != text.size()) return {false, fmt::format("unexpected {} after the expression", quote_excerpt(text.substr(parser.at, 12)))};
  auto used = parser.used;
  auto given = puzzle.numbers;
  std::sort(used.begin(), used.end());
  std::sort(given.begin(), given.end());
  if (used != given) {
    return {false, fmt::format("uses the numbers [{}]; each of [{}] must be used exactly once", fmt::join(used, ", "), fmt::join(given, ", "))};
  }
  if (!(value == Rational(BigInt(puzzle.target)))) return {false, fmt::format("evaluates to {}, not {}", value.to_string(), puzzle.target)};
  return {true, ""};
}

GradeResult CountdownGrader::grade(const GradeInput& input) const {
  GradeResult result;
  const auto puzzle = parse_countdown_reference(input.reference);
  if (!puzzle) {
    result.scorable = false;
    result.reason = fmt::format("the reference {} is not a countdown puzzle {{\"target\": N, \"numbers\": [...]}}", quote_excerpt(input.reference));
    return result;
  }
  const auto parsed = parse_r1_completion(input.completion);
  const std::string answer = parsed.has_answer ? parsed.answer : std::string(trim_ascii_space(input.completion));
  result.extracted = answer.substr(0, 200);
  const auto check = check_countdown_answer(answer, *puzzle);
  result.score = check.correct ? 1.0 : 0.0;
  result.reason = check.reason;
  return result;
}

}  // namespace grpo::reward
