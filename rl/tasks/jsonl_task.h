// A dataset of JSON Lines files as a task: one problem per line, with configurable field names (TRL's "prompt", a
// GSM8K-style "question"/"answer", ...). Training walks the rows in a seeded shuffled order, epoch after epoch; the
// position (epoch, row) is the state a checkpoint keeps. Every malformed line is reported with file and line number
// before training starts.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "rl/tasks/task.h"

namespace grpo::rl {

struct JsonlFields {
  std::string prompt = "prompt";
  std::string answer = "answer";
  std::string grader = "grader";      // a row without it uses default_grader
  std::string metadata = "metadata";  // a row without it passes its other fields as metadata
  std::string default_grader = "math";
};

// Reads every row of `file`. Throws std::runtime_error listing up to 10 bad lines ("train.jsonl:17: no field
// 'prompt' (fields: question, answer)") when any line is not a JSON object with a string prompt and a string or
// number answer, or when the file cannot be read or has no rows.
std::vector<Problem> read_jsonl_problems(const std::filesystem::path& file, const JsonlFields& fields);

class JsonlTask final : public Task {
 public:
  JsonlTask(std::filesystem::path train_file, std::filesystem::path eval_file, JsonlFields fields, bool shuffle, std::uint64_t seed,
            int max_eval_problems);
  Problem next_train_problem() override;
  const std::vector<Problem>& eval_problems() const override { return eval_; }
  std::string train_state() const override;
  void restore_train_state(std::string_view state) override;
  std::string describe() const override;

 private:
  void reshuffle();
  std::filesystem::path train_file_;
  std::vector<Problem> train_, eval_;
  bool shuffle_;
  std::uint64_t seed_;
  std::vector<std::size_t> order_;
  std::uint64_t epoch_ = 0;
  std::size_t position_ = 0;
};

}  // namespace grpo::rl
