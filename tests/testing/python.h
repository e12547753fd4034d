// Running the reference Python (GRPO_PYTHON, the project's .venv with tokenizers/transformers from PyPI) from a
// test: cross-checks against the Hugging Face implementations. Tests skip visibly when it is not configured.
#pragma once

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <sys/wait.h>

namespace grpo::testing {

// The interpreter the build was configured with, or empty when there is none.
inline std::filesystem::path reference_python() {
  const std::filesystem::path python = GRPO_PYTHON;
  if (python.empty() || !std::filesystem::exists(python)) return {};
  return python;
}

struct PythonRun {
  int exit_code = -1;  // the script's exit status; -1 when it could not be started or was killed
  std::string output;  // standard output (standard error goes to the test log)
};

// Runs `python script args...`, capturing standard output. Arguments are single-quoted for the shell.
inline PythonRun run_python(const std::filesystem::path& script, const std::vector<std::string>& args) {
  std::string command = fmt::format("'{}' '{}'", reference_python().string(), script.string());
  for (const auto& arg : args) command += fmt::format(" '{}'", arg);
  PythonRun run;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  std::array<char, 4096> chunk{};
  std::size_t read = 0;
  while ((read = std::fread(chunk.data(), 1, chunk.size(), pipe)) > 0) run.output.append(chunk.data(), read);
  const int status = ::pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

}  // namespace grpo::testing
