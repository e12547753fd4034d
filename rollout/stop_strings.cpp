// Stop-string matching over decoded completion tails (see stop_strings.h).
#include "rollout/stop_strings.h"

#include <algorithm>
#include <stdexcept>

namespace grpo::rollout {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stop_strings, const policy::Tokenizer& tokenizer)
    : stop_strings_(std::move(stop_strings)), tokenizer_(&tokenizer) {
  for (const auto& stop : stop_strings_) {
    if (stop.empty()) throw std::invalid_argument("stop strings must not be empty");
    window_ = std::max(window_, stop.size() + 2);
  }
}

std::optional<std::size_t> StopStringMatcher::match(std::span<const std::int64_t> tokens) const {
  if (stop_strings_.empty() || tokens.empty()) return std::nullopt;
  const auto begin = tokens.size() > window_ ? tokens.size() - window_ : 0;
  const auto tail = tokenizer_->decode(tokens.subspan(begin), /*skip_special_tokens=*/false);
  for (std::size_t i = 0; i < stop_strings_.size(); ++i) {
    if (tail.find(stop_strings_[i]) != std::string::npos) return i;
  }
  return std::nullopt;
}

}  // namespace grpo::rollout
