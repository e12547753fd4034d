// The R1 template parser and FormatGrader on tables of well-formed and malformed completions, hostile bytes and
// megabyte inputs.
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "reward/format_grader.h"
#include "reward/r1_format.h"

namespace grpo::reward {
namespace {

using namespace std::string_literals;

constexpr std::size_t kOneMegabyte = 1 << 20;

struct GoodCase {
  std::string completion;
  std::string think;
  std::string answer;
};

TEST(ParseR1Completion, AcceptsWellFormedCompletions) {
  const std::vector<GoodCase> cases = {
      {"<think>4*6=24</think><answer>24</answer>", "4*6=24", "24"},
      {"  \n<think>\nreasoning\n</think>\n<answer> 5 </answer>\n", "reasoning", "5"},
      {"<think></think><answer>x</answer>", "", "x"},
      {"<think> </think> \t<answer>42</answer>   ", "", "42"},
      {"<think>a < b and c > d</think><answer>yes</answer>", "a < b and c > d", "yes"},
      {"<think>\0\xff\xfe</think><answer>\xff</answer>"s, "\0\xff\xfe"s, "\xff"},
  };
  for (const GoodCase& good : cases) {
    const ParsedCompletion parsed = parse_r1_completion(good.completion);
    EXPECT_TRUE(parsed.well_formed) << good.completion << " -> " << parsed.problem;
    EXPECT_EQ(parsed.problem, "") << good.completion;
    EXPECT_TRUE(parsed.has_answer) << good.completion;
    EXPECT_EQ(parsed.think, good.think) << good.completion;
    EXPECT_EQ(parsed.answer, good.answer) << good.completion;
  }
}

struct BadCase {
  std::string completion;
  std::string problem;
};

TEST(ParseR1Completion, ExplainsEachMalformedCompletion) {
  const std::vector<BadCase> cases = {
      {"", "empty completion"},
      {"  \n\t ", "empty completion"},
      {"5", "missing <think>"},
      {"<answer>5</answer>", "missing <think>"},
      {"<think>x</think>", "missing <answer>"},
      {"<think>x<answer>5</answer>", "missing </think>"},
      {"<think>x</think><answer>5", "missing </answer>"},
      {"<answer>5</answer><think>x</think>", "<answer> before </think>"},
      {"</think>x<think><answer>5</answer>", "</think> before <think>"},
      {"<think>x</think></answer>5<answer>", "</answer> before <answer>"},
      {"<think>a <answer>5</answer> b</think>", "<answer> before </think>"},
      {"<think>x</think><answer>1</answer><answer>2</answer>", "2 <answer> blocks"},
      {"<think>x</think><answer>5</answer></answer>", "2 </answer> tags"},
      {"<think><think>x</think></think><answer>5</answer>", "2 <think> blocks"},
      {"<think>x<answer>5</answer></think><answer>5</answer>", "2 <answer> blocks"},
      {"<think>x</think><answer>5</answer> 5", "text after </answer>"},
      {"<think>x</think><answer>5</answer>\0"s, "text after </answer>"},
      {"The answer: <think>x</think><answer>5</answer>", "text before <think>"},
      {"\xff<think>x</think><answer>5</answer>", "text before <think>"},
      {"<think>x</think> so <answer>5</answer>", "text between </think> and <answer>"},
      {"<think>x</think><answer>  </answer>", "empty answer"},
      {"<think>x</think><answer></answer>", "empty answer"},
      {"<THINK>x</THINK><ANSWER>5</ANSWER>", "missing <think>"},
  };
  for (const BadCase& bad : cases) {
    const ParsedCompletion parsed = parse_r1_completion(bad.completion);
    EXPECT_FALSE(parsed.well_formed) << bad.completion;
    EXPECT_EQ(parsed.problem, bad.problem) << bad.completion;
  }
}

TEST(ParseR1Completion, ReadsTheLastCompleteAnswerBlockOfMalformedCompletions) {
  struct AnswerCase {
    std::string completion;
    bool has_answer;
    std::string answer;
  };
  const std::vector<AnswerCase> cases = {
      {"<answer>1</answer> <answer>2</answer>", true, "2"},
      {"<answer>1</answer><answer>2", true, "1"},
      {"<answer>1<answer> 2 </answer>", true, "2"},
      {"the answer is <answer>7</answer> really", true, "7"},
      {"<answer></answer>", true, ""},
      {"<answer>5", false, ""},
      {"5</answer>", false, ""},
      {"</answer><answer>", false, ""},
      {"", false, ""},
  };
  for (const AnswerCase& c : cases) {
    const ParsedCompletion parsed = parse_r1_completion(c.completion);
    EXPECT_FALSE(parsed.well_formed) << c.completion;
    EXPECT_EQ(parsed.has_answer, c.has_answer) << c.completion;
    EXPECT_EQ(parsed.answer, c.answer) << c.completion;
  }
}

TEST(ParseR1Completion, UsesConfiguredTags) {
  const TemplateTags tags{
      .think_open = "[reason]", .think_close = "[/reason]", .answer_open = "[final]", .answer_close = "[/final]"};
  const ParsedCompletion good = parse_r1_completion("[reason] a [/reason][final] 9 [/final]", tags);
  EXPECT_TRUE(good.well_formed) << good.problem;
  EXPECT_EQ(good.think, "a");
  EXPECT_EQ(good.answer, "9");
  const ParsedCompletion bad = parse_r1_completion("<think>a</think><answer>9</answer>", tags);
  EXPECT_FALSE(bad.well_formed);
  EXPECT_EQ(bad.problem, "missing [reason]");
}

TEST(ParseR1Completion, RejectsUnusableTagSetsWithoutThrowing) {
  const TemplateTags empty_tag{.think_open = ""};
  EXPECT_EQ(parse_r1_completion("<think>a</think><answer>9</answer>", empty_tag).problem, "template has an empty tag");
  const TemplateTags nested_tags{.answer_open = "<think>x"};
  const ParsedCompletion parsed = parse_r1_completion("<think>x</think><answer>9</answer>", nested_tags);
  EXPECT_FALSE(parsed.well_formed);
  EXPECT_NE(parsed.problem.find("contains tag <think>"), std::string::npos) << parsed.problem;
}

TEST(ParseR1Completion, HandlesMegabyteInputs) {
  const std::string long_think = "<think>" + std::string(kOneMegabyte, 'a') + "</think><answer>1</answer>";
  EXPECT_TRUE(parse_r1_completion(long_think).well_formed);

  std::string repeated_tags;
  while (repeated_tags.size() < kOneMegabyte) repeated_tags += "<think>";
  const ParsedCompletion many = parse_r1_completion(repeated_tags);
  EXPECT_FALSE(many.well_formed);
  EXPECT_NE(many.problem.find("<think> blocks"), std::string::npos) << many.problem;

  // Near-misses of every tag make a naive matcher backtrack at every byte; these must stay linear.
  std::string near_misses;
  while (near_misses.size() < kOneMegabyte) near_misses += "<thin</thin<answe</answe<";
  EXPECT_EQ(parse_r1_completion(near_misses).problem, "missing <think>");

  std::string answers;
  while (answers.size() < kOneMegabyte) answers += "<answer>1</answer>";
  const ParsedCompletion many_answers = parse_r1_completion(answers);
  EXPECT_TRUE(many_answers.has_answer);
  EXPECT_EQ(many_answers.answer, "1");

  std::mt19937_64 rng(/*seed=*/7);
  std::string noise(kOneMegabyte, '\0');
  for (char& c : noise) c = static_cast<char>(rng() & 0xff);
  EXPECT_FALSE(parse_r1_completion(noise).well_formed);
  EXPECT_FALSE(parse_r1_completion(std::string(kOneMegabyte, '\0')).well_formed);
  EXPECT_FALSE(parse_r1_completion(std::string(kOneMegabyte, '\xff')).well_formed);
}

TEST(FormatGrader, ScoresOneOnlyForWellFormedCompletions) {
  const FormatGrader grader;
  EXPECT_EQ(grader.name(), "format");

  const GradeResult good = grader.grade({.completion = "<think>2+2=4</think> <answer>4</answer>", .reference = "4"});
  EXPECT_EQ(good.score, 1.0);
  EXPECT_TRUE(good.scorable);
  EXPECT_EQ(good.extracted, "4");
  EXPECT_EQ(good.reason, "");

  const GradeResult trailing = grader.grade({.completion = "<think></think><answer>4</answer> 4"});
  EXPECT_EQ(trailing.score, 0.0);
  EXPECT_TRUE(trailing.scorable);
  EXPECT_EQ(trailing.reason, "text after </answer>");

  // The format reward does not look at the reference: a wrong answer in the right shape is still well formed.
  EXPECT_EQ(grader.grade({.completion = "<think></think><answer>5</answer>", .reference = "4"}).score, 1.0);
  EXPECT_EQ(grader.grade({.completion = ""}).reason, "empty completion");
}

TEST(FormatGrader, UsesItsTemplateTags) {
  const FormatGrader grader(TemplateTags{.think_open = "<reasoning>", .think_close = "</reasoning>"});
  EXPECT_EQ(grader.grade({.completion = "<reasoning>r</reasoning><answer>1</answer>"}).score, 1.0);
  EXPECT_EQ(grader.grade({.completion = "<think>r</think><answer>1</answer>"}).score, 0.0);
}

}  // namespace
}  // namespace grpo::reward
