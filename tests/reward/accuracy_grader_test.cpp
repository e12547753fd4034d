// AccuracyGrader and integer normalisation: signs, leading zeros, integers of any length, rejected look-alikes,
// and "cannot score" for a reference that is not an integer.
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "reward/accuracy_grader.h"

namespace grpo::reward {
namespace {

using namespace std::string_literals;

const std::string kHundredDigits =
    "1234567890123456789012345678901234567890123456789012345678901234567890"
    "123456789012345678901234567890";

TEST(NormaliseInteger, CanonicalisesIntegers) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"42", "42"},
      {"  42 \n", "42"},
      {"+42", "42"},
      {"-42", "-42"},
      {"007", "7"},
      {"-007", "-7"},
      {"0", "0"},
      {"-0", "0"},
      {"+000", "0"},
      {"-000", "0"},
      {"\t-15\r\n", "-15"},
      {kHundredDigits, kHundredDigits},
      {"000" + kHundredDigits, kHundredDigits},
      {"-" + kHundredDigits, "-" + kHundredDigits},
  };
  ASSERT_EQ(kHundredDigits.size(), 100u);
  for (const auto& [text, canonical] : cases) {
    const std::optional<std::string> normalised = normalise_integer(text);
    ASSERT_TRUE(normalised.has_value()) << "'" << text << "'";
    EXPECT_EQ(*normalised, canonical) << "'" << text << "'";
  }
}

TEST(NormaliseInteger, RejectsEverythingElse) {
  const std::vector<std::string> cases = {
      "",          " ",    "-",    "+",     "--1", "+-1",  "- 5", "1 000", "1,000",    "3.5",
      "3.0",       "3.",   ".5",   "12abc", "abc", "0x10", "1e3", "½",     "\xd9\xa3",  // Arabic-Indic digit three
      "\0"s + "1", "1\0"s, "\xff", "(3)",   "3/1", "∞",
  };
  for (const std::string& text : cases) {
    EXPECT_FALSE(normalise_integer(text).has_value()) << "'" << text << "'";
  }
}

GradeResult grade(std::string completion, std::string reference) {
  return AccuracyGrader().grade({.prompt = "1+1", .completion = completion, .reference = reference});
}

TEST(AccuracyGrader, ScoresTheReferenceIntegerOne) {
  EXPECT_EQ(AccuracyGrader().name(), "accuracy");
  const GradeResult right = grade("<think>4*6=24 17+24=41 41-9=32</think><answer>32</answer>", "32");
  EXPECT_EQ(right.score, 1.0);
  EXPECT_TRUE(right.scorable);
  EXPECT_EQ(right.extracted, "32");
  EXPECT_EQ(right.reason, "");

  EXPECT_EQ(grade("<think></think><answer> +032 </answer>", "32").score, 1.0);
  EXPECT_EQ(grade("<think></think><answer>-0</answer>", "0").score, 1.0);
  EXPECT_EQ(grade("<think></think><answer>0</answer>", "-0").score, 1.0);
  EXPECT_EQ(grade("<think></think><answer>-7</answer>", "-007").score, 1.0);
  EXPECT_EQ(grade("<think></think><answer>000" + kHundredDigits + "</answer>", kHundredDigits).score, 1.0);
}

TEST(AccuracyGrader, JudgesTheAnswerRegardlessOfFormat) {
  // Format has its own reward; accuracy reads the last complete answer block even in a malformed completion.
  const GradeResult trailing = grade("<think>x</think><answer>5</answer> and more", "5");
  EXPECT_EQ(trailing.score, 1.0);
  const GradeResult two_blocks = grade("<answer>4</answer><answer>5</answer>", "5");
  EXPECT_EQ(two_blocks.score, 1.0);
  EXPECT_EQ(two_blocks.extracted, "5");
}

TEST(AccuracyGrader, ScoresZeroWithAReason) {
  const GradeResult wrong = grade("<think></think><answer>31</answer>", "32");
  EXPECT_EQ(wrong.score, 0.0);
  EXPECT_TRUE(wrong.scorable);
  EXPECT_EQ(wrong.extracted, "31");
  EXPECT_EQ(wrong.reason, "answer '31' != reference '32'");

  const GradeResult missing = grade("the answer is 32", "32");
  EXPECT_EQ(missing.score, 0.0);
  EXPECT_TRUE(missing.scorable);
  EXPECT_EQ(missing.reason, "no <answer> block");
  EXPECT_EQ(grade("<think></think><answer>32", "32").reason, "no <answer> block");
  EXPECT_EQ(grade("", "32").reason, "no <answer> block");

  for (const std::string answer : {"3.0", "32.0", "1,000", "12abc", "", "thirty-two", "32 33", "\xff"}) {
    const GradeResult bad = grade("<think></think><answer>" + answer + "</answer>", "32");
    EXPECT_EQ(bad.score, 0.0) << answer;
    EXPECT_TRUE(bad.scorable) << answer;
    EXPECT_EQ(bad.extracted, answer);
    EXPECT_EQ(bad.reason.rfind("answer is not an integer: ", 0), 0u) << bad.reason;
  }
  EXPECT_EQ(grade("<think></think><answer>3.5</answer>", "3").reason, "answer is not an integer: '3.5'");
  EXPECT_EQ(grade("<think></think><answer>-1</answer>", "1").score, 0.0);
  EXPECT_EQ(grade("<think></think><answer>1" + kHundredDigits + "</answer>", kHundredDigits).score, 0.0);
}

TEST(AccuracyGrader, KeepsReasonsShortForHugeAnswers) {
  const std::string huge(1 << 20, '7');
  const GradeResult result = grade("<think></think><answer>" + huge + "x</answer>", "7");
  EXPECT_EQ(result.score, 0.0);
  EXPECT_EQ(result.extracted.size(), huge.size() + 1);
  EXPECT_LT(result.reason.size(), 200u) << result.reason.substr(0, 200);
}

TEST(AccuracyGrader, CannotScoreWithoutAnIntegerReference) {
  for (const std::string reference : {"", "3.5", "abc", "1,000", "seven"}) {
    const GradeResult result = grade("<think></think><answer>3</answer>", reference);
    EXPECT_FALSE(result.scorable) << reference;
    EXPECT_EQ(result.score, 0.0);
    EXPECT_EQ(result.extracted, "3");
    EXPECT_EQ(result.reason.rfind("reference is not an integer: ", 0), 0u) << result.reason;
  }
  EXPECT_EQ(grade("<think></think><answer>3</answer>", "3.5").reason, "reference is not an integer: '3.5'");
  // The reference is checked first: a bad reference is the dataset's fault, whatever the model wrote.
  EXPECT_FALSE(grade("garbage", "x").scorable);
}

}  // namespace
}  // namespace grpo::reward
