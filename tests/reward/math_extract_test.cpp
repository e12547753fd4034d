// Answer extraction: answer blocks, the last box with nested braces, adjacent boxes as one list, GSM8K "####",
// "the answer is", the last-number fallback and its switch, and linear behaviour on hostile text.
#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "reward/math_extract.h"

namespace grpo::reward {
namespace {

struct Case {
  std::string completion;
  std::string answer;
  AnswerSource source;
};

TEST(MathExtract, FindsTheMarkedAnswer) {
  const std::vector<Case> cases = {
      {"<think>2+2</think> <answer>4</answer>", "4", AnswerSource::kAnswerBlock},
      {"<think>x</think><answer>So \\boxed{7}.</answer>", "7", AnswerSource::kBoxed},
      {"<answer>1</answer> text <answer> 2 </answer>", "2", AnswerSource::kAnswerBlock},
      {"Thus $x = \\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}", AnswerSource::kBoxed},
      {"\\boxed{1} then later \\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt{3}}{2}", AnswerSource::kBoxed},
      {"\\boxed{\\{1, 2\\}}", "\\{1, 2\\}", AnswerSource::kBoxed},
      {"\\fbox{12}", "12", AnswerSource::kBoxed},
      {"\\boxed 5 is it", "5", AnswerSource::kBoxed},
      {"\\boxed{\\boxed{3}}", "\\boxed{3}", AnswerSource::kBoxed},
      {"The roots are \\boxed{2} and \\boxed{3}.", "2, 3", AnswerSource::kBoxed},
      {"$\\boxed{1}$, $\\boxed{2}$, $\\boxed{4}$", "1, 2, 4", AnswerSource::kBoxed},
      {"\\boxed{1} so the answer is \\boxed{2}", "2", AnswerSource::kBoxed},  // words between: not adjacent
      {"\\boxed{unclosed {", "", AnswerSource::kNone},
      {"Natalia sold 48/2 = 24 clips.\n#### 72", "72", AnswerSource::kGsm8k},
      {"#### 1,000\nextra", "1,000", AnswerSource::kGsm8k},
      {"The final answer is $\\frac{3}{4}$. I hope it is correct.", "\\frac{3}{4}", AnswerSource::kAnswerIs},
      {"So the answer is 12.5.", "12.5", AnswerSource::kAnswerIs},
      {"Answer: **17**", "17", AnswerSource::kAnswerIs},
      {"We get 3 apples and then 5 more, so 8", "8", AnswerSource::kLastNumber},
      {"It costs $1,234.50.", "1,234.50", AnswerSource::kLastNumber},
      {"the temperature is -4 now", "-4", AnswerSource::kLastNumber},
      {"no numbers at all", "", AnswerSource::kNone},
      {"", "", AnswerSource::kNone},
  };
  for (const Case& c : cases) {
    const ExtractedAnswer extracted = extract_math_answer(c.completion);
    EXPECT_EQ(extracted.text, c.answer) << c.completion;
    EXPECT_EQ(extracted.source, c.source) << c.completion << " -> " << answer_source_name(extracted.source);
  }
}

TEST(MathExtract, LastNumberFallbackCanBeTurnedOff) {
  const MathExtractOptions strict{.last_number_fallback = false};
  EXPECT_EQ(extract_math_answer("so 8", strict).source, AnswerSource::kNone);
  EXPECT_EQ(extract_math_answer("so \\boxed{8}", strict).text, "8");
  EXPECT_EQ(extract_math_answer("<answer>8</answer>", strict).text, "8");
}

TEST(MathExtract, ReferencesUseBoxesAndGsm8kLines) {
  EXPECT_EQ(extract_reference_answer("  42 "), "42");
  EXPECT_EQ(extract_reference_answer("Since ... we get $\\boxed{14{,}916}$."), "14{,}916");
  EXPECT_EQ(extract_reference_answer("48/2 = 24\n#### 72"), "72");
  EXPECT_EQ(extract_reference_answer("\\frac{1}{2}"), "\\frac{1}{2}");
}

TEST(MathExtract, HostileTextIsScannedOnce) {
  const std::vector<std::string> texts = {
      std::string(1 << 20, '{'),
      [] {
        std::string nested;
        while (nested.size() < (1u << 20)) nested += "\\boxed{";
        return nested;
      }(),
      [] {
        std::string many;
        while (many.size() < (1u << 20)) many += "\\boxed{1} ";
        return many;
      }(),
      std::string(1 << 20, '#'),
      [] {
        std::string phrases;
        while (phrases.size() < (1u << 20)) phrases += "answer is ";
        return phrases;
      }(),
  };
  for (const std::string& text : texts) {
    const auto start = std::chrono::steady_clock::now();
    (void)extract_math_answer(text);
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 1.0)
        << text.substr(0, 20);
  }
}

}  // namespace
}  // namespace grpo::reward
