// `grpo tokenize` and `grpo score` as stream functions: JSON Lines in, the same lines with "ids" or "logprobs"
// added out, in order. A malformed line is answered with {"line": N, "error": ...} and the rest go on.
#pragma once

#include <cstdint>
#include <istream>
#include <ostream>

#include "policy/checkpoint.h"
#include "policy/token_logprobs.h"
#include "policy/tokenizer.h"

namespace grpo::rl {

struct JsonlSummary {
  std::int64_t lines = 0;   // non-blank input lines
  std::int64_t errors = 0;  // lines answered with an error
  std::int64_t tokens = 0;  // token ids written (tokenize) or scored (score)
  bool ok() const { return errors == 0; }
};

// {"text": ...} → the line with "ids" added: no special tokens added around the text; special tokens written in
// it are matched.
JsonlSummary tokenize_jsonl(std::istream& in, std::ostream& out, const policy::Tokenizer& tokenizer);

// {"ids": [...]} or {"text": ...} → the line with "logprobs" added (and "ids" for text): the float32
// log-probability of each token given the ones before it, one fewer than there are ids. `lines_per_batch` lines
// are scored together.
JsonlSummary score_jsonl(std::istream& in, std::ostream& out, policy::Policy& policy, const policy::TokenLogprobOptions& options = {},
                         std::int64_t lines_per_batch = 64);

}  // namespace grpo::rl
