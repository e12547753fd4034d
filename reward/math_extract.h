// Finding the final answer in a completion: the <answer> block, the last \boxed{} (adjacent boxes as one list), a
// GSM8K "#### 42" line, "the answer is X", and optionally the last number. Linear in the text, any bytes.
#pragma once

#include <string>
#include <string_view>

#include "reward/r1_format.h"

namespace grpo::reward {

enum class AnswerSource { kNone, kBoxed, kGsm8k, kAnswerIs, kAnswerBlock, kLastNumber };

std::string_view answer_source_name(AnswerSource source);

struct ExtractedAnswer {
  std::string text;  // trimmed; empty when nothing was found
  AnswerSource source = AnswerSource::kNone;
};

struct MathExtractOptions {
  TemplateTags tags = {};
  // The last number in the text when nothing else marks an answer. Convenient for free-form completions, but it
  // rewards a number that merely appears last; turn it off to require a marked answer.
  bool last_number_fallback = true;
};

// Looks inside the last complete answer block when there is one (else the whole completion), in this order: the last
// \boxed{}/\fbox{} group, "####", "answer is"/"answer:", then the answer block's whole content, then the last number.
ExtractedAnswer extract_math_answer(std::string_view completion, const MathExtractOptions& options = {});

// The gold answer from a dataset reference: a boxed answer or a GSM8K "####" line when present, else all of it.
std::string extract_reference_answer(std::string_view reference);

// The content of the last top-level \boxed{...} or \fbox{...}, joined with ", " to the boxes just before it when only
// separators (spaces, commas, "and", "$") lie between them. nullopt-like empty string when there is none.
std::string last_boxed(std::string_view text);

}  // namespace grpo::reward
