// Running the real `grpo` binary from a test: its exit code and everything it printed.
#pragma once

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace grpo::testing {

struct Result {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs `grpo ARGS` through the shell (ARGS may hold redirections and environment assignments before it).
inline Result run_grpo(const std::string& args, const std::string& environment = "") {
  const std::string command = environment + (environment.empty() ? "" : " ") + std::string(GRPO_BINARY) + " " + args + " 2>&1";
  Result result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) result.output += buffer.data();
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

// A scratch folder per test process, removed when the process exits.
inline std::filesystem::path scratch_dir() {
  struct Scratch {
    std::filesystem::path dir = std::filesystem::temp_directory_path() / ("grpo_e2e_" + std::to_string(::getpid()));
    Scratch() {
      std::filesystem::remove_all(dir);
      std::filesystem::create_directories(dir);
    }
    ~Scratch() {
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    }
  };
  static const Scratch scratch;
  return scratch.dir;
}

inline bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

}  // namespace grpo::testing
