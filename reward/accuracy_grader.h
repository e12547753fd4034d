// Exact-match reward for integer answers (arithmetic, Countdown-style targets, GSM8K final numbers): the answer block
// must hold the reference integer, of any size.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "reward/grader.h"
#include "reward/r1_format.h"

namespace grpo::reward {

// Canonical form of an integer written as optional ASCII whitespace, an optional sign, decimal digits (any number of
// them) and optional whitespace: leading zeros stripped, no '+', and "-0" is "0". nullopt for anything else
// ("3.5", "3.0", "1,000", "12abc", "- 5", "").
std::optional<std::string> normalise_integer(std::string_view text);

class AccuracyGrader final : public Grader {
 public:
  explicit AccuracyGrader(TemplateTags tags = {});

  std::string_view name() const override { return "accuracy"; }
  // Reads the last complete answer block (the format is judged separately by FormatGrader). score 1 when it is the
  // reference integer; 0 with a reason when it is missing, not an integer or different; scorable=false when the
  // reference itself is not an integer. extracted = the trimmed answer text.
  GradeResult grade(const GradeInput& input) const override;

 private:
  TemplateTags tags_;
};

}  // namespace grpo::reward
