// Answer extraction by single forward scans (boxes are found with one brace counter, not by rescanning from each
// \boxed), so a megabyte of nested braces costs one pass.
#include "reward/math_extract.h"

#include <array>
#include <optional>
#include <vector>

#include "reward/grader.h"

namespace grpo::reward {
namespace {

struct Box {
  std::size_t begin = 0;          // at the backslash of \boxed
  std::size_t end = 0;            // one past the closing brace
  std::string_view content = {};  // between the braces
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// The start of the last case-insensitive occurrence of `needle` (lower-case), or npos.
std::size_t rfind_ignoring_case(std::string_view text, std::string_view needle) {
  if (needle.size() > text.size()) return std::string_view::npos;
  for (std::size_t start = text.size() - needle.size() + 1; start-- > 0;) {
    std::size_t i = 0;
    while (i < needle.size() && lower(text[start + i]) == needle[i]) ++i;
    if (i == needle.size()) return start;
  }
  return std::string_view::npos;
}

// The box command (\boxed or \fbox) starting at `pos`, returning the index of its opening brace or npos. "\boxed 5"
// (TeX's one-token argument) returns the index of the token instead, with `braced` false.
std::size_t box_argument(std::string_view text, std::size_t pos, bool& braced) {
  static constexpr auto kCommands = std::to_array<std::string_view>({"\\boxed", "\\fbox"});
  for (const std::string_view command : kCommands) {
    if (!text.substr(pos).starts_with(command)) continue;
    std::size_t i = pos + command.size();
    const std::size_t after_command = i;
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    if (i < text.size() && text[i] == '{') {
      braced = true;
      return i;
    }
    braced = false;
    const bool letter_follows =
        after_command < text.size() && ((text[after_command] >= 'a' && text[after_command] <= 'z') ||
                                        (text[after_command] >= 'A' && text[after_command] <= 'Z'));
    return i > after_command && !letter_follows && i < text.size() ? i : std::string_view::npos;
  }
  return std::string_view::npos;
}

// Top-level boxes in order. Boxes inside a box are part of its content; unclosed boxes are ignored.
std::vector<Box> find_boxes(std::string_view text) {
  std::vector<Box> boxes;
  std::optional<Box> open;
  std::size_t open_depth = 0;
  std::size_t depth = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\\') {
      bool braced = false;
      const std::size_t argument = open ? std::string_view::npos : box_argument(text, i, braced);
      if (argument != std::string_view::npos && braced) {
        open = Box{.begin = i};
        open_depth = depth;
        i = argument - 1;  // the brace is counted on the next step
      } else if (argument != std::string_view::npos) {
        std::size_t end = argument;
        while (end < text.size() && !is_ascii_space(text[end]) && text[end] != '$') ++end;
        boxes.push_back({.begin = i, .end = end, .content = text.substr(argument, end - argument)});
        i = end - 1;
      } else if (i + 1 < text.size() && (text[i + 1] == '{' || text[i + 1] == '}' || text[i + 1] == '\\')) {
        ++i;  // escaped brace or line break
      }
    } else if (c == '{') {
      ++depth;
    } else if (c == '}' && depth > 0) {
      --depth;
      if (open && depth == open_depth) {
        const std::size_t content_begin = text.find('{', open->begin) + 1;
        open->end = i + 1;
        open->content = text.substr(content_begin, i - content_begin);
        boxes.push_back(*open);
        open.reset();
      }
    }
  }
  return boxes;
}

// Only separators between two boxes: whitespace, punctuation, math delimiters and the words "and" / "or".
bool only_separators(std::string_view gap) {
  static constexpr auto kWords = std::to_array<std::string_view>(
      {"\\text{ and }", "\\text{and}", "\\text{ or }", "and", "or", "\\quad", "\\qquad", "\\,", "\\;"});
  std::size_t i = 0;
  while (i < gap.size()) {
    const char c = gap[i];
    if (is_ascii_space(c) || c == ',' || c == ';' || c == '$' || c == '.') {
      ++i;
      continue;
    }
    bool matched = false;
    for (const std::string_view word : kWords) {
      if (gap.substr(i).starts_with(word)) {
        i += word.size();
        matched = true;
        break;
      }
    }
    if (!matched) return false;
  }
  return true;
}

// The text after the last "####", to the end of its line.
std::optional<std::string> after_gsm8k_marker(std::string_view text) {
  const std::size_t marker = text.rfind("####");
  if (marker == std::string_view::npos) return std::nullopt;
  std::string_view rest = text.substr(marker + 4);
  rest = rest.substr(0, rest.find('\n'));
  rest = trim_ascii_space(rest);
  if (rest.empty()) return std::nullopt;
  return std::string(rest);
}

// "The final answer is $42$. I hope it is correct." -> "42"; "Answer: 7" -> "7".
std::optional<std::string> after_answer_phrase(std::string_view text) {
  std::size_t start = std::string_view::npos;
  for (const std::string_view phrase : {std::string_view("answer is"), std::string_view("answer:")}) {
    const std::size_t found = rfind_ignoring_case(text, phrase);
    if (found != std::string_view::npos && (start == std::string_view::npos || found + phrase.size() > start)) {
      start = found + phrase.size();
    }
  }
  if (start == std::string_view::npos) return std::nullopt;
  std::string_view rest = text.substr(start);
  rest = rest.substr(0, rest.find('\n'));
  rest = trim_ascii_space(rest);
  while (!rest.empty() && (rest.front() == ':' || rest.front() == '*')) rest = trim_ascii_space(rest.substr(1));
  if (rest.starts_with('$')) {
    const std::size_t close = rest.find('$', 1);
    if (close != std::string_view::npos) rest = rest.substr(1, close - 1);
  }
  const std::size_t sentence_end = rest.find(". ");
  if (sentence_end != std::string_view::npos) rest = rest.substr(0, sentence_end);
  while (!rest.empty() && (rest.back() == '.' || rest.back() == '*')) rest.remove_suffix(1);
  rest = trim_ascii_space(rest);
  if (rest.empty()) return std::nullopt;
  return std::string(rest);
}

// The last number: optional sign, digits with thousands commas, optional decimals ("-1,234.5").
std::optional<std::string> last_number(std::string_view text) {
  std::size_t end = text.size();
  while (end > 0 && !is_digit(text[end - 1])) --end;
  if (end == 0) return std::nullopt;
  std::size_t begin = end;
  while (begin > 0 && (is_digit(text[begin - 1]) || ((text[begin - 1] == ',' || text[begin - 1] == '.') && begin >= 2 &&
                                                     is_digit(text[begin - 2])))) {
    --begin;
  }
  if (begin > 0 && text[begin - 1] == '-') --begin;
  return std::string(text.substr(begin, end - begin));
}

// Boxes, "####" and answer phrases, in that order of precedence.
std::optional<ExtractedAnswer> marked_answer(std::string_view text) {
  std::string boxed = last_boxed(text);
  if (!trim_ascii_space(boxed).empty())
    return ExtractedAnswer{std::string(trim_ascii_space(boxed)), AnswerSource::kBoxed};
  if (std::optional<std::string> gsm8k = after_gsm8k_marker(text)) return ExtractedAnswer{*gsm8k, AnswerSource::kGsm8k};
  if (std::optional<std::string> phrase = after_answer_phrase(text))
    return ExtractedAnswer{*phrase, AnswerSource::kAnswerIs};
  return std::nullopt;
}

}  // namespace

std::string_view answer_source_name(AnswerSource source) {
  switch (source) {
    case AnswerSource::kNone:
      return "none";
    case AnswerSource::kBoxed:
      return "boxed";
    case AnswerSource::kGsm8k:
      return "####";
    case AnswerSource::kAnswerIs:
      return "answer is";
    case AnswerSource::kAnswerBlock:
      return "answer block";
    case AnswerSource::kLastNumber:
      return "last number";
  }
  return "none";
}

std::string last_boxed(std::string_view text) {
  const std::vector<Box> boxes = find_boxes(text);
  if (boxes.empty()) return {};
  std::size_t first = boxes.size() - 1;
  while (first > 0 && only_separators(text.substr(boxes[first - 1].end, boxes[first].begin - boxes[first - 1].end))) {
    --first;
  }
  std::string joined;
  for (std::size_t i = first; i < boxes.size(); ++i) {
    if (i > first) joined += ", ";
    joined += trim_ascii_space(boxes[i].content);
  }
  return joined;
}

ExtractedAnswer extract_math_answer(std::string_view completion, const MathExtractOptions& options) {
  const ParsedCompletion parsed = parse_r1_completion(completion, options.tags);
  if (parsed.has_answer) {
    if (std::optional<ExtractedAnswer> marked = marked_answer(parsed.answer)) return *marked;
    if (!parsed.answer.empty()) return {parsed.answer, AnswerSource::kAnswerBlock};
  }
  if (std::optional<ExtractedAnswer> marked = marked_answer(completion)) return *marked;
  if (options.last_number_fallback) {
    if (std::optional<std::string> number = last_number(completion)) return {*number, AnswerSource::kLastNumber};
  }
  return {};
}

std::string extract_reference_answer(std::string_view reference) {
  std::string boxed = last_boxed(reference);
  if (!trim_ascii_space(boxed).empty()) return std::string(trim_ascii_space(boxed));
  if (std::optional<std::string> gsm8k = after_gsm8k_marker(reference)) return *gsm8k;
  return std::string(trim_ascii_space(reference));
}

}  // namespace grpo::reward
