// The code grader (see code_grader.h): extract, build, run every test in the sandbox, turn runs into verdicts.
#include "reward/code_grader.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "reward/code_tests.h"
#include "reward/python_call_harness.h"

namespace grpo::reward {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kPythonSource = "solution.py";
constexpr std::string_view kCppSource = "solution.cpp";
constexpr std::string_view kCppBinary = "solution";

// What the dataset row's metadata may say about the program.
struct CodeTask {
  std::optional<CodeLanguage> language;
  std::optional<double> time_limit_seconds;
};

CodeTask parse_metadata(std::string_view metadata) {
  CodeTask task;
  if (trim_ascii_space(metadata).empty()) return task;
  nlohmann::json object;
  try {
    object = nlohmann::json::parse(metadata);
  } catch (const nlohmann::json::parse_error& error) {
    throw std::invalid_argument(fmt::format("metadata is not JSON: {}", error.what()));
  }
  if (!object.is_object()) throw std::invalid_argument("metadata must be a JSON object");
  if (const auto it = object.find("language"); it != object.end() && !it->is_null()) {
    const auto language = it->is_string() ? parse_code_language(it->get<std::string>()) : std::nullopt;
    if (!language) {
      throw std::invalid_argument(fmt::format("metadata language {} is not one this grader runs (python, cpp)",
                                              it->dump()));
    }
    task.language = language;
  }
  if (const auto it = object.find("time_limit"); it != object.end() && !it->is_null()) {
    if (!it->is_number() || !(it->get<double>() > 0.0) || it->get<double>() > 600.0) {
      throw std::invalid_argument(fmt::format("metadata time_limit {} must be seconds in (0, 600]", it->dump()));
    }
    task.time_limit_seconds = it->get<double>();
  }
  return task;
}

bool mentions_memory_exhaustion(std::string_view stderr_text) {
  return stderr_text.find("MemoryError") != std::string_view::npos ||
         stderr_text.find("std::bad_alloc") != std::string_view::npos ||
         stderr_text.find("Cannot allocate memory") != std::string_view::npos;
}

// The most telling line of a failed run's stderr: a Python traceback ends with the exception, a crash with a message.
std::string last_stderr_line(std::string_view stderr_text) {
  std::string_view text = trim_ascii_space(stderr_text);
  const std::size_t newline = text.rfind('\n');
  if (newline != std::string_view::npos) text = text.substr(newline + 1);
  return quote_excerpt(trim_ascii_space(text), 120);
}

// A run that did not finish normally, as a verdict; nullopt when it exited 0 and its output must be compared.
std::optional<TestOutcome> abnormal_outcome(const SandboxResult& run) {
  const auto outcome = [&](CodeVerdict verdict, std::string detail) {
    return TestOutcome{std::string(code_verdict_name(verdict)), std::move(detail), run.wall_seconds};
  };
  switch (run.status) {
    case SandboxStatus::kExited:
      if (run.exit_code == 0) return std::nullopt;
      if (mentions_memory_exhaustion(run.stderr_data)) {
        return outcome(CodeVerdict::kMemory, "ran out of memory: " + last_stderr_line(run.stderr_data));
      }
      return outcome(CodeVerdict::kRuntimeError,
                     fmt::format("exit code {}: {}", run.exit_code, last_stderr_line(run.stderr_data)));
    case SandboxStatus::kSignaled:
      if (mentions_memory_exhaustion(run.stderr_data)) {
        return outcome(CodeVerdict::kMemory, "ran out of memory: " + last_stderr_line(run.stderr_data));
      }
      return outcome(CodeVerdict::kRuntimeError, fmt::format("killed by signal {}", run.signal));
    case SandboxStatus::kCpuTime:
      return outcome(CodeVerdict::kTimeout, fmt::format("CPU time limit ({:.2f} s used)", run.cpu_seconds));
    case SandboxStatus::kWallTimeout:
      return outcome(CodeVerdict::kTimeout, fmt::format("wall-clock limit ({:.2f} s)", run.wall_seconds));
    case SandboxStatus::kOutputLimit:
      return outcome(CodeVerdict::kOutputLimit, "output or file size limit exceeded");
    case SandboxStatus::kSandboxError:
      return outcome(CodeVerdict::kSandboxError, run.error);
  }
  return outcome(CodeVerdict::kSandboxError, "unknown sandbox status");
}

// The last non-empty stdout line: the harness prints its JSON result last, after anything the solution wrote.
std::string_view last_line(std::string_view text) {
  text = trim_ascii_space(text);
  const std::size_t newline = text.rfind('\n');
  return newline == std::string_view::npos ? text : text.substr(newline + 1);
}

// Grades one sample; an instance lives for one grade() call.
class SampleRun {
 public:
  SampleRun(const CodeGraderOptions& options, const GradeInput& input) : options_(options), input_(input) {}

  GradeResult run() {
    CodeTestSuite suite;
    CodeTask task;
    try {
      suite = parse_code_tests(input_.reference, options_.max_test_cases);
      task = parse_metadata(input_.metadata);
    } catch (const std::invalid_argument& error) {
      return cannot_score(fmt::format("bad reference: {}", error.what()));
    }

    const std::optional<ExtractedCode> code = extract_last_code_block(input_.completion);
    if (!code) return zero("no complete fenced code block (```python ... ```) in the completion");
    result_.extracted = code->code;
    if (code->code.size() > options_.max_code_bytes) {
      return zero(fmt::format("the program has {} bytes; the limit is {}", code->code.size(), options_.max_code_bytes));
    }
    // The task's language wins over the fence tag: a C++ task answered in Python fails to compile, as it should.
    language_ = task.language.value_or(parse_code_language(code->fence_tag).value_or(options_.default_language));
    limits_ = options_.run_limits;
    if (task.time_limit_seconds) {
      limits_.cpu_seconds = *task.time_limit_seconds;
      limits_.wall_seconds = std::max(limits_.wall_seconds, 2.0 * *task.time_limit_seconds + 1.0);
    }
    if (suite.kind == CodeTestKind::kFunctionCall && language_ != CodeLanguage::kPython) {
      return cannot_score(fmt::format("function-call tests (fn_name '{}') are run for python only, not {}",
                                      suite.fn_name, code_language_name(language_)));
    }

    if (language_ == CodeLanguage::kCpp && !compile(code->code)) return std::move(result_);
    if (language_ == CodeLanguage::kPython) program_files_.push_back({std::string(kPythonSource), code->code, false});
    return run_tests(suite);
  }

 private:
  // Builds the C++ program into program_files_; false when the result is decided (compile error or cannot score).
  bool compile(const std::string& source) {
    SandboxRequest request{.argv = {options_.cxx}, .files = {{std::string(kCppSource), source, false}}};
    request.argv.insert(request.argv.end(), options_.cxx_flags.begin(), options_.cxx_flags.end());
    request.argv.insert(request.argv.end(), {std::string(kCppSource), "-o", std::string(kCppBinary)});
    request.limits = options_.compile_limits;
    request.collect = {std::string(kCppBinary)};
    SandboxResult build = run_sandboxed(request);
    if (build.status == SandboxStatus::kSandboxError) {
      result_ = cannot_score(fmt::format("sandbox failed while compiling: {}", build.error));
      return false;
    }
    if (build.status != SandboxStatus::kExited || build.exit_code != 0 || build.collected.empty()) {
      std::string detail = build.status == SandboxStatus::kExited
                               ? first_error_line(build.stderr_data)
                               : fmt::format("g++ stopped: {}", sandbox_status_name(build.status));
      result_.tests.push_back({std::string(code_verdict_name(CodeVerdict::kCompileError)), detail,
                               build.wall_seconds});
      result_.score = 0.0;
      result_.reason = "compile error: " + detail;
      return false;
    }
    SandboxFile binary = std::move(build.collected.front());
    binary.executable = true;
    program_files_.push_back(std::move(binary));
    return true;
  }

  static std::string first_error_line(std::string_view diagnostics) {
    const std::size_t error = diagnostics.find("error:");
    if (error == std::string_view::npos) return last_stderr_line(diagnostics);
    const std::size_t line_begin = diagnostics.rfind('\n', error);
    const std::size_t begin = line_begin == std::string_view::npos ? 0 : line_begin + 1;
    return quote_excerpt(diagnostics.substr(begin, diagnostics.find('\n', error) - begin), 160);
  }

  GradeResult run_tests(const CodeTestSuite& suite) {
    std::size_t passed = 0;
    std::optional<std::string> first_failure;
    for (std::size_t i = 0; i < suite.cases.size(); ++i) {
      const auto now = Clock::now();
      if (now >= input_.deadline) {
        return cannot_score(fmt::format("the grading deadline passed after {} of {} tests", i, suite.cases.size()));
      }
      TestOutcome outcome = run_one(suite, suite.cases[i], input_.deadline - now);
      if (outcome.verdict == code_verdict_name(CodeVerdict::kSandboxError)) {
        return cannot_score(fmt::format("sandbox failed on test {}: {}", i + 1, outcome.detail));
      }
      const bool ok = outcome.verdict == code_verdict_name(CodeVerdict::kOk);
      if (ok) {
        ++passed;
      } else if (!first_failure) {
        first_failure = fmt::format("test {} of {}: {}: {}", i + 1, suite.cases.size(), outcome.verdict,
                                    outcome.detail);
      }
      result_.tests.push_back(std::move(outcome));
      if (!ok && options_.score_policy == CodeScorePolicy::kAllPass) break;
    }
    const std::size_t total = suite.cases.size();
    result_.score = options_.score_policy == CodeScorePolicy::kAllPass
                        ? (passed == total ? 1.0 : 0.0)
                        : static_cast<double>(passed) / static_cast<double>(total);
    if (first_failure) result_.reason = *first_failure;
    return std::move(result_);
  }

  TestOutcome run_one(const CodeTestSuite& suite, const CodeTestCase& test, Clock::duration time_left) {
    SandboxRequest request{.files = program_files_, .limits = limits_};
    const double seconds_left = std::chrono::duration<double>(time_left).count();
    request.limits.wall_seconds = std::max(0.05, std::min(request.limits.wall_seconds, seconds_left));
    request.stdin_data = test.input;
    if (language_ == CodeLanguage::kCpp) {
      request.argv = {"./" + std::string(kCppBinary)};
    } else if (suite.kind == CodeTestKind::kStdio) {
      request.argv = {options_.python, "-I", std::string(kPythonSource)};
    } else {
      request.argv = {options_.python, "-I", std::string(kPythonCallHarnessName), suite.fn_name};
      request.files.push_back({std::string(kPythonCallHarnessName), std::string(kPythonCallHarness), false});
    }
    const SandboxResult run = run_sandboxed(request);
    if (auto abnormal = abnormal_outcome(run)) return std::move(*abnormal);

    const std::optional<std::string> difference =
        suite.kind == CodeTestKind::kStdio ? stdout_difference(run.stdout_data, test.expected)
                                           : call_result_difference(last_line(run.stdout_data), test.expected);
    if (difference) return {std::string(code_verdict_name(CodeVerdict::kWrongAnswer)), *difference, run.wall_seconds};
    return {std::string(code_verdict_name(CodeVerdict::kOk)), "", run.wall_seconds};
  }

  GradeResult zero(std::string reason) {
    result_.score = 0.0;
    result_.reason = std::move(reason);
    return std::move(result_);
  }

  GradeResult cannot_score(std::string reason) {
    result_.score = 0.0;
    result_.scorable = false;
    result_.reason = std::move(reason);
    return std::move(result_);
  }

  const CodeGraderOptions& options_;
  const GradeInput& input_;
  GradeResult result_;
  CodeLanguage language_ = CodeLanguage::kPython;
  SandboxLimits limits_;
  std::vector<SandboxFile> program_files_;
};

}  // namespace

std::string_view code_verdict_name(CodeVerdict verdict) {
  switch (verdict) {
    case CodeVerdict::kOk:
      return "ok";
    case CodeVerdict::kWrongAnswer:
      return "wrong_answer";
    case CodeVerdict::kRuntimeError:
      return "runtime_error";
    case CodeVerdict::kTimeout:
      return "timeout";
    case CodeVerdict::kMemory:
      return "memory";
    case CodeVerdict::kOutputLimit:
      return "output_limit";
    case CodeVerdict::kCompileError:
      return "compile_error";
    case CodeVerdict::kSandboxError:
      return "sandbox_error";
  }
  return "unknown";
}

CodeGrader::CodeGrader(CodeGraderOptions options) : options_(std::move(options)) {
  if (options_.slots < 0) throw std::invalid_argument("code grader: slots must be >= 0 (0 = one per hardware thread)");
  if (options_.slots == 0) options_.slots = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

GradeResult CodeGrader::grade(const GradeInput& input) const { return SampleRun(options_, input).run(); }

std::vector<GradeResult> CodeGrader::grade_batch(std::span<const GradeInput> inputs) const {
  std::vector<GradeResult> results(inputs.size());
  std::atomic<std::size_t> next{0};
  const auto worker = [&] {
    for (std::size_t i = next++; i < inputs.size(); i = next++) {
      try {
        results[i] = grade(inputs[i]);
      } catch (const std::exception& error) {
        results[i] = {.scorable = false, .reason = fmt::format("code grader failed: {}", error.what())};
      }
    }
  };
  const std::size_t threads = std::min<std::size_t>(static_cast<std::size_t>(options_.slots), inputs.size());
  std::vector<std::jthread> pool;
  for (std::size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  return results;
}

}  // namespace grpo::reward
