// Countdown puzzle generation (see countdown_task.h).
#include "rl/tasks/countdown_task.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace grpo::rl {
namespace {

struct Node {
  double value;  // exact enough: numbers ≤ 99, at most 6 of them, and only integer targets are kept after a check
  std::string text;
};

}  // namespace

void validate_countdown_settings(const CountdownSettings& s) {
  if (s.min_numbers < 2 || s.max_numbers < s.min_numbers || s.max_numbers > 6) {
    throw std::invalid_argument("countdown: numbers per puzzle must satisfy 2 <= min_numbers <= max_numbers <= 6");
  }
  if (s.max_number < 1 || s.max_target < 1) throw std::invalid_argument("countdown: max_number and max_target must be at least 1");
}

CountdownProblem generate_countdown_problem(const CountdownSettings& s, std::mt19937_64& rng) {
  validate_countdown_settings(s);
  std::uniform_int_distribution<int> count(s.min_numbers, s.max_numbers);
  std::uniform_int_distribution<int> number(1, s.max_number);
  std::uniform_int_distribution<int> op(0, 3);
  for (int attempt = 0;; ++attempt) {
    if (attempt > 100000) throw std::runtime_error("countdown: no puzzle found for these settings (raise max_target)");
    std::vector<std::int64_t> numbers(static_cast<std::size_t>(count(rng)));
    for (auto& n : numbers) n = number(rng);
    // Combine the numbers in a random order, each step joining two random partial expressions.
    std::vector<Node> nodes;
    for (const auto n : numbers) nodes.push_back({static_cast<double>(n), std::to_string(n)});
    bool ok = true;
    while (nodes.size() > 1 && ok) {
      std::uniform_int_distribution<std::size_t> pick(0, nodes.size() - 1);
      const auto i = pick(rng);
      auto a = nodes[i];
      nodes.erase(nodes.begin() + static_cast<std::ptrdiff_t>(i));
      std::uniform_int_distribution<std::size_t> pick2(0, nodes.size() - 1);
      const auto j = pick2(rng);
      auto b = nodes[j];
      nodes.erase(nodes.begin() + static_cast<std::ptrdiff_t>(j));
      Node joined{};
      switch (op(rng)) {
        case 0: joined = {a.value + b.value, fmt::format("({} + {})", a.text, b.text)}; break;
        case 1:
          if (a.value < b.value) std::swap(a, b);
          joined = {a.value - b.value, fmt::format("({} - {})", a.text, b.text)};
          break;
        case 2: joined = {a.value * b.value, fmt::format("({} * {})", a.text, b.text)}; break;
        default:
          if (b.value == 0.0 || a.value / b.value != static_cast<double>(static_cast<std::int64_t>(a.value / b.value))) {
            ok = false;  // keep divisions exact
            break;
          }
          joined = {a.value / b.value, fmt::format("({} / {})", a.text, b.text)};
      }
      nodes.push_back(joined);
    }
    if (!ok) continue;
    const double target = nodes.front().value;
    if (target < 1 || target > s.max_target || target != static_cast<double>(static_cast<std::int64_t>(target))) continue;
    CountdownProblem problem;
    problem.puzzle = {static_cast<std::int64_t>(target), numbers};
    problem.solution = nodes.front().text;
    // The solution must check (its text re-parsed exactly): guards the generator against itself.
    if (!reward::check_countdown_answer(problem.solution, problem.puzzle).correct) continue;
    problem.question = fmt::format(
        "Using the numbers [{}], create an equation that equals {}. You can use basic arithmetic operations (+, -, *, /) and each "
        "number can only be used once.",
        fmt::join(numbers, ", "), problem.puzzle.target);
    return problem;
  }
}

}  // namespace grpo::rl
