// The "math" grader: extracts the final answer from a completion and scores 1 when it is mathematically equivalent to
// the reference (see math_equivalence.h for the policies), 0 with a reason otherwise.
#pragma once

#include "reward/grader.h"
#include "reward/math_equivalence.h"
#include "reward/math_extract.h"

namespace grpo::reward {

struct MathGraderOptions {
  MathExtractOptions extract = {};
  MathCompareOptions compare = {};
};

class MathGrader final : public Grader {
 public:
  explicit MathGrader(MathGraderOptions options = {});

  std::string_view name() const override { return "math"; }
  // The reference may be a bare answer, a boxed solution or a GSM8K solution ending in "#### 42". scorable=false
  // when it does not parse as an answer. extracted = the answer read from the completion.
  GradeResult grade(const GradeInput& input) const override;

 private:
  MathGraderOptions options_;
};

}  // namespace grpo::reward
