// The "code" grader: takes the last fenced code block of a completion, runs it in the sandbox against the reference's
// test cases (see code_tests.h for the formats) and scores the verdicts. Python runs under /usr/bin/python3; C++ is
// first compiled with g++ (in the sandbox too: the compiler reads untrusted source), a failed build being the
// compile_error verdict. Samples of a batch run in parallel on `slots` threads, each test in a fresh sandbox.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "reward/code_extract.h"
#include "reward/grader.h"
#include "reward/sandbox.h"

namespace grpo::reward {

// One test's verdict; the names (code_verdict_name) are what logs and `grpo grade` print.
enum class CodeVerdict {
  kOk,
  kWrongAnswer,
  kRuntimeError,   // non-zero exit or a crash signal
  kTimeout,        // CPU or wall-clock limit
  kMemory,         // the address-space limit (MemoryError, std::bad_alloc, or a crash at the limit)
  kOutputLimit,    // too much output, or a file larger than the file-size limit
  kCompileError,   // C++ only: g++ rejected the program
  kSandboxError,   // the sandbox failed; the sample is "cannot score", never a zero
};

std::string_view code_verdict_name(CodeVerdict verdict);  // "ok", "wrong_answer", ...

enum class CodeScorePolicy {
  kAllPass,       // 1 when every test passes, else 0 (R1 / DeepCoder style); stops at the first failing test
  kPassFraction,  // passed / total (partial credit, as some PRIME/CodeRL setups use)
};

struct CodeGraderOptions {
  CodeLanguage default_language = CodeLanguage::kPython;  // when neither the fence tag nor metadata names one
  CodeScorePolicy score_policy = CodeScorePolicy::kAllPass;
  int slots = 0;                   // samples graded at once; 0 = one per hardware thread
  SandboxLimits run_limits = {};   // per test run
  SandboxLimits compile_limits = {.cpu_seconds = 30.0, .wall_seconds = 60.0, .address_space_bytes = 2ull << 30,
                                   .file_size_bytes = 64ull << 20, .output_bytes = 1ull << 20, .open_files = 256,
                                   .processes = 32};
  std::string python = "/usr/bin/python3";
  std::string cxx = "/usr/bin/g++";
  std::vector<std::string> cxx_flags = {"-std=c++17", "-O2", "-pipe"};
  std::size_t max_code_bytes = 256 * 1024;  // longer programs score 0 without being run
  std::size_t max_test_cases = 1000;        // references with more are "cannot score"
};

class CodeGrader final : public Grader {
 public:
  explicit CodeGrader(CodeGraderOptions options = {});

  std::string_view name() const override { return "code"; }

  // The reference holds the tests; metadata may name the language ({"language": "cpp"}) and override the time limit
  // in seconds ({"time_limit": 2}). score per the policy; extracted = the program; tests = one outcome per test run
  // (only up to the first failure under kAllPass). scorable=false for a bad reference, a sandbox failure or the
  // trainer's deadline.
  GradeResult grade(const GradeInput& input) const override;

  // Parallel over samples, up to `slots` at a time; results in input order.
  std::vector<GradeResult> grade_batch(std::span<const GradeInput> inputs) const override;

 private:
  CodeGraderOptions options_;
};

}  // namespace grpo::reward
