// The built-in tasks behind the Task interface, and make_task (see task.h).
#include "rl/tasks/task.h"

#include <random>
#include <sstream>
#include <stdexcept>
#include <unordered_set>

#include <fmt/format.h>

#include "rl/tasks/arithmetic_task.h"
#include "rl/tasks/countdown_task.h"
#include "rl/tasks/jsonl_task.h"

namespace grpo::rl {
namespace {

Problem as_problem(const ArithmeticProblem& p) { return {p.expression, p.answer, "accuracy", ""}; }

class ArithmeticSource final : public Task {
 public:
  ArithmeticSource(const ArithmeticSettings& settings, std::uint64_t seed, std::uint64_t eval_seed, int eval_count)
      : task_(settings, seed, eval_seed, eval_count) {
    for (const auto& p : task_.eval_problems()) eval_.push_back(as_problem(p));
  }
  Problem next_train_problem() override { return as_problem(task_.next_train_problem()); }
  const std::vector<Problem>& eval_problems() const override { return eval_; }
  std::string train_state() const override { return task_.train_state(); }
  void restore_train_state(std::string_view state) override { task_.restore_train_state(state); }
  std::string describe() const override {
    return fmt::format("generated arithmetic ({}-{} operations)", task_.settings().min_ops, task_.settings().max_ops);
  }

 private:
  ArithmeticTask task_;
  std::vector<Problem> eval_;
};

class CountdownSource final : public Task {
 public:
  CountdownSource(const CountdownSettings& settings, std::uint64_t seed, std::uint64_t eval_seed, int eval_count)
      : settings_(settings), rng_(seed) {
    validate_countdown_settings(settings_);
    std::mt19937_64 eval_rng(eval_seed);
    for (int attempts = 0; static_cast<int>(eval_.size()) < eval_count; ++attempts) {
      if (attempts > eval_count * 100 + 1000) throw std::invalid_argument("countdown: too few distinct puzzles for eval.num_problems");
      const auto p = generate_countdown_problem(settings_, eval_rng);
      if (held_out_.insert(key(p)).second) eval_.push_back(as_problem(p));
    }
  }
  Problem next_train_problem() override {
    for (;;) {
      const auto p = generate_countdown_problem(settings_, rng_);
      if (!held_out_.count(key(p))) return as_problem(p);  // never train on an evaluation puzzle
    }
  }
  const std::vector<Problem>& eval_problems() const override { return eval_; }
  std::string train_state() const override {
    std::ostringstream out;
    out << rng_;
    return out.str();
  }
  void restore_train_state(std::string_view state) override {
    std::istringstream in{std::string(state)};
    std::mt19937_64 rng;
    in >> rng;
    if (in.fail()) throw std::invalid_argument("countdown task: the saved training-stream state is not a generator state");
    rng_ = rng;
  }
  std::string describe() const override {
    return fmt::format("generated Countdown ({}-{} numbers up to {}, targets up to {})", settings_.min_numbers, settings_.max_numbers,
                       settings_.max_number, settings_.max_target);
  }

 private:
  static std::string key(const CountdownProblem& p) { return reward::countdown_reference(p.puzzle); }
  static Problem as_problem(const CountdownProblem& p) { return {p.question, reward::countdown_reference(p.puzzle), "countdown", ""}; }
  CountdownSettings settings_;
  std::mt19937_64 rng_;
  std::vector<Problem> eval_;
  std::unordered_set<std::string> held_out_;
};

}  // namespace

std::unique_ptr<Task> make_task(const config::RunConfig& config) {
  const auto& t = config.task();
  switch (t.kind()) {
    case config::ARITHMETIC: {
      const auto& a = t.arithmetic();
      return std::make_unique<ArithmeticSource>(ArithmeticSettings{a.min_ops(), a.max_ops(), a.max_operand(), a.max_factor(), a.max_value()},
                                                config.seed(), config.eval().seed(), config.eval().num_problems());
    }
    case config::COUNTDOWN: {
      const auto& c = t.countdown();
      return std::make_unique<CountdownSource>(CountdownSettings{c.min_numbers(), c.max_numbers(), c.max_number(), c.max_target()},
                                               config.seed(), config.eval().seed(), config.eval().num_problems());
    }
    case config::JSONL: {
      const auto& j = t.jsonl();
      if (j.train_file().empty()) throw std::invalid_argument("task.jsonl.train_file is empty: name the training JSON Lines file");
      const JsonlFields fields{j.prompt_field(), j.answer_field(), j.grader_field(), j.metadata_field(), j.default_grader()};
      return std::make_unique<JsonlTask>(j.train_file(), j.eval_file(), fields, j.shuffle(), config.seed(), config.eval().num_problems());
    }
  }
  throw std::invalid_argument("unknown task.kind");
}

}  // namespace grpo::rl
