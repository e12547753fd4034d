// Where a run's problems come from, behind one interface: the generated arithmetic of the embedded default, generated
// Countdown puzzles (TinyZero's task), or JSON Lines datasets. Each problem names the grader that checks its answers,
// so one run can mix math, code and custom checkers; the reward's "accuracy" term is that grader's score.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rl/config/run_config.pb.h"

namespace grpo::rl {

struct Problem {
  std::string question;   // what the prompt template wraps ("7+4*6-9", or a dataset row's prompt)
  std::string reference;  // what the grader expects (an integer, a math answer, tests as JSON, a countdown puzzle)
  std::string grader;     // the registered grader that checks answers: "accuracy", "math", "code", "countdown", ...
  std::string metadata;   // a JSON object's text (the row's other fields), or empty
};

class Task {
 public:
  virtual ~Task() = default;
  virtual Problem next_train_problem() = 0;
  virtual const std::vector<Problem>& eval_problems() const = 0;
  // The training stream's position as text, and back, for exact resume. restore throws std::invalid_argument for
  // text it did not write.
  virtual std::string train_state() const = 0;
  virtual void restore_train_state(std::string_view state) = 0;
  // One line for the log, e.g. "arithmetic (3-4 operations)" or "data/train.jsonl: 7473 rows".
  virtual std::string describe() const = 0;
};

// The task of a run config (task.kind and its section), with the run's seeds. Throws std::invalid_argument (bad
// settings) or std::runtime_error (unreadable or malformed dataset files, naming file and line).
std::unique_ptr<Task> make_task(const config::RunConfig& config);

}  // namespace grpo::rl
