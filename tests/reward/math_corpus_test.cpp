// Agreement of math_equivalent with the hand-labelled corpus tests/reward/data/math_corpus.jsonl (issue 5's figure:
// at least 97%). Prints agreement per category and every disagreement with our reason, so a failing run says which
// forms regressed; scripts/math_agreement.py measures Math-Verify on the same file.
#include <cstddef>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "reward/math_equivalence.h"

namespace grpo::reward {
namespace {

struct LabelledPair {
  std::string gold;
  std::string pred;
  bool equal = false;
  std::string category;
  std::string source;
};

std::string string_field(const nlohmann::json& row, const char* key, std::size_t line) {
  if (!row.contains(key) || !row[key].is_string()) {
    throw std::runtime_error(fmt::format("corpus line {}: field \"{}\" missing or not a string", line, key));
  }
  return row[key].get<std::string>();
}

// Throws std::runtime_error naming the line for anything but a complete, well-typed row: a corpus that silently
// dropped rows would report a flattering figure.
std::vector<LabelledPair> load_corpus(std::istream& in) {
  std::vector<LabelledPair> pairs;
  std::string text;
  for (std::size_t line = 1; std::getline(in, text); ++line) {
    if (text.empty()) continue;
    nlohmann::json row;
    try {
      row = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(fmt::format("corpus line {}: {}", line, e.what()));
    }
    if (!row.is_object()) throw std::runtime_error(fmt::format("corpus line {}: not an object", line));
    if (!row.contains("equal") || !row["equal"].is_boolean()) {
      throw std::runtime_error(fmt::format("corpus line {}: field \"equal\" missing or not a boolean", line));
    }
    pairs.push_back({.gold = string_field(row, "gold", line),
                     .pred = string_field(row, "pred", line),
                     .equal = row["equal"].get<bool>(),
                     .category = string_field(row, "category", line),
                     .source = string_field(row, "source", line)});
  }
  return pairs;
}

TEST(MathCorpus, LoaderRejectsMalformedLines) {
  const std::vector<std::string> bad = {
      R"({"gold": "1", "pred": "1", "equal": true, "category": "integer"})",               // no source
      R"({"gold": "1", "pred": "1", "equal": "yes", "category": "integer", "source": "own"})",  // label not a bool
      R"({"gold": 1, "pred": "1", "equal": true, "category": "integer", "source": "own"})",     // gold not a string
      R"({"gold": "1", "pred": "1", "equal": true, "category": "integer", "source": "own")",    // truncated
      R"(["1", "1", true])",
  };
  const std::string good = R"({"gold": "1", "pred": "1", "equal": true, "category": "integer", "source": "own"})";
  for (const std::string& line : bad) {
    std::istringstream in(good + "\n" + line + "\n");
    EXPECT_THROW(load_corpus(in), std::runtime_error) << line;
  }
  std::istringstream in(good + "\n");
  EXPECT_EQ(load_corpus(in).size(), 1u);
}

struct Tally {
  int cases = 0;
  int agree = 0;
};

TEST(MathCorpus, AgreesWithHumanLabels) {
  const std::string path = std::string(GRPO_SOURCE_DIR) + "/tests/reward/data/math_corpus.jsonl";
  std::ifstream file(path);
  ASSERT_TRUE(file) << "cannot open " << path;
  const std::vector<LabelledPair> corpus = load_corpus(file);  // a malformed line fails the test here
  ASSERT_GE(corpus.size(), 400u) << "issue 5 asks for at least 400 labelled pairs";

  std::map<std::string, Tally> by_category;
  Tally overall;
  std::string disagreements;
  for (const LabelledPair& pair : corpus) {
    const MathVerdict verdict = math_equivalent(pair.gold, pair.pred);
    const bool agree = verdict.equal == pair.equal;
    for (Tally* tally : {&by_category[pair.category], &overall}) {
      ++tally->cases;
      tally->agree += agree ? 1 : 0;
    }
    if (!agree) {
      disagreements += fmt::format("  [{}] gold '{}' pred '{}' label {}: ours {} ({}) [{}]\n", pair.category, pair.gold,
                                   pair.pred, pair.equal, verdict.equal, verdict.reason, pair.source);
    }
  }

  std::string report = "agreement with the labels by category:\n";
  for (const auto& [category, tally] : by_category) {
    report += fmt::format("  {:<18} {:>4} cases {:>6.1f}%\n", category, tally.cases, 100.0 * tally.agree / tally.cases);
  }
  report += fmt::format("  {:<18} {:>4} cases {:>6.1f}%\n", "ALL", overall.cases, 100.0 * overall.agree / overall.cases);
  std::cout << report << "disagreements:\n" << (disagreements.empty() ? "  none\n" : disagreements);

  // 97%: issue 5's figure; the misses above are listed so each can be judged a grader bug or a policy.
  EXPECT_GE(static_cast<double>(overall.agree) / overall.cases, 0.97);
}

}  // namespace
}  // namespace grpo::reward
