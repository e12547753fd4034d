// The default batched grading loop and the small text helpers every grader uses to write reasons.
#include "reward/grader.h"

#include <exception>

#include <fmt/format.h>

namespace grpo::reward {

Grader::~Grader() = default;

std::vector<GradeResult> Grader::grade_batch(std::span<const GradeInput> inputs) const {
  std::vector<GradeResult> results;
  results.reserve(inputs.size());
  for (const GradeInput& input : inputs) {
    try {
      results.push_back(grade(input));
    } catch (const std::exception& error) {
      results.push_back({.scorable = false, .reason = fmt::format("grader '{}' threw: {}", name(), error.what())});
    } catch (...) {
      results.push_back(
          {.scorable = false, .reason = fmt::format("grader '{}' threw a non-standard exception", name())});
    }
  }
  return results;
}

std::string quote_excerpt(std::string_view text, std::size_t max_bytes) {
  const bool cut = text.size() > max_bytes;
  const std::string_view shown = cut ? text.substr(0, max_bytes) : text;
  std::string quoted = "'";
  for (const char c : shown) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte == '\\' || byte == '\'') {
      quoted += '\\';
      quoted += c;
    } else if (byte >= 0x20 && byte < 0x7f) {
      quoted += c;
    } else if (c == '\n') {
      quoted += "\\n";
    } else if (c == '\t') {
      quoted += "\\t";
    } else {
      quoted += fmt::format("\\x{:02x}", byte);
    }
  }
  quoted += '\'';
  if (cut) quoted += fmt::format("... ({} bytes)", text.size());
  return quoted;
}

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view trim_ascii_space(std::string_view text) {
  std::size_t begin = 0;
  std::size_t end = text.size();
  while (begin < end && is_ascii_space(text[begin])) ++begin;
  while (end > begin && is_ascii_space(text[end - 1])) --end;
  return text.substr(begin, end - begin);
}

}  // namespace grpo::reward
