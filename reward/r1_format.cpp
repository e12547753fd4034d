// Parser for the R1-Zero `<think>...</think><answer>...</answer>` template. It locates every tag occurrence first
// (one left-to-right scan per tag, so the cost is linear) and then judges the structure from positions alone.
#include "reward/r1_format.h"

#include <array>
#include <cstddef>
#include <vector>

#include <fmt/format.h>

#include "reward/grader.h"

namespace grpo::reward {
namespace {

enum class Tag { kThinkOpen, kThinkClose, kAnswerOpen, kAnswerClose };
constexpr std::size_t kNumTags = 4;

struct TagPositions {
  std::array<std::string_view, kNumTags> text;
  std::array<std::vector<std::size_t>, kNumTags> at;  // ascending start offsets of each tag in the completion

  std::string_view of(Tag tag) const { return text[static_cast<std::size_t>(tag)]; }
  const std::vector<std::size_t>& hits(Tag tag) const { return at[static_cast<std::size_t>(tag)]; }
};

// Non-overlapping occurrences of each tag. string_view::find skips to candidate first bytes and compares at most
// the tag's length there, so each scan is O(completion length × tag length).
TagPositions find_tags(std::string_view completion, const TemplateTags& tags) {
  TagPositions found;
  found.text = {tags.think_open, tags.think_close, tags.answer_open, tags.answer_close};
  for (std::size_t i = 0; i < kNumTags; ++i) {
    const std::string_view tag = found.text[i];
    for (std::size_t pos = completion.find(tag); pos != std::string_view::npos;
         pos = completion.find(tag, pos + tag.size())) {
      found.at[i].push_back(pos);
    }
  }
  return found;
}

// Why the tag set cannot be used, or empty when it can. Overlapping tags would make positions ambiguous.
std::string tag_set_problem(const TemplateTags& tags) {
  const std::array<const std::string*, kNumTags> all = {&tags.think_open, &tags.think_close, &tags.answer_open,
                                                        &tags.answer_close};
  for (const std::string* tag : all) {
    if (tag->empty()) return "template has an empty tag";
  }
  for (std::size_t i = 0; i < kNumTags; ++i) {
    for (std::size_t j = 0; j < kNumTags; ++j) {
      if (i != j && all[i]->find(*all[j]) != std::string::npos) {
        return fmt::format("template tag {} contains tag {}", *all[i], *all[j]);
      }
    }
  }
  return {};
}

bool only_space(std::string_view text) { return trim_ascii_space(text).empty(); }

// Content between an opening tag at `open` and a closing tag at `close`.
std::string_view between(std::string_view completion, std::size_t open, std::string_view open_tag, std::size_t close) {
  const std::size_t begin = open + open_tag.size();
  return completion.substr(begin, close - begin);
}

void extract_blocks(std::string_view completion, const TagPositions& tags, ParsedCompletion& parsed) {
  const std::vector<std::size_t>& think_opens = tags.hits(Tag::kThinkOpen);
  const std::vector<std::size_t>& think_closes = tags.hits(Tag::kThinkClose);
  if (!think_opens.empty()) {
    const std::size_t open = think_opens.front();
    for (const std::size_t close : think_closes) {
      if (close >= open + tags.of(Tag::kThinkOpen).size()) {
        parsed.think = trim_ascii_space(between(completion, open, tags.of(Tag::kThinkOpen), close));
        break;
      }
    }
  }
  const std::vector<std::size_t>& answer_opens = tags.hits(Tag::kAnswerOpen);
  const std::vector<std::size_t>& answer_closes = tags.hits(Tag::kAnswerClose);
  if (answer_closes.empty()) return;
  const std::size_t close = answer_closes.back();
  for (auto it = answer_opens.rbegin(); it != answer_opens.rend(); ++it) {
    if (*it + tags.of(Tag::kAnswerOpen).size() <= close) {
      parsed.has_answer = true;
      parsed.answer = trim_ascii_space(between(completion, *it, tags.of(Tag::kAnswerOpen), close));
      return;
    }
  }
}

// Why the completion is not well formed, or empty when it is.
std::string structure_problem(std::string_view completion, const TagPositions& tags, const ParsedCompletion& parsed) {
  if (only_space(completion)) return "empty completion";
  for (const Tag tag : {Tag::kThinkOpen, Tag::kThinkClose, Tag::kAnswerOpen, Tag::kAnswerClose}) {
    const std::size_t count = tags.hits(tag).size();
    if (count == 0) return fmt::format("missing {}", tags.of(tag));
    if (count > 1) {
      const bool opening = tag == Tag::kThinkOpen || tag == Tag::kAnswerOpen;
      return fmt::format("{} {} {}", count, tags.of(tag), opening ? "blocks" : "tags");
    }
  }
  const std::size_t think_open = tags.hits(Tag::kThinkOpen).front();
  const std::size_t think_close = tags.hits(Tag::kThinkClose).front();
  const std::size_t answer_open = tags.hits(Tag::kAnswerOpen).front();
  const std::size_t answer_close = tags.hits(Tag::kAnswerClose).front();
  if (think_close < think_open) return fmt::format("{} before {}", tags.of(Tag::kThinkClose), tags.of(Tag::kThinkOpen));
  if (answer_close < answer_open) {
    return fmt::format("{} before {}", tags.of(Tag::kAnswerClose), tags.of(Tag::kAnswerOpen));
  }
  if (answer_open < think_close) {
    return fmt::format("{} before {}", tags.of(Tag::kAnswerOpen), tags.of(Tag::kThinkClose));
  }
  // Distinct tags can still share bytes in the text when one's end is another's start (custom tags "ab" and "bc").
  if (think_open + tags.of(Tag::kThinkOpen).size() > think_close ||
      think_close + tags.of(Tag::kThinkClose).size() > answer_open ||
      answer_open + tags.of(Tag::kAnswerOpen).size() > answer_close) {
    return "overlapping tags";
  }
  if (!only_space(completion.substr(0, think_open))) return fmt::format("text before {}", tags.of(Tag::kThinkOpen));
  const std::size_t gap_begin = think_close + tags.of(Tag::kThinkClose).size();
  if (!only_space(completion.substr(gap_begin, answer_open - gap_begin))) {
    return fmt::format("text between {} and {}", tags.of(Tag::kThinkClose), tags.of(Tag::kAnswerOpen));
  }
  if (!only_space(completion.substr(answer_close + tags.of(Tag::kAnswerClose).size()))) {
    return fmt::format("text after {}", tags.of(Tag::kAnswerClose));
  }
  if (parsed.answer.empty()) return "empty answer";
  return {};
}

}  // namespace

ParsedCompletion parse_r1_completion(std::string_view completion, const TemplateTags& tags) {
  ParsedCompletion parsed;
  if (std::string problem = tag_set_problem(tags); !problem.empty()) {
    parsed.problem = std::move(problem);
    return parsed;
  }
  const TagPositions positions = find_tags(completion, tags);
  extract_blocks(completion, positions, parsed);
  parsed.problem = structure_problem(completion, positions, parsed);
  parsed.well_formed = parsed.problem.empty();
  return parsed;
}

}  // namespace grpo::reward
