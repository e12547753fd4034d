// Batch grading of JSON Lines, the engine of `grpo grade --input FILE.jsonl`: one output line per input line, in
// order, so a labelled corpus or a dump of rollouts can be graded and diffed without writing code. Example:
//   in:  {"gold": "\\frac{1}{2}", "pred": "0.5"}
//   out: {"gold": "\\frac{1}{2}", "pred": "0.5", "equal": true, "reason": ""}
//   in:  {"completion": "... \\boxed{4}", "reference": "4", "grader": "math"}
//   out: {..., "score": 1.0, "components": {"math": 1.0}, "extracted": "4", "reason": "", "scorable": true}
//   in:  {"gold": 3}
//   out: {"line": 1, "error": "missing field \"pred\" (a {\"gold\", \"pred\"} line needs both as strings)"}
#pragma once

#include <cstddef>
#include <functional>
#include <iosfwd>
#include <string_view>

#include "reward/grader.h"
#include "reward/math_equivalence.h"

namespace grpo::reward {

struct GradeJsonlOptions {
  MathCompareOptions compare = {};  // for {"gold", "pred"} lines; named graders use their own defaults
  // Consulted before the registry for a line's grader name (e.g. graders built from a run config); returns null to
  // fall back to make_grader. The graders it returns must outlive the call.
  std::function<const Grader*(std::string_view name)> find_grader = {};
};

// Counts over the non-blank input lines. Every line lands in exactly one of pairs, graded and errors.
struct GradeJsonlSummary {
  std::size_t lines = 0;        // non-blank lines read
  std::size_t pairs = 0;        // {"gold", "pred"} lines compared
  std::size_t pairs_equal = 0;  // of those, judged equal
  std::size_t graded = 0;       // {"completion", "reference", "grader"} lines graded
  std::size_t unscorable = 0;   // of those, scorable=false (bad reference, grader failure)
  std::size_t errors = 0;       // malformed lines, each answered with {"line": N, "error": ...}

  // The command exits 1 when this is false, after grading everything it could.
  bool ok() const { return errors == 0; }
};

// Reads JSON Lines from `in` and writes one compact JSON object per non-blank line to `out`:
//  - {"gold": G, "pred": P}: math_equivalent(G, P); the output is the input object (fields kept in their order) plus
//    "equal" (bool) and "reason" (empty when equal).
//  - {"completion": C, "reference": R, "grader": NAME[, "prompt": Q][, "metadata": M]}: make_grader(NAME) (created
//    once per name; lines are graded in chunks of 64 through grade_batch, so the code grader uses its parallel
//    slots); the output adds "score", "components" ({NAME: score} or the grader's own parts), "extracted", "reason",
//    "scorable", and for graders that run tests (code) "tests": [{"verdict", "detail", "seconds"}, ...].
//    M (an object or its JSON text) is passed to the grader as GradeInput::metadata, e.g. {"language": "cpp"}.
//  G and P may be JSON strings or numbers (numbers are read as 64-bit integers or doubles: write larger integers as
//  strings); C, R, NAME and Q must be strings. Fields the output adds replace input fields of the same name; other fields pass through.
//  - Anything else (bad JSON, not an object, missing or mistyped fields, both forms at once, unknown grader) is
//    answered with {"line": N, "error": MESSAGE} (N counts every input line from 1) and grading goes on.
// Blank lines (only whitespace) produce no output. A trailing '\r' is ignored. Never throws on input content; only
// std::bad_alloc and exceptions from the streams themselves escape.
GradeJsonlSummary grade_jsonl(std::istream& in, std::ostream& out, const GradeJsonlOptions& options = {});

}  // namespace grpo::reward
