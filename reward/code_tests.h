// Test cases for the code grader, in the formats coding datasets ship (APPS, TACO, CodeContests, DeepCoder,
// LiveCodeBench), and the rules that decide whether a program's output passes one.
//   stdin/stdout:   {"inputs": ["1 2\n", ...], "outputs": ["3\n", ...]}
//   function calls: {"fn_name": "add", "inputs": [[1, 2], ...], "outputs": [3, ...]}
// The expected outputs never enter the sandbox: the program sees only a test's input.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace grpo::reward {

enum class CodeTestKind {
  kStdio,         // the program reads the input on stdin; its stdout is compared line by line
  kFunctionCall,  // a function (top-level or a method of class Solution) is called with JSON arguments
};

struct CodeTestCase {
  // kStdio: the stdin text. kFunctionCall: the arguments as a JSON array text, e.g. "[1, [2, 3]]".
  std::string input;
  // kStdio: the expected stdout. kFunctionCall: the expected return value as JSON text.
  std::string expected;
};

struct CodeTestSuite {
  CodeTestKind kind = CodeTestKind::kStdio;
  std::string fn_name;  // kFunctionCall only
  std::vector<CodeTestCase> cases;
};

// Parses a reference. Accepts the object itself or a JSON string containing it (datasets often store the tests
// double-encoded). Input and output elements may be strings or lists of lines (joined with '\n'). For function calls,
// an input may also be LiveCodeBench's form: a string of one JSON value per line, one per argument. Throws
// std::invalid_argument saying what is wrong ("\"inputs\" has 3 cases but \"outputs\" has 2") for a reference no
// program could be graded against: the grader turns that into "cannot score", not a zero.
CodeTestSuite parse_code_tests(std::string_view reference, std::size_t max_cases = 1000);

// Whether `actual` stdout passes for `expected`: compared line by line after removing trailing whitespace from each
// line and ignoring empty lines at the very end (so a missing final newline does not matter); the line counts must
// then be equal. Returns nullopt when they match, otherwise a short description of the first difference.
std::optional<std::string> stdout_difference(std::string_view actual, std::string_view expected);

// Whether a returned value (JSON text as the harness printed it) passes for the expected JSON: equal as JSON values,
// with numbers compared as doubles to a relative 1e-9 and tuples already turned into lists by the harness. Following
// APPS, an expected value that is a one-element list also accepts that element (datasets wrap results in a list).
// Returns nullopt when it passes, otherwise a short description.
std::optional<std::string> call_result_difference(std::string_view actual_json, std::string_view expected_json);

}  // namespace grpo::reward
