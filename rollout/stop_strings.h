// Stop strings that may span token boundaries ("</answer>" arriving as "</", "answer", ">"): after each new token the
// tail of the completion is decoded and searched, so a string is found in the step whose token completes it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "policy/tokenizer.h"

namespace grpo::rollout {

class StopStringMatcher {
 public:
  // Empty strings are rejected (std::invalid_argument): they would match before any token.
  StopStringMatcher(std::vector<std::string> stop_strings, const policy::Tokenizer& tokenizer);

  // The index of the stop string that the completion `tokens` (newest last) now contains, or nullopt. Only the
  // last window() tokens are decoded: every token decodes to at least one byte, so a string of n bytes ending in
  // the newest token lies within its last n tokens; two more cover a decoder that drops a leading space.
  std::optional<std::size_t> match(std::span<const std::int64_t> tokens) const;

  bool empty() const { return stop_strings_.empty(); }
  const std::vector<std::string>& strings() const { return stop_strings_; }
  std::size_t window() const { return window_; }

 private:
  std::vector<std::string> stop_strings_;
  const policy::Tokenizer* tokenizer_;
  std::size_t window_ = 0;
};

}  // namespace grpo::rollout
