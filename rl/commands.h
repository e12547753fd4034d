// The `grpo` command line: one table of subcommands; each entry's spec both parses its arguments and generates its
// --help. Exit codes: 0 success, 1 failure, 2 usage or config error, 130 interrupted (Ctrl-C).
#pragma once

#include <functional>
#include <vector>

#include "rl/cli/arg_parser.h"

namespace grpo::rl {

inline constexpr int kExitSuccess = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

struct Command {
  cli::CommandSpec spec;
  std::function<int(const cli::ParsedArgs&)> run;
};

const std::vector<Command>& commands();

// Entry point of the `grpo` binary: dispatches to a subcommand and turns errors into messages and exit codes.
int run_command_line(int argc, char** argv);

}  // namespace grpo::rl
