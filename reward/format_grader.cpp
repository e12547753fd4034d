// The R1-Zero format reward, a thin wrapper over parse_r1_completion so format and answer graders agree.
#include "reward/format_grader.h"

#include <utility>

namespace grpo::reward {

FormatGrader::FormatGrader(TemplateTags tags) : tags_(std::move(tags)) {}

GradeResult FormatGrader::grade(const GradeInput& input) const {
  ParsedCompletion parsed = parse_r1_completion(input.completion, tags_);
  GradeResult result;
  result.score = parsed.well_formed ? 1.0 : 0.0;
  result.extracted = std::move(parsed.answer);
  result.reason = std::move(parsed.problem);
  return result;
}

}  // namespace grpo::reward
