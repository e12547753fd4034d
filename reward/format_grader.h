// The R1-Zero format reward: 1 when the completion follows `<think>...</think><answer>...</answer>` exactly.
#pragma once

#include "reward/grader.h"
#include "reward/r1_format.h"

namespace grpo::reward {

class FormatGrader final : public Grader {
 public:
  explicit FormatGrader(TemplateTags tags = {});

  std::string_view name() const override { return "format"; }
  // score 1 when well formed; otherwise 0 with the parser's problem as the reason. extracted = the answer, if any.
  GradeResult grade(const GradeInput& input) const override;

 private:
  TemplateTags tags_;
};

}  // namespace grpo::reward
