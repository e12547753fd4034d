// The DeepSeek-R1-Zero completion template, `<think> reasoning </think> <answer> answer </answer>`: one parser that
// both the format grader (is it well formed?) and answer graders (what was answered?) read, so they never disagree.
#pragma once

#include <string>
#include <string_view>

namespace grpo::reward {

// The four tags must be non-empty and none may contain another, or nothing parses as well formed.
struct TemplateTags {
  std::string think_open = "<think>";
  std::string think_close = "</think>";
  std::string answer_open = "<answer>";
  std::string answer_close = "</answer>";
};

struct ParsedCompletion {
  // Optional leading whitespace, exactly one think block (content may be empty), optional whitespace, exactly one
  // answer block with non-empty trimmed content, then only whitespace; no tag occurs anywhere else.
  bool well_formed = false;
  std::string think;        // trimmed content of the first think block closed after its opening tag, if any
  std::string answer;       // trimmed content of the last complete answer block, also for malformed completions,
                            // so that answer graders can score correctness independently of format
  bool has_answer = false;  // a complete answer block exists (its content may be empty)
  std::string problem;      // why not well formed, e.g. "text after </answer>", "2 <answer> blocks", "missing </think>"
};

// Linear in the completion's length and safe on any bytes (invalid UTF-8, NULs, megabytes); whitespace means ASCII
// whitespace. Throws only std::bad_alloc.
ParsedCompletion parse_r1_completion(std::string_view completion, const TemplateTags& tags = {});

}  // namespace grpo::reward
