// How much the code grader adds to a test's run: the same Python program run directly (posix_spawn, pipes) and
// graded through CodeGrader (sandbox setup, namespaces, workdir, comparison), side by side, medians over repeats.
// The issue's figure: overhead per test under 20 ms beyond the program's own run time.
// --parent-mib M first fills M MiB of this process's memory, as a trainer holding a model would: spawning copies the
// parent's page tables, so the overhead grows with the parent's resident size.
//   build/bin/grpo_bench_code_grader [--repeats N] [--parent-mib M]
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "reward/code_grader.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kProgram = "a, b = map(int, input().split())\nprint(a + b)\n";

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// The program run the plain way a peer harness without a sandbox would: python3 with the input on a pipe.
double direct_run_ms(const std::string& script) {
  int in[2], out[2];
  if (pipe(in) != 0 || pipe(out) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_addclose(&actions, in[1]);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  std::vector<std::string> args = {"/usr/bin/python3", "-I", script};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const auto start = Clock::now();
  pid_t pid = 0;
  if (posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) != 0) throw std::runtime_error("spawn");
  close(in[0]);
  close(out[1]);
  const char input[] = "1 2\n";
  if (write(in[1], input, sizeof input - 1) < 0) throw std::runtime_error("write");
  close(in[1]);
  char buffer[256];
  while (read(out[0], buffer, sizeof buffer) > 0) {
  }
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  posix_spawn_file_actions_destroy(&actions);
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  int repeats = 30;
  long parent_mib = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--repeats") == 0 && i + 1 < argc) {
      repeats = std::max(3, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--parent-mib") == 0 && i + 1 < argc) {
      parent_mib = std::max(0L, std::atol(argv[++i]));
    } else {
      fmt::print("usage: grpo_bench_code_grader [--repeats N] [--parent-mib M]\n"
                 "Runs one Python program directly and through the code grader's sandbox, {} times each by default,\n"
                 "and prints the medians and the grader's overhead per test.\n", repeats);
      return std::strcmp(argv[i], "--help") == 0 ? 0 : 2;
    }
  }
  std::vector<char> ballast(static_cast<std::size_t>(parent_mib) << 20, 1);  // resident: every page written
  char script_path[] = "/tmp/grpo-bench-XXXXXX.py";
  const int fd = mkstemps(script_path, 3);
  if (fd < 0 || write(fd, kProgram, std::strlen(kProgram)) < 0) return 1;
  close(fd);

  std::vector<double> direct, graded;
  const grpo::reward::CodeGrader grader({.slots = 1});
  const std::string completion = fmt::format("```python\n{}```\n", kProgram);
  const std::string one_test = R"({"inputs": ["1 2\n"], "outputs": ["3\n"]})";
  for (int i = 0; i < repeats; ++i) {
    direct.push_back(direct_run_ms(script_path));
    const auto start = Clock::now();
    const auto result = grader.grade({.completion = completion, .reference = one_test});
    graded.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    if (result.score != 1.0) {
      fmt::print(stderr, "the bench program failed its test: {}\n", result.reason);
      return 1;
    }
  }
  std::remove(script_path);
  const double direct_ms = median(direct), graded_ms = median(graded);
  fmt::print("code grader overhead, one Python test, median of {} runs, parent resident ballast {} MiB ({})\n", repeats,
             parent_mib, ballast.empty() ? "none" : "touched");
  fmt::print("  {:<44} {:>9.2f} ms\n", "direct: python3 solution.py < input", direct_ms);
  fmt::print("  {:<44} {:>9.2f} ms\n", "graded: CodeGrader, one test in the sandbox", graded_ms);
  fmt::print("  {:<44} {:>9.2f} ms  (ratio {:.2f}x; target < 20 ms)\n", "overhead per test", graded_ms - direct_ms,
             graded_ms / direct_ms);
  return 0;
}
