// JSON Lines datasets (see jsonl_task.h).
#include "rl/tasks/jsonl_task.h"

#include <algorithm>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

namespace grpo::rl {
namespace {

std::string field_list(const nlohmann::json& row) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : row.items()) keys.push_back(key);
  return fmt::format("{}", fmt::join(keys, ", "));
}

}  // namespace

std::vector<Problem> read_jsonl_problems(const std::filesystem::path& file, const JsonlFields& fields) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("cannot read the dataset {}", file.string()));
  std::vector<Problem> problems;
  std::vector<std::string> errors;
  std::size_t bad = 0;
  std::string line;
  for (std::size_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank lines are allowed
    const auto report = [&](const std::string& problem) {
      ++bad;
      if (errors.size() < 10) errors.push_back(fmt::format("{}:{}: {}", file.string(), number, problem));
    };
    nlohmann::json row;
    try {
      row = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& error) {
      report(fmt::format("not JSON ({})", error.what()));
      continue;
    }
    if (!row.is_object()) {
      report("not a JSON object");
      continue;
    }
    const auto prompt = row.find(fields.prompt);
    if (prompt == row.end() || !prompt->is_string()) {
      report(fmt::format("no string field '{}' (fields: {})", fields.prompt, field_list(row)));
      continue;
    }
    const auto answer = row.find(fields.answer);
    if (answer == row.end() || !(answer->is_string() || answer->is_number())) {
      report(fmt::format("no string or number field '{}' (fields: {})", fields.answer, field_list(row)));
      continue;
    }
    Problem problem;
    problem.question = prompt->get<std::string>();
    problem.reference = answer->is_string() ? answer->get<std::string>() : answer->dump();
    const auto grader = row.find(fields.grader);
    if (grader != row.end() && !grader->is_string()) {
      report(fmt::format("field '{}' must be a grader name (a string)", fields.grader));
      continue;
    }
    problem.grader = grader != row.end() ? grader->get<std::string>() : fields.default_grader;
    const auto metadata = row.find(fields.metadata);
    if (metadata != row.end()) {
      problem.metadata = metadata->is_object() ? metadata->dump() : nlohmann::json{{fields.metadata, *metadata}}.dump();
    } else {
      auto rest = row;
      rest.erase(fields.prompt);
      rest.erase(fields.answer);
      rest.erase(fields.grader);
      if (!rest.empty()) problem.metadata = rest.dump();
    }
    problems.push_back(std::move(problem));
  }
  if (bad > 0) {
    throw std::runtime_error(fmt::format("{} malformed line{} in {}:\n  {}{}", bad, bad == 1 ? "" : "s", file.string(), fmt::join(errors, "\n  "),
                                         bad > errors.size() ? fmt::format("\n  ... and {} more", bad - errors.size()) : ""));
  }
  if (problems.empty()) throw std::runtime_error(fmt::format("the dataset {} has no rows", file.string()));
  return problems;
}

JsonlTask::JsonlTask(std::filesystem::path train_file, std::filesystem::path eval_file, JsonlFields fields, bool shuffle, std::uint64_t seed,
                     int max_eval_problems)
    : train_file_(std::move(train_file)), train_(read_jsonl_problems(train_file_, fields)), shuffle_(shuffle), seed_(seed) {
  if (!eval_file.empty()) {
    eval_ = read_jsonl_problems(eval_file, fields);
    if (max_eval_problems >= 0 && eval_.size() > static_cast<std::size_t>(max_eval_problems)) eval_.resize(static_cast<std::size_t>(max_eval_problems));
  }
  reshuffle();
}

void JsonlTask::reshuffle() {
  order_.resize(train_.size());
  std::iota(order_.begin(), order_.end(), std::size_t{0});
  if (shuffle_) {
    std::mt19937_64 rng(seed_ * 0x9E3779B97F4A7C15ULL + epoch_);
    std::shuffle(order_.begin(), order_.end(), rng);
  }
}

Problem JsonlTask::next_train_problem() {
  if (position_ == order_.size()) {
    ++epoch_;
    position_ = 0;
    reshuffle();
  }
  return train_[order_[position_++]];
}

std::string JsonlTask::train_state() const { return fmt::format("jsonl epoch {} position {}", epoch_, position_); }

void JsonlTask::restore_train_state(std::string_view state) {
  std::istringstream in{std::string(state)};
  std::string jsonl, epoch_word, position_word;
  std::uint64_t epoch = 0;
  std::size_t position = 0;
  in >> jsonl >> epoch_word >> epoch >> position_word >> position;
  if (in.fail() || jsonl != "jsonl" || position > train_.size()) {
    throw std::invalid_argument(fmt::format("the saved dataset position '{}' does not fit {} ({} rows)", state, train_file_.string(), train_.size()));
  }
  epoch_ = epoch;
  reshuffle();
  position_ = position;
}

std::string JsonlTask::describe() const {
  return fmt::format("{}: {} rows{}, {} held-out", train_file_.string(), train_.size(), shuffle_ ? " (shuffled each epoch)" : "", eval_.size());
}

}  // namespace grpo::rl
