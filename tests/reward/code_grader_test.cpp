// The code grader end to end: real Python and g++ programs run in the real sandbox against hand-written tests, one
// case per verdict, the score policies, the function-call harness, and "cannot score" for what is not the model's
// fault.
#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "reward/code_grader.h"

namespace grpo::reward {
namespace {

constexpr const char* kAddTests = R"({"inputs": ["1 2\n", "10 -3\n"], "outputs": ["3\n", "7\n"]})";

std::string python_block(const std::string& code) { return "Here is my program:\n```python\n" + code + "```\n"; }

GradeResult grade_with(const std::string& completion, const std::string& reference, CodeGraderOptions options = {},
                       const std::string& metadata = "") {
  options.run_limits.cpu_seconds = 1.0;
  options.run_limits.wall_seconds = 3.0;
  options.run_limits.address_space_bytes = 512ull << 20;
  const CodeGrader grader(options);
  return grader.grade({.completion = completion, .reference = reference, .metadata = metadata});
}

std::vector<std::string> verdicts(const GradeResult& result) {
  std::vector<std::string> names;
  for (const TestOutcome& test : result.tests) names.push_back(test.verdict);
  return names;
}

TEST(CodeGrader, PassesACorrectPythonProgramOnEveryTest) {
  const GradeResult result = grade_with(python_block("a, b = map(int, input().split())\nprint(a + b)\n"), kAddTests);
  EXPECT_TRUE(result.scorable) << result.reason;
  EXPECT_EQ(result.score, 1.0) << result.reason;
  EXPECT_EQ(verdicts(result), (std::vector<std::string>{"ok", "ok"}));
  EXPECT_EQ(result.reason, "");
  EXPECT_EQ(result.extracted, "a, b = map(int, input().split())\nprint(a + b)\n");
}

TEST(CodeGrader, WrongAnswerStopsAtTheFirstFailureUnderAllPass) {
  const GradeResult result = grade_with(python_block("print(3)\n"), kAddTests);
  EXPECT_TRUE(result.scorable);
  EXPECT_EQ(result.score, 0.0);
  EXPECT_EQ(verdicts(result), (std::vector<std::string>{"ok", "wrong_answer"}));
  EXPECT_EQ(result.reason, "test 2 of 2: wrong_answer: line 1: expected '7', got '3'");
}

TEST(CodeGrader, PassFractionGivesPartialCredit) {
  const CodeGraderOptions options{.score_policy = CodeScorePolicy::kPassFraction};
  const GradeResult result = grade_with(
      python_block("print(3)\n"), R"({"inputs": ["1 2", "0 3", "5 5"], "outputs": ["3", "3", "10"]})", options);
  EXPECT_NEAR(result.score, 2.0 / 3.0, 1e-12);
  EXPECT_EQ(verdicts(result), (std::vector<std::string>{"ok", "ok", "wrong_answer"}));
}

TEST(CodeGrader, NamesRuntimeErrorsTimeoutsMemoryAndOutputFloods) {
  const std::string one_test = R"({"inputs": ["1"], "outputs": ["1"]})";
  const GradeResult crash = grade_with(python_block("print(1 // 0)\n"), one_test);
  EXPECT_EQ(verdicts(crash), (std::vector<std::string>{"runtime_error"}));
  EXPECT_NE(crash.reason.find("ZeroDivisionError"), std::string::npos) << crash.reason;

  const GradeResult loop = grade_with(python_block("while True:\n    pass\n"), one_test);
  EXPECT_EQ(verdicts(loop), (std::vector<std::string>{"timeout"})) << loop.reason;

  const GradeResult sleeper = grade_with(python_block("import time\ntime.sleep(30)\n"), one_test);
  EXPECT_EQ(verdicts(sleeper), (std::vector<std::string>{"timeout"})) << sleeper.reason;

  const GradeResult hog = grade_with(python_block("x = bytearray(4 << 30)\nprint(1)\n"), one_test);
  EXPECT_EQ(verdicts(hog), (std::vector<std::string>{"memory"})) << hog.reason;

  const GradeResult flood = grade_with(python_block("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n"),
                                       one_test);
  EXPECT_EQ(verdicts(flood), (std::vector<std::string>{"output_limit"})) << flood.reason;
  for (const GradeResult* result : {&crash, &loop, &sleeper, &hog, &flood}) {
    EXPECT_TRUE(result->scorable) << result->reason;
    EXPECT_EQ(result->score, 0.0);
  }
}

TEST(CodeGrader, CallsFunctionsTopLevelAndInClassSolution) {
  const std::string tests =
      R"({"fn_name": "two_sum", "inputs": [[[2, 7, 11], 9], "[3, 3]\n6"], "outputs": [[0, 1], [[0, 1]]]})";
  const GradeResult top_level = grade_with(
      python_block("def two_sum(nums, target):\n    print('debug output is ignored')\n"
                   "    seen = {}\n    for i, n in enumerate(nums):\n        if target - n in seen:\n"
                   "            return (seen[target - n], i)\n        seen[n] = i\n"),
      tests);
  EXPECT_EQ(top_level.score, 1.0) << top_level.reason;
  EXPECT_EQ(verdicts(top_level), (std::vector<std::string>{"ok", "ok"}));

  const GradeResult method = grade_with(
      python_block("class Solution:\n    def two_sum(self, nums: List[int], target: int) -> List[int]:\n"
                   "        return [0, 1]\n"),
      tests);
  EXPECT_EQ(method.score, 1.0) << method.reason;

  const GradeResult missing = grade_with(python_block("def other():\n    return 1\n"), tests);
  EXPECT_EQ(verdicts(missing), (std::vector<std::string>{"runtime_error"}));
  EXPECT_NE(missing.reason.find("no function named two_sum"), std::string::npos) << missing.reason;

  const GradeResult wrong = grade_with(python_block("def two_sum(nums, target):\n    return [1, 0]\n"), tests);
  EXPECT_EQ(verdicts(wrong), (std::vector<std::string>{"wrong_answer"}));
}

TEST(CodeGrader, CompilesAndRunsCpp) {
  const std::string program =
      "```cpp\n#include <iostream>\nint main() { long a, b; std::cin >> a >> b; std::cout << a + b << '\\n'; }\n```";
  const GradeResult ok = grade_with(program, kAddTests);
  EXPECT_EQ(ok.score, 1.0) << ok.reason;
  EXPECT_EQ(verdicts(ok), (std::vector<std::string>{"ok", "ok"}));

  const GradeResult broken = grade_with("```cpp\nint main() { return undefined_name; }\n```", kAddTests);
  EXPECT_TRUE(broken.scorable);
  EXPECT_EQ(broken.score, 0.0);
  EXPECT_EQ(verdicts(broken), (std::vector<std::string>{"compile_error"}));
  EXPECT_NE(broken.reason.find("undefined_name"), std::string::npos) << broken.reason;

  // The task's language wins over the fence: Python handed in for a C++ task does not compile.
  const GradeResult wrong_language = grade_with(python_block("print(3)\n"), kAddTests, {}, R"({"language": "cpp"})");
  EXPECT_EQ(verdicts(wrong_language), (std::vector<std::string>{"compile_error"}));
}

TEST(CodeGrader, ScoresZeroWithoutAProgramAndCannotScoreBadReferences) {
  const GradeResult no_code = grade_with("I think the answer is print(3)", kAddTests);
  EXPECT_TRUE(no_code.scorable);
  EXPECT_EQ(no_code.score, 0.0);
  EXPECT_NE(no_code.reason.find("no complete fenced code block"), std::string::npos);
  EXPECT_TRUE(no_code.tests.empty());

  const GradeResult bad_reference = grade_with(python_block("print(3)\n"), R"({"inputs": ["1"]})");
  EXPECT_FALSE(bad_reference.scorable);
  EXPECT_NE(bad_reference.reason.find("bad reference"), std::string::npos);

  const GradeResult bad_metadata = grade_with(python_block("print(3)\n"), kAddTests, {}, R"({"language": "cobol"})");
  EXPECT_FALSE(bad_metadata.scorable);
  EXPECT_NE(bad_metadata.reason.find("cobol"), std::string::npos);

  const CodeGrader grader;
  const GradeResult late = grader.grade({.completion = python_block("print(3)\n"),
                                         .reference = kAddTests,
                                         .deadline = std::chrono::steady_clock::now() - std::chrono::seconds(1)});
  EXPECT_FALSE(late.scorable);
  EXPECT_NE(late.reason.find("deadline"), std::string::npos);
}

TEST(CodeGrader, GradesABatchInParallelInInputOrder) {
  const CodeGrader grader({.slots = 3});
  std::vector<std::string> completions;
  for (int i = 0; i < 7; ++i) {
    completions.push_back(python_block(i % 2 == 0 ? "a, b = map(int, input().split())\nprint(a + b)\n"
                                                  : "print(0)\n"));
  }
  std::vector<GradeInput> inputs;
  for (const std::string& completion : completions) inputs.push_back({.completion = completion, .reference = kAddTests});
  const std::vector<GradeResult> results = grader.grade_batch(inputs);
  ASSERT_EQ(results.size(), completions.size());
  for (std::size_t i = 0; i < results.size(); ++i) {
    EXPECT_EQ(results[i].score, i % 2 == 0 ? 1.0 : 0.0) << i << ": " << results[i].reason;
  }
}

}  // namespace
}  // namespace grpo::reward
