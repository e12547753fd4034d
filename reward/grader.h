// The grader contract: completions in, scores out, with an explicit "cannot score" (TRL's `None`). Every reward the
// trainer sees comes through this interface, so built-in, plug-in and remote graders are interchangeable.
#pragma once

#include <chrono>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace grpo::reward {

// Every member of these two structs has an initializer so that designated initializers may leave any out
// (GCC's -Wmissing-field-initializers flags omitted members that have none).
struct GradeInput {
  std::string_view prompt = {};
  std::string_view completion = {};  // the model's text only, without the prompt
  std::string_view reference = {};   // the dataset row's expected answer, in whatever form the grader understands
  std::string_view metadata = {};    // the dataset row's other fields as a JSON object text (e.g. {"language": "cpp"}),
                                     // or empty; graders read what they know and ignore the rest
  // When the trainer stops waiting. Graders that run programs or call out (code, remote) bound their work by it and
  // answer "cannot score" (deadline) rather than late; pure-CPU graders that finish in microseconds may ignore it.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

// One named part of a score, e.g. {"accuracy", 1.0} and {"format", 0.0}; logged per grader as a metric.
struct GradeComponent {
  std::string name = {};
  double score = 0.0;
};

// The outcome of one test case, for graders that run tests (code). `verdict` is one of the code grader's verdict
// names ("ok", "wrong_answer", "runtime_error", "timeout", "memory", "output_limit", "compile_error",
// "sandbox_error"); `detail` says what differed or failed, cut short for logs.
struct TestOutcome {
  std::string verdict = {};
  std::string detail = {};
  double seconds = 0.0;  // wall time of the test's run
};

struct GradeResult {
  double score = 0.0;          // in [0, 1] for the built-in graders
  bool scorable = true;        // false: "cannot score" (bad reference, infrastructure failure); the trainer leaves
                               // the sample out of the group baseline instead of treating it as a zero
  std::string extracted = {};  // what the grader read from the completion (e.g. the answer), for logs and debugging
  std::string reason = {};     // why the score is below full or why it cannot score; empty at full score
  std::vector<GradeComponent> components = {};  // optional parts of the score; empty means just {name(), score}
  std::vector<TestOutcome> tests = {};          // per-test outcomes, for graders that run tests
};

class Grader {
 public:
  virtual ~Grader();

  virtual std::string_view name() const = 0;

  // Never throws on model output, however malformed: a bad completion is a low score with a reason. Exceptions are
  // for the grader's own failures, and grade_batch turns those into scorable=false.
  virtual GradeResult grade(const GradeInput& input) const = 0;

  // One result per input, in order. Graders with a cheaper batched path (a remote call, a sandbox pool) override
  // this; the default loops over grade() and turns an exception from one sample into scorable=false for that sample
  // only, so one broken sample cannot abort a training step.
  virtual std::vector<GradeResult> grade_batch(std::span<const GradeInput> inputs) const;
};

// `text` single-quoted for a reason string: bytes outside printable ASCII as \xNN, cut to `max_bytes` of input with
// the full length noted, because completions can be megabytes of arbitrary bytes and reasons end up in logs.
std::string quote_excerpt(std::string_view text, std::size_t max_bytes = 60);

// ASCII whitespace only: model output is bytes, and locale-dependent classification would make grading differ by
// machine.
bool is_ascii_space(char c);
std::string_view trim_ascii_space(std::string_view text);

}  // namespace grpo::reward
