// The math grader: extraction, then equivalence, with the reason phrased for training logs.
#include "reward/math_grader.h"

#include <utility>

#include <fmt/format.h>

namespace grpo::reward {

MathGrader::MathGrader(MathGraderOptions options) : options_(std::move(options)) {}

GradeResult MathGrader::grade(const GradeInput& input) const {
  GradeResult result;
  const std::string reference = extract_reference_answer(input.reference);
  if (reference.empty()) {
    result.scorable = false;
    result.reason = "reference is empty";
    return result;
  }
  ExtractedAnswer answer = extract_math_answer(input.completion, options_.extract);
  result.extracted = std::move(answer.text);
  // Compared even when nothing was extracted, so that a bad reference is reported as such whatever the model wrote.
  const MathVerdict verdict = math_equivalent(reference, result.extracted, options_.compare);
  if (!verdict.reference_ok) {
    result.scorable = false;
    result.reason = verdict.reason;
    return result;
  }
  if (answer.source == AnswerSource::kNone) {
    result.reason = "no answer found";
    return result;
  }
  if (verdict.equal) {
    result.score = 1.0;
    return result;
  }
  result.reason = fmt::format("{} (answer {} from {}, reference {})", verdict.reason, quote_excerpt(result.extracted),
                              answer_source_name(answer.source), quote_excerpt(reference));
  return result;
}

}  // namespace grpo::reward
