// Finding the program in a completion: the last fenced code block (```python ... ```), as coding prompts ask for and
// as TRL's, verl's and LiveCodeBench's code rewards read it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace grpo::reward {

enum class CodeLanguage { kPython, kCpp };

std::string_view code_language_name(CodeLanguage language);  // "python", "cpp"
// "python", "py", "python3" → kPython; "cpp", "c++", "cxx", "cc" → kCpp (case-insensitive); otherwise nullopt.
std::optional<CodeLanguage> parse_code_language(std::string_view name);

struct ExtractedCode {
  std::string code;
  std::string fence_tag;  // the info string after the opening fence, lower-cased, e.g. "python"; may be empty
};

// The last complete fenced block (``` or ~~~ fences of three or more, closed by the same kind and at least as many),
// nullopt when there is none. An unclosed final fence does not count: a completion cut off by the token limit has no
// finished program.
std::optional<ExtractedCode> extract_last_code_block(std::string_view completion);

}  // namespace grpo::reward
