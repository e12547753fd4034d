// The "math" grader end to end: registry lookup, scores and reasons, "cannot score" for bad references, and no
// exception over thousands of random byte strings and hostile completions.
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "reward/grader_registry.h"
#include "reward/math_grader.h"

namespace grpo::reward {
namespace {

GradeResult grade(const std::string& completion, const std::string& reference, MathGraderOptions options = {}) {
  return MathGrader(std::move(options)).grade({.prompt = "", .completion = completion, .reference = reference});
}

TEST(MathGrader, IsRegisteredAsMath) {
  const std::unique_ptr<Grader> grader = make_grader("math");
  EXPECT_EQ(grader->name(), "math");
  EXPECT_EQ(grader->grade({.completion = "<think>.</think><answer>\\frac{1}{2}</answer>", .reference = "0.5"}).score,
            1.0);
}

TEST(MathGrader, ScoresEquivalentAnswersOne) {
  const GradeResult boxed = grade("We find $x = \\boxed{\\dfrac{3}{4}}$.", "0.75");
  EXPECT_EQ(boxed.score, 1.0);
  EXPECT_TRUE(boxed.scorable);
  EXPECT_EQ(boxed.extracted, "\\dfrac{3}{4}");
  EXPECT_TRUE(boxed.reason.empty());
  EXPECT_EQ(grade("<think>48/2=24</think><answer>72</answer>", "Natalia sold 48/2 = 24.\n#### 72").score, 1.0);
  EXPECT_EQ(grade("The answer is $(3, \\infty)$.", "x > 3").score, 1.0);
  EXPECT_EQ(grade("so \\boxed{2} and \\boxed{3}", "\\{3, 2\\}").score, 1.0);
}

TEST(MathGrader, ScoresWrongOrMissingAnswersZeroWithAReason) {
  const GradeResult wrong = grade("\\boxed{5}", "4");
  EXPECT_EQ(wrong.score, 0.0);
  EXPECT_TRUE(wrong.scorable);
  EXPECT_EQ(wrong.extracted, "5");
  EXPECT_NE(wrong.reason.find("answer 5 != reference 4"), std::string::npos) << wrong.reason;
  EXPECT_NE(wrong.reason.find("boxed"), std::string::npos) << wrong.reason;

  const GradeResult missing = grade("I do not know.", "4");
  EXPECT_EQ(missing.score, 0.0);
  EXPECT_TRUE(missing.scorable);
  EXPECT_EQ(missing.reason, "no answer found");

  const GradeResult strict = grade("so 4", "4", {.extract = {.last_number_fallback = false}});
  EXPECT_EQ(strict.score, 0.0);
  EXPECT_EQ(strict.reason, "no answer found");
  EXPECT_EQ(grade("so 4", "4").score, 1.0);
}

TEST(MathGrader, BadReferencesCannotBeScored) {
  for (const std::string reference : {"", "   ", "\\frac{1}{", "(1, 2"}) {
    for (const std::string completion : {"\\boxed{1}", "nothing"}) {
      const GradeResult result = grade(completion, reference);
      EXPECT_FALSE(result.scorable) << "'" << reference << "' / " << completion;
      EXPECT_EQ(result.score, 0.0);
      EXPECT_FALSE(result.reason.empty());
    }
  }
}

// Random bytes, biased towards the characters the parser cares about, must never throw and always give a score in
// [0, 1]; the whole run is also a loose bound on per-sample time.
TEST(MathGrader, NeverThrowsOnRandomBytes) {
  const MathGrader grader;
  std::mt19937 rng(20240607);
  const std::string interesting = "0123456789+-*/^_{}()[]\\,.%$=<>|&! abcexyz";
  const std::string commands[] = {
      "\\frac", "\\sqrt", "\\boxed{", "\\pi", "\\infty", "\\text{", "\\begin{pmatrix}", "\\end{pmatrix}", "\\\\", "\\{",
      "\\}",    "\\pm",   "\\cup",    "\\le", "####",    "e5"};
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 4000; ++i) {
    std::string text;
    const int length = std::uniform_int_distribution<int>(0, 80)(rng);
    for (int j = 0; j < length; ++j) {
      const int kind = std::uniform_int_distribution<int>(0, 9)(rng);
      if (kind < 5) {
        text += interesting[std::uniform_int_distribution<std::size_t>(0, interesting.size() - 1)(rng)];
      } else if (kind < 8) {
        text += commands[std::uniform_int_distribution<std::size_t>(0, std::size(commands) - 1)(rng)];
      } else {
        text += static_cast<char>(std::uniform_int_distribution<int>(0, 255)(rng));
      }
    }
    const std::string reference = i % 2 == 0 ? text : "\\frac{1}{2}";
    GradeResult result;
    ASSERT_NO_THROW(result = grader.grade({.completion = "\\boxed{" + text + "}", .reference = reference})) << text;
    EXPECT_GE(result.score, 0.0);
    EXPECT_LE(result.score, 1.0);
    ASSERT_NO_THROW(result = grader.grade({.completion = text, .reference = "3"})) << text;
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 20.0);
}

TEST(MathGrader, HostileCompletionsReturnQuickly) {
  const MathGrader grader;
  const std::string completions[] = {
      "\\boxed{10^{10^{10^{10}}}}",
      "\\boxed{" + std::string(100'000, '{') + "}",
      "<answer>" + std::string(1 << 20, '1') + "</answer>",
      std::string(1 << 20, '\xff'),
  };
  for (const std::string& completion : completions) {
    const auto start = std::chrono::steady_clock::now();
    const GradeResult result = grader.grade({.completion = completion, .reference = "1"});
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 1.0);
    EXPECT_EQ(result.score, 0.0);
    EXPECT_TRUE(result.scorable);
    EXPECT_FALSE(result.reason.empty());
  }
}

}  // namespace
}  // namespace grpo::reward
