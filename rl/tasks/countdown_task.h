// Generated Countdown puzzles (TinyZero, after the game show): reach a target from given numbers with + − × ÷, each
// number used exactly once. Every puzzle is built from an expression that solves it, so each has a solution; the
// "countdown" grader checks answers exactly (reward/countdown_grader.h).
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "reward/countdown_grader.h"

namespace grpo::rl {

struct CountdownSettings {
  int min_numbers = 3;
  int max_numbers = 4;
  int max_number = 99;   // numbers are drawn from [1, max_number]
  int max_target = 100;  // targets lie in [1, max_target]
};

struct CountdownProblem {
  reward::CountdownPuzzle puzzle;
  std::string solution;  // an expression that reaches the target
  std::string question;  // TinyZero's wording
};

// Throws std::invalid_argument for settings out of range.
void validate_countdown_settings(const CountdownSettings& settings);
// Draws numbers and a random expression over all of them until it lands on an integer target in range.
CountdownProblem generate_countdown_problem(const CountdownSettings& settings, std::mt19937_64& rng);

}  // namespace grpo::rl
