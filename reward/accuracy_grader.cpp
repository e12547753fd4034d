// Integer exact-match grading. Integers are compared as canonical digit strings rather than parsed into a machine
// type, so answers of any length grade correctly and none can overflow.
#include "reward/accuracy_grader.h"

#include <utility>

#include <fmt/format.h>

namespace grpo::reward {

std::optional<std::string> normalise_integer(std::string_view text) {
  std::string_view rest = trim_ascii_space(text);
  bool negative = false;
  if (!rest.empty() && (rest.front() == '+' || rest.front() == '-')) {
    negative = rest.front() == '-';
    rest.remove_prefix(1);
  }
  if (rest.empty()) return std::nullopt;
  for (const char c : rest) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  const std::size_t first_nonzero = rest.find_first_not_of('0');
  if (first_nonzero == std::string_view::npos) return "0";
  std::string canonical = negative ? "-" : "";
  canonical += rest.substr(first_nonzero);
  return canonical;
}

AccuracyGrader::AccuracyGrader(TemplateTags tags) : tags_(std::move(tags)) {}

GradeResult AccuracyGrader::grade(const GradeInput& input) const {
  GradeResult result;
  ParsedCompletion parsed = parse_r1_completion(input.completion, tags_);
  result.extracted = std::move(parsed.answer);
  const std::optional<std::string> reference = normalise_integer(input.reference);
  if (!reference) {
    result.scorable = false;
    result.reason = fmt::format("reference is not an integer: {}", quote_excerpt(input.reference));
    return result;
  }
  if (!parsed.has_answer) {
    result.reason = fmt::format("no {} block", tags_.answer_open);
    return result;
  }
  const std::optional<std::string> answer = normalise_integer(result.extracted);
  if (!answer) {
    result.reason = fmt::format("answer is not an integer: {}", quote_excerpt(result.extracted));
    return result;
  }
  if (*answer != *reference) {
    result.reason = fmt::format("answer {} != reference {}", quote_excerpt(*answer), quote_excerpt(*reference));
    return result;
  }
  result.score = 1.0;
  return result;
}

}  // namespace grpo::reward
