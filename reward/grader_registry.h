// Graders by name: a dataset row or config names its grader and the trainer looks it up here, so adding a grader
// never means editing the trainer. Thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "reward/grader.h"

namespace grpo::reward {

using GraderFactory = std::function<std::unique_ptr<Grader>()>;

// A new grader from its registered factory. Throws std::invalid_argument for an unknown name, listing the registered
// ones, and std::runtime_error when the factory returns null.
std::unique_ptr<Grader> make_grader(std::string_view name);

// Sorted; includes the built-ins "accuracy" and "format".
std::vector<std::string> registered_grader_names();

// Adds an in-process grader under `name`, e.g. at the start of main() in a program that embeds the trainer:
//   register_grader("exact_text", [] { return std::make_unique<ExactTextGrader>(); });
// Throws std::invalid_argument for an empty name, a null factory or a name already registered.
void register_grader(std::string name, GraderFactory factory);

}  // namespace grpo::reward
