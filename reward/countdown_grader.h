// The Countdown grader (TinyZero's task): the answer must be an arithmetic expression that uses each of the given
// numbers exactly once, with + − × ÷ and parentheses, and evaluates exactly to the target. Evaluation is in exact
// rationals (7 / 2 * 2 is 7, not 6.999...), never `eval`; anything else in the expression is a wrong answer with a
// reason.
//
// Reference: JSON text {"target": 98, "numbers": [44, 19, 35]}. A reference that does not parse is "cannot score".
// The answer is the last <answer> block (or the whole completion when there is none); a trailing "= 98" is allowed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "reward/grader.h"

namespace grpo::reward {

struct CountdownPuzzle {
  std::int64_t target = 0;
  std::vector<std::int64_t> numbers;
};

// The reference's text for a puzzle, and back (nullopt when it is not one).
std::string countdown_reference(const CountdownPuzzle& puzzle);
std::optional<CountdownPuzzle> parse_countdown_reference(std::string_view reference);

struct CountdownCheck {
  bool correct = false;
  std::string reason;  // empty when correct
};

// Checks `expression` against the puzzle. Bounded work on any input (at most 64 numbers, 4096 bytes).
CountdownCheck check_countdown_answer(std::string_view expression, const CountdownPuzzle& puzzle);

class CountdownGrader final : public Grader {
 public:
  std::string_view name() const override { return "countdown"; }
  GradeResult grade(const GradeInput& input) const override;
};

}  // namespace grpo::reward
