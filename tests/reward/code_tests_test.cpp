// Test-spec parsing in the dataset formats, the stdout comparison rule, the function-result comparison, and fenced
// code extraction; all hand-written cases.
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "reward/code_extract.h"
#include "reward/code_tests.h"

namespace grpo::reward {
namespace {

TEST(ParseCodeTests, ReadsStdioTestsInTheFormsDatasetsUse) {
  const CodeTestSuite suite = parse_code_tests(R"({"inputs": ["1 2\n", ["3", "4"], 5], "outputs": ["3\n", "7", 5]})");
  EXPECT_EQ(suite.kind, CodeTestKind::kStdio);
  ASSERT_EQ(suite.cases.size(), 3u);
  EXPECT_EQ(suite.cases[0].input, "1 2\n");
  EXPECT_EQ(suite.cases[1].input, "3\n4\n");  // a list of lines
  EXPECT_EQ(suite.cases[2].input, "5");
  EXPECT_EQ(suite.cases[2].expected, "5");
}

TEST(ParseCodeTests, ReadsDoubleEncodedReferences) {
  const CodeTestSuite suite = parse_code_tests(R"("{\"inputs\": [\"x\"], \"outputs\": [\"y\"]}")");
  ASSERT_EQ(suite.cases.size(), 1u);
  EXPECT_EQ(suite.cases[0].expected, "y");
}

TEST(ParseCodeTests, ReadsFunctionCallTestsIncludingLiveCodeBenchArgumentLines) {
  const CodeTestSuite suite =
      parse_code_tests(R"({"fn_name": "add", "inputs": [[1, 2], "[1, 2]\n\"a\"\n"], "outputs": [3, [[1, 2], "a"]]})");
  EXPECT_EQ(suite.kind, CodeTestKind::kFunctionCall);
  EXPECT_EQ(suite.fn_name, "add");
  ASSERT_EQ(suite.cases.size(), 2u);
  EXPECT_EQ(suite.cases[0].input, "[1,2]");
  EXPECT_EQ(suite.cases[1].input, R"([[1,2],"a"])");
  EXPECT_EQ(suite.cases[0].expected, "3");
}

TEST(ParseCodeTests, RejectsReferencesNoProgramCouldBeGradedAgainst) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "is not JSON"},
      {"[1, 2]", "must be a JSON object"},
      {R"({"inputs": ["1"]})", "needs both"},
      {R"({"inputs": ["1", "2"], "outputs": ["1"]})", "\"inputs\" has 2 cases but \"outputs\" has 1"},
      {R"({"inputs": [], "outputs": []})", "no test cases"},
      {R"({"inputs": "1", "outputs": "1"})", "must be lists"},
      {R"({"inputs": [{"a": 1}], "outputs": ["1"]})", "inputs[0] must be a string"},
      {R"({"fn_name": 3, "inputs": [[1]], "outputs": [1]})", "\"fn_name\" must be a non-empty string"},
      {R"({"fn_name": "f", "inputs": [7], "outputs": [1]})", "JSON array of arguments"},
  };
  for (const auto& [reference, message] : cases) {
    try {
      parse_code_tests(reference);
      ADD_FAILURE() << "accepted " << reference;
    } catch (const std::invalid_argument& error) {
      EXPECT_NE(std::string(error.what()).find(message), std::string::npos) << reference << " -> " << error.what();
    }
  }
  EXPECT_THROW(parse_code_tests(R"({"inputs": ["1", "2", "3"], "outputs": ["1", "2", "3"]})", /*max_cases=*/2),
               std::invalid_argument);
}

TEST(StdoutDifference, IgnoresTrailingWhitespaceAndFinalNewlinesOnly) {
  EXPECT_EQ(stdout_difference("3\n", "3"), std::nullopt);
  EXPECT_EQ(stdout_difference("1 2   \n3\t\n\n\n", "1 2\n3\n"), std::nullopt);
  EXPECT_EQ(stdout_difference("1\r\n2\r\n", "1\n2\n"), std::nullopt);  // '\r' is trailing whitespace
  EXPECT_EQ(stdout_difference("", "\n"), std::nullopt);
  EXPECT_EQ(*stdout_difference(" 3", "3"), "line 1: expected '3', got ' 3'");  // leading space matters
  EXPECT_EQ(*stdout_difference("1\n\n2", "1\n2"), "line 2: expected '2', got ''");
  EXPECT_EQ(*stdout_difference("1\n2\n3", "1\n2"), "expected 2 lines, got 3");
  EXPECT_EQ(*stdout_difference("1", "1\n2"), "expected 2 lines, got 1");
}

TEST(CallResultDifference, ComparesJsonValuesWithToleranceAndTheWrappedForm) {
  EXPECT_EQ(call_result_difference("3", "3"), std::nullopt);
  EXPECT_EQ(call_result_difference("3.0", "3"), std::nullopt);
  EXPECT_EQ(call_result_difference("0.30000000000000004", "0.3"), std::nullopt);
  EXPECT_EQ(call_result_difference("[1, [2, 3]]", "[1, [2, 3]]"), std::nullopt);
  EXPECT_EQ(call_result_difference(R"({"b": 2, "a": 1})", R"({"a": 1, "b": 2})"), std::nullopt);
  EXPECT_EQ(call_result_difference("5", "[5]"), std::nullopt);  // APPS wraps expected results in a list
  EXPECT_NE(call_result_difference("1", "[1, 2]"), std::nullopt);
  EXPECT_NE(call_result_difference("3.001", "3"), std::nullopt);
  EXPECT_NE(call_result_difference("\"3\"", "3"), std::nullopt);
  EXPECT_NE(call_result_difference("[2, 1]", "[1, 2]"), std::nullopt);
  EXPECT_NE(call_result_difference("true", "1"), std::nullopt);
  EXPECT_EQ(*call_result_difference("not json", "1"), "the function returned a value that is not JSON: 'not json'");
}

TEST(ExtractLastCodeBlock, TakesTheLastClosedFenceAndItsLanguage) {
  const auto code = extract_last_code_block(
      "First try:\n```python\nprint(1)\n```\nBetter:\n```Python3 title=x\nprint(2)\n```\ntrailing text");
  ASSERT_TRUE(code);
  EXPECT_EQ(code->code, "print(2)\n");
  EXPECT_EQ(code->fence_tag, "python3");
  EXPECT_EQ(parse_code_language(code->fence_tag), CodeLanguage::kPython);

  const auto tilde = extract_last_code_block("~~~~cpp\nint main() {}\n```\nstill code\n~~~~\n");
  ASSERT_TRUE(tilde);
  EXPECT_EQ(tilde->code, "int main() {}\n```\nstill code\n");  // a shorter/other fence does not close it
  EXPECT_EQ(parse_code_language(tilde->fence_tag), CodeLanguage::kCpp);
}

TEST(ExtractLastCodeBlock, FindsNothingWithoutAClosedFence) {
  EXPECT_EQ(extract_last_code_block("print(1)"), std::nullopt);
  EXPECT_EQ(extract_last_code_block("```python\nprint(1)\n"), std::nullopt);  // cut off by the token limit
  EXPECT_EQ(extract_last_code_block("``python\nx\n``"), std::nullopt);
  EXPECT_EQ(extract_last_code_block(""), std::nullopt);
  const auto earlier = extract_last_code_block("```\nx = 1\n```\n```python\nunfinished");
  ASSERT_TRUE(earlier);
  EXPECT_EQ(earlier->code, "x = 1\n");
  EXPECT_EQ(earlier->fence_tag, "");
}

TEST(ParseCodeLanguage, KnowsTheAliases) {
  for (const char* name : {"python", "py", "PYTHON3"}) EXPECT_EQ(parse_code_language(name), CodeLanguage::kPython);
  for (const char* name : {"cpp", "C++", "cxx", "cc"}) EXPECT_EQ(parse_code_language(name), CodeLanguage::kCpp);
  for (const char* name : {"", "java", "c"}) EXPECT_EQ(parse_code_language(name), std::nullopt);
}

}  // namespace
}  // namespace grpo::reward
