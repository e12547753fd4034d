// The Countdown grader on hand-checked answers: exact rational arithmetic, each number exactly once, precedence and
// parentheses, "= target" suffixes, and hostile or malformed answers and references.
#include <gtest/gtest.h>

#include "reward/countdown_grader.h"
#include "reward/grader_registry.h"

namespace grpo::reward {
namespace {

const CountdownPuzzle kPuzzle{98, {44, 19, 35}};

bool correct(std::string_view expression, const CountdownPuzzle& puzzle = kPuzzle) { return check_countdown_answer(expression, puzzle).correct; }

std::string reason(std::string_view expression, const CountdownPuzzle& puzzle = kPuzzle) { return check_countdown_answer(expression, puzzle).reason; }

TEST(Countdown, RightAnswersInAnyForm) {
  EXPECT_TRUE(correct("44 + 19 + 35"));
  EXPECT_TRUE(correct("(44+19)+35"));
  EXPECT_TRUE(correct("35 + 44 + 19 = 98"));
  EXPECT_TRUE(correct("  19 + (35 + 44)  "));
  // Exact rationals: 7 / 2 * 4 = 14 exactly; 10 / 4 is 5/2, so (10 / 4) * 2 - 1 = 4.
  EXPECT_TRUE(correct("7 / 2 * 4", {14, {7, 2, 4}}));
  EXPECT_TRUE(correct("(10 / 4) * 2 - 1", {4, {10, 4, 2, 1}}));
  EXPECT_TRUE(correct("6 × 7 ÷ 3", {14, {6, 7, 3}}));
  // Precedence: 2 + 3 * 4 = 14, not 20.
  EXPECT_TRUE(correct("2 + 3 * 4", {14, {2, 3, 4}}));
  EXPECT_FALSE(correct("2 + 3 * 4", {20, {2, 3, 4}}));
}

TEST(Countdown, WrongAnswersSayWhy) {
  EXPECT_NE(reason("44 + 19 + 34").find("each of [19, 35, 44] must be used exactly once"), std::string::npos);
  EXPECT_NE(reason("44 + 19").find("uses the numbers [19, 44]"), std::string::npos);         // one missing
  EXPECT_NE(reason("44 + 19 + 35 + 35").find("exactly once"), std::string::npos);             // one twice
  EXPECT_NE(reason("44 + 19 - 35").find("evaluates to 28, not 98"), std::string::npos);
  EXPECT_NE(reason("44 + 19 + 35 = 97").find("claims to equal '97'"), std::string::npos);
  EXPECT_NE(reason("44 / (19 - 19) + 35", {98, {44, 19, 19, 35}}).find("division by zero"), std::string::npos);
  EXPECT_NE(reason("44 + 19 + 35)").find("after the expression"), std::string::npos);
  EXPECT_NE(reason("(44 + 19 + 35").find("not closed"), std::string::npos);
  EXPECT_NE(reason("import os; 44+19+35").find("not an expression"), std::string::npos);
  EXPECT_NE(reason("").find("no expression"), std::string::npos);
  EXPECT_FALSE(correct("44 ** 19 + 35"));
}

TEST(Countdown, HostileAnswersAreBounded) {
  EXPECT_FALSE(correct(std::string(100000, '(')));
  EXPECT_NE(reason(std::string(200, '(') + "44" + std::string(200, ')'), {44, {44}}).find("nested too deeply"), std::string::npos);
  std::string many = "1";
  for (int i = 0; i < 100; ++i) many += "+1";
  EXPECT_NE(reason(many, {101, std::vector<std::int64_t>(101, 1)}).find("too many numbers"), std::string::npos);
  EXPECT_FALSE(correct("9999999999999999999999 * 99999999999999", {1, {1}}));
  EXPECT_FALSE(correct(std::string("44\0+19+35", 9)));
}

TEST(Countdown, GraderReadsTheAnswerBlockAndRefusesBadReferences) {
  const auto grader = make_grader("countdown");
  const auto reference = countdown_reference(kPuzzle);
  EXPECT_EQ(parse_countdown_reference(reference)->numbers, kPuzzle.numbers);
  const auto right = grader->grade({.completion = "<think>44+19=63, 63+35=98</think><answer>44 + 19 + 35</answer>", .reference = reference});
  EXPECT_EQ(right.score, 1.0);
  EXPECT_EQ(right.extracted, "44 + 19 + 35");
  const auto wrong = grader->grade({.completion = "<think></think><answer>44 * 19</answer>", .reference = reference});
  EXPECT_EQ(wrong.score, 0.0);
  EXPECT_FALSE(wrong.reason.empty());
  const auto bad = grader->grade({.completion = "<answer>1</answer>", .reference = "98"});
  EXPECT_FALSE(bad.scorable);
  EXPECT_NE(bad.reason.find("not a countdown puzzle"), std::string::npos);
}

}  // namespace
}  // namespace grpo::reward
