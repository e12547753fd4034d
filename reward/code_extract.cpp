// Fenced-code-block extraction (see code_extract.h). A line scanner, not a regex: completions can be megabytes and
// the scan must stay linear.
#include "reward/code_extract.h"

#include <cctype>
#include <cstddef>
#include <vector>

#include "reward/grader.h"

namespace grpo::reward {
namespace {

std::string lower_ascii(std::string_view text) {
  std::string lowered(text);
  for (char& c : lowered) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lowered;
}

struct Fence {
  char mark = 0;          // '`' or '~'
  std::size_t count = 0;  // fence length, >= 3
  std::string_view info;  // the rest of the opening line, trimmed
};

// A fence line: up to three spaces of indent, then three or more of one fence character.
std::optional<Fence> fence_of(std::string_view line) {
  std::size_t i = 0;
  while (i < line.size() && i < 3 && line[i] == ' ') ++i;
  if (i >= line.size() || (line[i] != '`' && line[i] != '~')) return std::nullopt;
  const char mark = line[i];
  std::size_t count = 0;
  while (i < line.size() && line[i] == mark) {
    ++i;
    ++count;
  }
  if (count < 3) return std::nullopt;
  return Fence{mark, count, trim_ascii_space(line.substr(i))};
}

}  // namespace

std::string_view code_language_name(CodeLanguage language) {
  switch (language) {
    case CodeLanguage::kPython:
      return "python";
    case CodeLanguage::kCpp:
      return "cpp";
  }
  return "unknown";
}

std::optional<CodeLanguage> parse_code_language(std::string_view name) {
  const std::string lowered = lower_ascii(trim_ascii_space(name));
  if (lowered == "python" || lowered == "py" || lowered == "python3") return CodeLanguage::kPython;
  if (lowered == "cpp" || lowered == "c++" || lowered == "cxx" || lowered == "cc") return CodeLanguage::kCpp;
  return std::nullopt;
}

std::optional<ExtractedCode> extract_last_code_block(std::string_view completion) {
  std::optional<ExtractedCode> last;
  std::optional<Fence> open;
  std::size_t body_begin = 0;
  std::size_t begin = 0;
  while (begin < completion.size()) {
    std::size_t end = completion.find('\n', begin);
    const std::size_t next = end == std::string_view::npos ? completion.size() : end + 1;
    if (end == std::string_view::npos) end = completion.size();
    const std::string_view line = completion.substr(begin, end - begin);
    if (const auto fence = fence_of(line)) {
      if (!open) {
        open = fence;
        body_begin = next;
      } else if (fence->mark == open->mark && fence->count >= open->count && fence->info.empty()) {
        // The info string's first word is the language ("python title=x" → "python").
        const std::string_view info = open->info;
        const std::string_view tag = info.substr(0, info.find_first_of(" \t{"));
        last = ExtractedCode{std::string(completion.substr(body_begin, begin - body_begin)), lower_ascii(tag)};
        open.reset();
      }
    }
    begin = next;
  }
  return last;
}

}  // namespace grpo::reward
