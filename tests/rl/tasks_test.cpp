// Tasks: generated Countdown puzzles are solvable and held out from training; JSON Lines datasets with configurable
// fields, metadata, seeded shuffling per epoch and a resumable position, and every malformed line reported with its
// line number; the sample metrics of evaluation (pass@1, pass@k, maj@k) on a hand table.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "reward/countdown_grader.h"
#include "rl/evaluate.h"
#include "rl/tasks/countdown_task.h"
#include "rl/tasks/jsonl_task.h"
#include "rl/tasks/task.h"

namespace grpo::rl {
namespace {

namespace fs = std::filesystem;

fs::path write_file(const std::string& name, const std::string& text) {
  const auto path = fs::temp_directory_path() / fmt::format("grpo_tasks_{}_{}", ::getpid(), name);
  std::ofstream(path) << text;
  return path;
}

TEST(CountdownTask, PuzzlesHaveTheirOwnSolutionAndFollowTheSettings) {
  std::mt19937_64 rng(3);
  const CountdownSettings settings{3, 4, 50, 80};
  for (int i = 0; i < 300; ++i) {
    const auto p = generate_countdown_problem(settings, rng);
    EXPECT_GE(p.puzzle.numbers.size(), 3u);
    EXPECT_LE(p.puzzle.numbers.size(), 4u);
    EXPECT_GE(p.puzzle.target, 1);
    EXPECT_LE(p.puzzle.target, 80);
    for (const auto n : p.puzzle.numbers) EXPECT_TRUE(n >= 1 && n <= 50);
    EXPECT_TRUE(reward::check_countdown_answer(p.solution, p.puzzle).correct) << p.solution;
    EXPECT_NE(p.question.find(std::to_string(p.puzzle.target)), std::string::npos);
  }
  EXPECT_THROW(validate_countdown_settings({1, 4, 50, 80}), std::invalid_argument);
}

TEST(CountdownTask, EvaluationPuzzlesNeverAppearInTraining) {
  config::RunConfig cfg;
  cfg.set_seed(1);
  cfg.mutable_task()->set_kind(config::COUNTDOWN);
  auto* c = cfg.mutable_task()->mutable_countdown();
  c->set_min_numbers(2);
  c->set_max_numbers(2);
  c->set_max_number(6);
  c->set_max_target(12);  // a small space, so collisions would happen if they were allowed
  cfg.mutable_eval()->set_num_problems(15);
  cfg.mutable_eval()->set_seed(9);
  const auto task = make_task(cfg);
  std::set<std::string> held_out;
  for (const auto& p : task->eval_problems()) held_out.insert(p.reference);
  EXPECT_EQ(held_out.size(), 15u);
  for (int i = 0; i < 500; ++i) {
    const auto p = task->next_train_problem();
    EXPECT_EQ(p.grader, "countdown");
    EXPECT_EQ(held_out.count(p.reference), 0u) << p.reference;
  }
  // The stream resumes where it was.
  const auto state = task->train_state();
  const auto next = task->next_train_problem();
  task->restore_train_state(state);
  EXPECT_EQ(task->next_train_problem().reference, next.reference);
}

TEST(JsonlTask, FieldsMetadataShuffleAndResume) {
  std::string text;
  for (int i = 0; i < 10; ++i) {
    text += nlohmann::json{{"question", fmt::format("q{}", i)}, {"solution", i * 2}, {"level", i % 3}}.dump() + "\n";
  }
  text += "\n";  // a blank line is fine
  text += nlohmann::json{{"question", "code?"}, {"solution", "tests"}, {"checker", "code"}, {"meta", {{"language", "cpp"}}}}.dump() + "\n";
  const auto file = write_file("ok.jsonl", text);
  const JsonlFields fields{"question", "solution", "checker", "meta", "math"};
  const auto rows = read_jsonl_problems(file, fields);
  ASSERT_EQ(rows.size(), 11u);
  EXPECT_EQ(rows[3].question, "q3");
  EXPECT_EQ(rows[3].reference, "6");  // numbers become their text
  EXPECT_EQ(rows[3].grader, "math");
  EXPECT_EQ(nlohmann::json::parse(rows[3].metadata), (nlohmann::json{{"level", 0}}));  // the other fields
  EXPECT_EQ(rows[10].grader, "code");
  EXPECT_EQ(nlohmann::json::parse(rows[10].metadata), (nlohmann::json{{"language", "cpp"}}));

  JsonlTask task(file, file, fields, /*shuffle=*/true, /*seed=*/4, /*max_eval_problems=*/5);
  EXPECT_EQ(task.eval_problems().size(), 5u);
  // Each epoch visits every row once, in a seeded order that differs between epochs.
  std::vector<std::string> epoch1, epoch2;
  for (int i = 0; i < 11; ++i) epoch1.push_back(task.next_train_problem().question);
  const auto state = task.train_state();
  for (int i = 0; i < 11; ++i) epoch2.push_back(task.next_train_problem().question);
  EXPECT_EQ(std::set<std::string>(epoch1.begin(), epoch1.end()).size(), 11u);
  EXPECT_NE(epoch1, epoch2);
  JsonlTask again(file, "", fields, true, 4, 0);
  again.restore_train_state(state);
  for (int i = 0; i < 11; ++i) EXPECT_EQ(again.next_train_problem().question, epoch2[static_cast<std::size_t>(i)]);
  EXPECT_THROW(again.restore_train_state("jsonl epoch 1 position 99"), std::invalid_argument);
  EXPECT_THROW(again.restore_train_state("garbage"), std::invalid_argument);
}

TEST(JsonlTask, EveryMalformedLineIsReportedWithItsNumber) {
  const auto file = write_file("bad.jsonl",
                               "{\"prompt\": \"ok\", \"answer\": \"1\"}\n"
                               "{\"prompt\": \"no answer\"}\n"
                               "not json at all\n"
                               "[1, 2]\n"
                               "{\"prompt\": 5, \"answer\": \"1\"}\n"
                               "{\"prompt\": \"x\", \"answer\": [1], \"grader\": \"math\"}\n"
                               "{\"prompt\": \"x\", \"answer\": \"1\", \"grader\": 7}\n");
  try {
    read_jsonl_problems(file, {});
    FAIL() << "malformed lines must be refused";
  } catch (const std::runtime_error& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find("6 malformed lines"), std::string::npos) << what;
    EXPECT_NE(what.find(":2: no string or number field 'answer' (fields: prompt)"), std::string::npos) << what;
    EXPECT_NE(what.find(":3: not JSON"), std::string::npos) << what;
    EXPECT_NE(what.find(":4: not a JSON object"), std::string::npos) << what;
    EXPECT_NE(what.find(":5: no string field 'prompt'"), std::string::npos) << what;
    EXPECT_NE(what.find(":7: field 'grader' must be a grader name"), std::string::npos) << what;
  }
  EXPECT_THROW(read_jsonl_problems(write_file("empty.jsonl", "\n\n"), {}), std::runtime_error);
  EXPECT_THROW(read_jsonl_problems("/nonexistent/file.jsonl", {}), std::runtime_error);
}

TEST(SampleMetrics, PassAndMajorityOnAHandTable) {
  // Problem 0: answers (7 right, 7 right, 5 wrong) → majority 7, right. Problem 1: (3 wrong, 4 right, 3 wrong) →
  // majority 3, wrong, though one sample was right. Problem 2: nothing answered.
  const auto correct = torch::tensor({{1.0, 1.0, 0.0}, {0.0, 1.0, 0.0}, {0.0, 0.0, 0.0}}, torch::kFloat64);
  const std::vector<std::string> answers = {"7", "7", "5", "3", "4", "3", "", "", ""};
  const auto m = sample_metrics(correct, answers);
  EXPECT_DOUBLE_EQ(m.pass_at_1, 3.0 / 9.0);
  EXPECT_DOUBLE_EQ(m.pass_at_k, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.maj_at_k, 1.0 / 3.0);
  // A tie goes to the answer seen first.
  const auto tie = sample_metrics(torch::tensor({{0.0, 1.0}}, torch::kFloat64), {"a", "b"});
  EXPECT_DOUBLE_EQ(tie.maj_at_k, 0.0);
}

}  // namespace
}  // namespace grpo::rl
