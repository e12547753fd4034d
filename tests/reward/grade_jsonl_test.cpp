// grade_jsonl: both line forms, one output line per input line in order, and every kind of malformed line answered
// with {"line": N, "error": ...} while grading goes on.
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "reward/grade_jsonl.h"

namespace grpo::reward {
namespace {

struct GradeRun {
  GradeJsonlSummary summary;
  std::vector<nlohmann::ordered_json> lines;  // each output line, parsed
  std::string raw;
};

GradeRun run(const std::string& input) {
  std::istringstream in(input);
  std::ostringstream out;
  GradeRun result;
  result.summary = grade_jsonl(in, out, {});
  result.raw = out.str();
  std::istringstream lines(result.raw);
  for (std::string line; std::getline(lines, line);) {
    result.lines.push_back(nlohmann::ordered_json::parse(line));  // every output line must itself be valid JSON
  }
  return result;
}

TEST(GradeJsonl, ComparesGoldAndPredictionKeepingTheInputFields) {
  const GradeRun r = run(
      "{\"id\": 7, \"gold\": \"\\\\frac{1}{2}\", \"pred\": \"0.5\"}\n"
      "{\"gold\": \"3\", \"pred\": \"4\"}\n");
  ASSERT_EQ(r.lines.size(), 2u);
  EXPECT_EQ(r.lines[0]["id"], 7);
  EXPECT_EQ(r.lines[0]["equal"], true);
  EXPECT_EQ(r.lines[0]["reason"], "");
  EXPECT_EQ(r.lines[0].begin().key(), "id");  // input order kept, verdict appended
  EXPECT_EQ(r.lines[1]["equal"], false);
  EXPECT_FALSE(r.lines[1]["reason"].get<std::string>().empty());
  EXPECT_EQ(r.summary.lines, 2u);
  EXPECT_EQ(r.summary.pairs, 2u);
  EXPECT_EQ(r.summary.pairs_equal, 1u);
  EXPECT_TRUE(r.summary.ok());
}

TEST(GradeJsonl, AcceptsNumbersAsAnswersAndReplacesAnExistingVerdict) {
  const GradeRun r = run(R"({"gold": 42, "pred": "42.0", "equal": false})"
                    "\n"
                    R"({"gold": 0.25, "pred": "\\frac14"})"
                    "\n");
  ASSERT_EQ(r.lines.size(), 2u);
  EXPECT_EQ(r.lines[0]["equal"], true);
  EXPECT_EQ(r.lines[1]["equal"], true);
}

TEST(GradeJsonl, RunsANamedGraderAndCachesIt) {
  const GradeRun r = run(
      R"({"completion": "so the answer is \\boxed{4}", "reference": "4", "grader": "math"})"
      "\n"
      R"({"completion": "I think \\boxed{5}", "reference": "4", "grader": "math"})"
      "\n"
      R"({"completion": "\\boxed{5}", "reference": "", "grader": "math"})"
      "\n");
  ASSERT_EQ(r.lines.size(), 3u);
  EXPECT_EQ(r.lines[0]["score"], 1.0);
  EXPECT_EQ(r.lines[0]["components"], nlohmann::ordered_json({{"math", 1.0}}));
  EXPECT_EQ(r.lines[0]["extracted"], "4");
  EXPECT_EQ(r.lines[0]["scorable"], true);
  EXPECT_EQ(r.lines[1]["score"], 0.0);
  EXPECT_EQ(r.lines[1]["extracted"], "5");
  EXPECT_FALSE(r.lines[1]["reason"].get<std::string>().empty());
  EXPECT_EQ(r.lines[2]["scorable"], false);
  EXPECT_EQ(r.summary.graded, 3u);
  EXPECT_EQ(r.summary.unscorable, 1u);
  EXPECT_TRUE(r.summary.ok());
}

TEST(GradeJsonl, MalformedLinesBecomeErrorLinesAndGradingGoesOn) {
  const std::vector<std::string> bad = {
      "not json",
      "[1, 2]",
      R"({"gold": "1"})",
      R"({"gold": true, "pred": "1"})",
      R"({"gold": "1", "pred": null})",
      R"({"completion": "x", "reference": "1"})",
      R"({"completion": 3, "reference": "1", "grader": "math"})",
      R"({"completion": "x", "reference": "1", "grader": "no_such_grader"})",
      R"({"gold": "1", "pred": "1", "grader": "math"})",
      R"({"answer": "1"})",
      R"({"gold": 1e999, "pred": "1"})",
  };
  std::string input;
  for (const std::string& line : bad) input += line + "\n" + R"({"gold": "1", "pred": "1"})" + "\n";
  const GradeRun r = run(input);
  ASSERT_EQ(r.lines.size(), 2 * bad.size());
  for (std::size_t i = 0; i < bad.size(); ++i) {
    const auto& error_line = r.lines[2 * i];
    EXPECT_EQ(error_line["line"], 2 * i + 1) << bad[i];
    ASSERT_TRUE(error_line.contains("error")) << bad[i] << " -> " << error_line.dump();
    EXPECT_FALSE(error_line["error"].get<std::string>().empty()) << bad[i];
    EXPECT_EQ(r.lines[2 * i + 1]["equal"], true) << "the line after " << bad[i];
  }
  EXPECT_EQ(r.summary.errors, bad.size());
  EXPECT_EQ(r.summary.pairs, bad.size());
  EXPECT_FALSE(r.summary.ok());
}

TEST(GradeJsonl, ErrorsNameTheProblem) {
  const GradeRun r = run(R"({"gold": "1"})"
                    "\n"
                    R"({"completion": "x", "reference": "1", "grader": "no_such_grader"})"
                    "\n");
  ASSERT_EQ(r.lines.size(), 2u);
  EXPECT_NE(r.lines[0]["error"].get<std::string>().find("pred"), std::string::npos) << r.lines[0].dump();
  // The registry's message lists the valid names, so the user sees what to write instead.
  EXPECT_NE(r.lines[1]["error"].get<std::string>().find("math"), std::string::npos) << r.lines[1].dump();
}

TEST(GradeJsonl, BlankLinesAreSkippedButCountedInLineNumbers) {
  const GradeRun r = run("\n   \r\n{\"gold\": \"2\", \"pred\": \"2\"}\r\n\nbroken\n");
  ASSERT_EQ(r.lines.size(), 2u);
  EXPECT_EQ(r.lines[0]["equal"], true);
  EXPECT_EQ(r.lines[1]["line"], 5);
  EXPECT_EQ(r.summary.lines, 2u);
}

TEST(GradeJsonl, OutputStaysValidJsonForNonAsciiAndInvalidUtf8Answers) {
  // "é" as UTF-8 passes through; a truncated multi-byte sequence inside the completion must not lose the line.
  const GradeRun r = run("{\"gold\": \"caf\xc3\xa9\", \"pred\": \"CAF\xc3\xa9\"}\n"
                    "{\"completion\": \"\\\\boxed{\xe2\x88\", \"reference\": \"1\", \"grader\": \"math\"}\n");
  ASSERT_EQ(r.lines.size(), 2u);
  EXPECT_TRUE(r.lines[0].contains("equal"));
  // The second input is itself invalid UTF-8, which the JSON parser rejects: an error line, not a crash.
  EXPECT_TRUE(r.lines[1].contains("error") || r.lines[1].contains("score")) << r.lines[1].dump();
}

}  // namespace
}  // namespace grpo::reward
