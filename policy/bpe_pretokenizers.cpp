// PreTokenizer: each step cuts the pieces of the step before, depth first, so a piece reaches the model as soon as it
// is cut; the order is the library's (it cuts all pieces at each step, then moves on) since steps act piece by piece.
#include "policy/bpe_pretokenizers.h"

#include <algorithm>

#include <fmt/format.h>

#include "policy/byte_level.h"

namespace grpo::policy {
namespace {

// The GPT-2 pattern that ByteLevel splits with when use_regex is set (the library's byte_level.rs).
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

UnicodeRegex compile(const JsonNode& node, std::string_view pattern) {
  try {
    return UnicodeRegex::oniguruma(pattern);
  } catch (const std::invalid_argument& e) {
    node.fail(e.what());
  }
}

}  // namespace

PreTokenizer PreTokenizer::from_json(const JsonNode& node, bool defer_byte_mapping) {
  PreTokenizer pre_tokenizer;
  if (!node.is_null()) append_steps(node, pre_tokenizer.steps_);
  if (defer_byte_mapping && !pre_tokenizer.steps_.empty() && pre_tokenizer.steps_.back().kind == Kind::kByteLevel) {
    pre_tokenizer.steps_.back().map_bytes = false;
    pre_tokenizer.defer_mapping_ = true;
  }
  return pre_tokenizer;
}

PreTokenizer::Behavior PreTokenizer::read_behavior(const JsonNode& node) {
  const std::optional<std::string> name = node.optional_string_field("behavior");
  if (!name || *name == "Isolated") return Behavior::kIsolated;
  if (*name == "Removed") return Behavior::kRemoved;
  if (*name == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (*name == "MergedWithNext") return Behavior::kMergedWithNext;
  if (*name == "Contiguous") return Behavior::kContiguous;
  node.child("behavior")
      .fail(fmt::format(
          "'{}' is not a split behavior; valid: Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous",
          *name));
}

void PreTokenizer::append_steps(const JsonNode& node, std::vector<Step>& steps) {
  const std::string type = node.type();
  Step step;
  if (type == "Sequence") {
    const JsonNode list = node.child("pretokenizers");
    if (!list.value().is_array()) list.fail("is not an array");
    for (std::size_t i = 0; i < list.value().size(); ++i) append_steps(list.element(i), steps);
    return;
  }
  if (type == "Split") {
    step.regex = read_pattern(node);
    step.behavior = read_behavior(node);
    step.invert = node.bool_field("invert", false);
  } else if (type == "ByteLevel") {
    // The library's defaults: add_prefix_space and use_regex on.
    step.kind = Kind::kByteLevel;
    step.add_prefix_space = node.bool_field("add_prefix_space", true);
    if (node.bool_field("use_regex", true)) step.regex = compile(node, kGpt2Pattern);
  } else if (type == "Digits") {
    // char::is_numeric is General_Category N, one character per match.
    step.regex = compile(node, R"(\p{N})");
    step.behavior = node.bool_field("individual_digits", false) ? Behavior::kIsolated : Behavior::kContiguous;
  } else if (type == "Punctuation") {
    // char::is_ascii_punctuation or General_Category P, one character per match.
    step.regex = compile(node, R"([\p{P}!-/:-@\[-`{-~])");
    step.behavior = read_behavior(node);
  } else if (type == "WhitespaceSplit") {
    step.regex = compile(node, R"(\s+)");
    step.behavior = Behavior::kRemoved;
  } else if (type == "Metaspace") {
    step.kind = Kind::kMetaspace;
    step.replacement = node.optional_string_field("replacement").value_or("\xE2\x96\x81");
    if (step.replacement.empty()) node.child("replacement").fail("is empty; it must be one character");
    step.split = node.bool_field("split", true);
    if (const std::optional<std::string> scheme = node.optional_string_field("prepend_scheme")) {
      if (*scheme == "always") {
        step.prepend_scheme = PrependScheme::kAlways;
      } else if (*scheme == "first") {
        step.prepend_scheme = PrependScheme::kFirst;
      } else if (*scheme == "never") {
        step.prepend_scheme = PrependScheme::kNever;
      } else {
        node.child("prepend_scheme").fail(fmt::format("'{}' is not one of always, first, never", *scheme));
      }
    } else {
      // Files older than prepend_scheme say add_prefix_space instead.
      step.prepend_scheme = node.bool_field("add_prefix_space", true) ? PrependScheme::kAlways : PrependScheme::kNever;
    }
  } else {
    node.unsupported_type({"Split", "ByteLevel", "Digits", "Metaspace", "Punctuation", "WhitespaceSplit", "Sequence"});
  }
  steps.push_back(std::move(step));
}

void PreTokenizer::split(std::string_view text, bool at_text_start, PieceSink& sink, Scratch& scratch) const {
  if (text.empty()) return;
  if (scratch.matches.size() < steps_.size()) {
    scratch.matches.resize(steps_.size());
    scratch.buffers.resize(steps_.size(), std::vector<std::string>(2));
  }
  run(0, text, at_text_start, sink, scratch);
}

void PreTokenizer::forward(std::size_t index, std::string_view text, bool at_start, PieceSink& sink,
                           Scratch& scratch) const {
  // The library drops empty pieces after every step.
  if (text.empty()) return;
  run(index + 1, text, at_start, sink, scratch);
}

void PreTokenizer::run(std::size_t index, std::string_view text, bool at_start, PieceSink& sink,
                       Scratch& scratch) const {
  if (index == steps_.size()) {
    sink.piece(text);
    return;
  }
  const Step& step = steps_[index];
  switch (step.kind) {
    case Kind::kSplit: {
      std::vector<UnicodeRegex::Match>& matches = scratch.matches[index];
      matches.clear();
      step.regex->find_all(text, matches);
      emit_split(index, text, at_start, matches, step.behavior, step.invert, sink, scratch);
      return;
    }
    case Kind::kByteLevel:
      return run_byte_level(index, text, at_start, sink, scratch);
    case Kind::kMetaspace:
      return run_metaspace(index, text, at_start, sink, scratch);
  }
}

void PreTokenizer::run_byte_level(std::size_t index, std::string_view text, bool at_start, PieceSink& sink,
                                  Scratch& scratch) const {
  const Step& step = steps_[index];
  std::string_view current = text;
  std::string& prefixed = scratch.buffers[index][0];
  if (step.add_prefix_space && !text.starts_with(' ')) {
    // Sized then filled: GCC 12's -Wrestrict misfires on assign(" ") followed by append(text) at -O3.
    prefixed.resize(text.size() + 1);
    prefixed[0] = ' ';
    std::copy(text.begin(), text.end(), prefixed.begin() + 1);
    current = prefixed;
  }
  // One piece after the optional regex split: spelled in the alphabet unless the model takes raw bytes.
  auto emit = [&](std::string_view piece, bool piece_at_start) {
    if (!step.map_bytes) return forward(index, piece, piece_at_start, sink, scratch);
    std::string& mapped = scratch.buffers[index][1];
    mapped.clear();
    byte_level::append_mapped(mapped, piece);
    forward(index, mapped, piece_at_start, sink, scratch);
  };
  if (!step.regex) return emit(current, at_start);
  std::vector<UnicodeRegex::Match>& matches = scratch.matches[index];
  matches.clear();
  step.regex->find_all(current, matches);
  std::size_t previous = 0;
  for (const UnicodeRegex::Match& match : matches) {
    if (previous < match.start) emit(current.substr(previous, match.start - previous), at_start && previous == 0);
    if (match.start < match.end)
      emit(current.substr(match.start, match.end - match.start), at_start && match.start == 0);
    previous = match.end;
  }
  if (previous < current.size()) emit(current.substr(previous), at_start && previous == 0);
}

void PreTokenizer::run_metaspace(std::size_t index, std::string_view text, bool at_start, PieceSink& sink,
                                 Scratch& scratch) const {
  const Step& step = steps_[index];
  std::string& replaced = scratch.buffers[index][0];
  replaced.clear();
  for (const char c : text) {
    if (c == ' ') {
      replaced += step.replacement;
    } else {
      replaced += c;
    }
  }
  const bool prepend =
      step.prepend_scheme == PrependScheme::kAlways || (step.prepend_scheme == PrependScheme::kFirst && at_start);
  if (prepend && !std::string_view(replaced).starts_with(step.replacement)) replaced.insert(0, step.replacement);
  if (!step.split) return forward(index, replaced, at_start, sink, scratch);
  std::vector<UnicodeRegex::Match>& matches = scratch.matches[index];
  matches.clear();
  for (std::size_t pos = replaced.find(step.replacement); pos != std::string::npos;
       pos = replaced.find(step.replacement, pos + step.replacement.size())) {
    matches.push_back({pos, pos + step.replacement.size()});
  }
  emit_split(index, replaced, at_start, matches, Behavior::kMergedWithNext, /*invert=*/false, sink, scratch);
}

void PreTokenizer::emit_split(std::size_t index, std::string_view text, bool at_start,
                              const std::vector<UnicodeRegex::Match>& matches, Behavior behavior, bool invert,
                              PieceSink& sink, Scratch& scratch) const {
  if (behavior == Behavior::kIsolated) {
    // The common case, without building the segment list: every match and every gap is a piece.
    std::size_t previous = 0;
    for (const UnicodeRegex::Match& match : matches) {
      if (previous < match.start)
        forward(index, text.substr(previous, match.start - previous), at_start && previous == 0, sink, scratch);
      forward(index, text.substr(match.start, match.end - match.start), at_start && match.start == 0, sink, scratch);
      previous = match.end;
    }
    if (previous < text.size()) forward(index, text.substr(previous), at_start && previous == 0, sink, scratch);
    return;
  }
  // The library's Pattern::find_matches: gaps and matches in order, covering the text; then the behavior's fold.
  std::vector<Segment> segments;
  segments.reserve(matches.size() * 2 + 1);
  std::size_t previous = 0;
  for (const UnicodeRegex::Match& match : matches) {
    if (previous != match.start) segments.push_back({previous, match.start, invert});
    segments.push_back({match.start, match.end, !invert});
    previous = match.end;
  }
  if (previous != text.size()) segments.push_back({previous, text.size(), invert});

  // (start, end, removed) of each piece.
  struct Piece {
    std::size_t start;
    std::size_t end;
    bool removed;
  };
  std::vector<Piece> pieces;
  pieces.reserve(segments.size());
  bool previous_match = false;
  switch (behavior) {
    case Behavior::kIsolated:
    case Behavior::kRemoved:
      for (const Segment& s : segments) {
        pieces.push_back({s.start, s.end, behavior == Behavior::kRemoved && s.is_match});
      }
      break;
    case Behavior::kContiguous:
      for (const Segment& s : segments) {
        if (s.is_match == previous_match && !pieces.empty()) {
          pieces.back().end = s.end;
        } else {
          pieces.push_back({s.start, s.end, false});
        }
        previous_match = s.is_match;
      }
      break;
    case Behavior::kMergedWithPrevious:
      for (const Segment& s : segments) {
        if (s.is_match && !previous_match && !pieces.empty()) {
          pieces.back().end = s.end;
        } else {
          pieces.push_back({s.start, s.end, false});
        }
        previous_match = s.is_match;
      }
      break;
    case Behavior::kMergedWithNext:
      for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
        if (it->is_match && !previous_match && !pieces.empty()) {
          pieces.back().start = it->start;
        } else {
          pieces.push_back({it->start, it->end, false});
        }
        previous_match = it->is_match;
      }
      std::reverse(pieces.begin(), pieces.end());
      break;
  }
  for (const Piece& piece : pieces) {
    if (piece.removed) continue;
    forward(index, text.substr(piece.start, piece.end - piece.start), at_start && piece.start == 0, sink, scratch);
  }
}

}  // namespace grpo::policy
