// The grader contract and registry: lookup errors that list the names, user registration, thread safety, batched
// grading that survives a throwing grader, and every registered grader fed hostile completions.
#include <algorithm>
#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "reward/grader.h"
#include "reward/grader_registry.h"

namespace grpo::reward {
namespace {

using namespace std::string_literals;

class ConstantGrader final : public Grader {
 public:
  explicit ConstantGrader(double score) : score_(score) {}
  std::string_view name() const override { return "constant"; }
  GradeResult grade(const GradeInput&) const override { return {.score = score_}; }

 private:
  double score_;
};

// Throws on the completion "boom" (a std::exception) and "int" (anything else): a buggy user grader.
class ThrowingGrader final : public Grader {
 public:
  std::string_view name() const override { return "throwing"; }
  GradeResult grade(const GradeInput& input) const override {
    if (input.completion == "boom") throw std::runtime_error("checker crashed on boom");
    if (input.completion == "int") throw 42;
    return {.score = 1.0, .extracted = std::string(input.completion)};
  }
};

std::string joined(const std::vector<std::string>& names) {
  std::string text;
  for (const std::string& name : names) text += (text.empty() ? "" : ", ") + name;
  return text;
}

TEST(GraderRegistry, ListsTheBuiltInsSorted) {
  const std::vector<std::string> names = registered_grader_names();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_NE(std::find(names.begin(), names.end(), "accuracy"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "format"), names.end());
  EXPECT_EQ(make_grader("accuracy")->name(), "accuracy");
  EXPECT_EQ(make_grader("format")->name(), "format");
}

TEST(GraderRegistry, UnknownNameListsTheRegisteredGraders) {
  try {
    make_grader("acuracy");
    FAIL() << "make_grader accepted an unknown name";
  } catch (const std::invalid_argument& error) {
    EXPECT_EQ(std::string(error.what()),
              "unknown grader 'acuracy'; registered graders: " + joined(registered_grader_names()));
    EXPECT_NE(std::string(error.what()).find("accuracy, "), std::string::npos) << error.what();
  }
}

TEST(GraderRegistry, RegistersUserGraders) {
  register_grader("test_constant_half", [] { return std::make_unique<ConstantGrader>(0.5); });
  const std::unique_ptr<Grader> grader = make_grader("test_constant_half");
  EXPECT_EQ(grader->grade({}).score, 0.5);
  const std::vector<std::string> names = registered_grader_names();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_NE(std::find(names.begin(), names.end(), "test_constant_half"), names.end());
}

TEST(GraderRegistry, RejectsBadRegistrations) {
  register_grader("test_duplicate", [] { return std::make_unique<ConstantGrader>(1.0); });
  EXPECT_THROW(register_grader("test_duplicate", [] { return std::make_unique<ConstantGrader>(0.0); }),
               std::invalid_argument);
  EXPECT_EQ(make_grader("test_duplicate")->grade({}).score, 1.0);  // the first registration stays
  EXPECT_THROW(register_grader("format", [] { return std::make_unique<ConstantGrader>(1.0); }), std::invalid_argument);
  EXPECT_THROW(register_grader("", [] { return std::make_unique<ConstantGrader>(1.0); }), std::invalid_argument);
  EXPECT_THROW(register_grader("test_null_factory", nullptr), std::invalid_argument);

  register_grader("test_returns_null", [] { return std::unique_ptr<Grader>(); });
  EXPECT_THROW(make_grader("test_returns_null"), std::runtime_error);
}

TEST(GraderRegistry, IsSafeToUseFromManyThreads) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 50;
  std::atomic<int> made = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &made] {
      register_grader("test_thread_" + std::to_string(t), [] { return std::make_unique<ConstantGrader>(1.0); });
      for (int round = 0; round < kRounds; ++round) {
        if (make_grader(round % 2 == 0 ? "format" : "accuracy")) ++made;
        (void)registered_grader_names();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(made.load(), kThreads * kRounds);
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(make_grader("test_thread_" + std::to_string(t))->grade({}).score, 1.0);
}

TEST(GraderContract, GradeBatchTurnsExceptionsIntoCannotScore) {
  const ThrowingGrader grader;
  const std::vector<GradeInput> inputs = {
      {.completion = "fine"}, {.completion = "boom"}, {.completion = "int"}, {.completion = "also fine"}};
  const std::vector<GradeResult> results = grader.grade_batch(inputs);
  ASSERT_EQ(results.size(), inputs.size());
  EXPECT_TRUE(results[0].scorable);
  EXPECT_EQ(results[0].extracted, "fine");
  EXPECT_FALSE(results[1].scorable);
  EXPECT_EQ(results[1].score, 0.0);
  EXPECT_EQ(results[1].reason, "grader 'throwing' threw: checker crashed on boom");
  EXPECT_FALSE(results[2].scorable);
  EXPECT_EQ(results[2].reason, "grader 'throwing' threw a non-standard exception");
  EXPECT_TRUE(results[3].scorable);
  EXPECT_EQ(results[3].extracted, "also fine");
  EXPECT_TRUE(grader.grade_batch({}).empty());
}

TEST(GraderContract, QuoteExcerptEscapesAndCuts) {
  EXPECT_EQ(quote_excerpt("abc"), "'abc'");
  EXPECT_EQ(quote_excerpt("a\nb\t\0\xff'\\"s), "'a\\nb\\t\\x00\\xff\\'\\\\'");
  EXPECT_EQ(quote_excerpt(std::string(100, 'x'), 3), "'xxx'... (100 bytes)");
}

// Every registered grader, built-in or registered by the tests above, must score hostile completions in [0, 1]
// without throwing: graders never throw on model output.
TEST(GraderContract, EveryRegisteredGraderSurvivesHostileCompletions) {
  std::string megabyte_of_tags;
  while (megabyte_of_tags.size() < (1u << 20)) megabyte_of_tags += "<answer></think><think></answer>";
  const std::vector<std::string> completions = {
      "",
      " \n\t",
      "<think>",
      "</answer></answer><answer>",
      "<think>1+1=2</think><answer>2</answer>",
      "<answer>99999999999999999999999999999999</answer>",
      "\0\xff\xfe<answer>\0</answer>"s,
      std::string(1 << 20, '\xff'),
      megabyte_of_tags,
  };
  for (const std::string& name : registered_grader_names()) {
    if (name == "test_returns_null") continue;  // registered above precisely to fail construction
    const std::unique_ptr<Grader> grader = make_grader(name);
    for (const std::string reference : {"2", "not a number", ""}) {
      for (const std::string& completion : completions) {
        GradeResult result;
        ASSERT_NO_THROW(result = grader->grade({.prompt = "1+1", .completion = completion, .reference = reference}))
            << name;
        EXPECT_GE(result.score, 0.0) << name;
        EXPECT_LE(result.score, 1.0) << name;
      }
    }
  }
}

}  // namespace
}  // namespace grpo::reward
