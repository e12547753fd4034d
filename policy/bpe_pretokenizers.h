// The "pre_tokenizer" of tokenizer.json: Split (regex or string, every split behavior, invert), ByteLevel, Digits,
// Metaspace, Punctuation, WhitespaceSplit and Sequence, cutting normalized text into the pieces the model encodes.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/tokenizer_json.h"
#include "policy/unicode_regex.h"

namespace grpo::policy {

// Receives the pre-tokens of a span of text, in order.
class PieceSink {
 public:
  virtual void piece(std::string_view text) = 0;

 protected:
  ~PieceSink() = default;
};

class PreTokenizer {
 public:
  // Buffers one encode call reuses across pieces (one set per step, since the steps nest).
  struct Scratch {
    std::vector<std::vector<UnicodeRegex::Match>> matches;
    std::vector<std::vector<std::string>> buffers;
  };

  // No pre-tokenizer: each span is one piece.
  PreTokenizer() = default;
  // From tokenizer.json's "pre_tokenizer" (null: none). With `defer_byte_mapping`, a ByteLevel that is the last step
  // leaves its pieces as raw bytes instead of spelling them in the byte-level alphabet: the model maps them itself
  // (see raw_byte_output()). Throws TokenizerError naming an unsupported or malformed component.
  static PreTokenizer from_json(const JsonNode& node, bool defer_byte_mapping);

  // Whether pieces come out as raw bytes that stand for their byte-level alphabet spelling.
  bool raw_byte_output() const { return defer_mapping_; }

  // Cuts one span of normalized text (between added tokens) into pieces for `sink`. `at_text_start`: whether the span
  // starts the input (Metaspace's prepend_scheme "first" only prepends there).
  void split(std::string_view text, bool at_text_start, PieceSink& sink, Scratch& scratch) const;

 private:
  enum class Kind { kSplit, kByteLevel, kMetaspace };
  enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
  enum class PrependScheme { kAlways, kFirst, kNever };
  struct Step {
    Kind kind = Kind::kSplit;
    // Split (and Digits, Punctuation, WhitespaceSplit, ByteLevel's GPT-2 regex when use_regex).
    std::optional<UnicodeRegex> regex;
    Behavior behavior = Behavior::kIsolated;
    bool invert = false;
    // ByteLevel.
    bool add_prefix_space = false;
    bool map_bytes = true;
    // Metaspace.
    std::string replacement;
    PrependScheme prepend_scheme = PrependScheme::kAlways;
    bool split = true;
  };
  struct Segment {
    std::size_t start = 0;
    std::size_t end = 0;
    bool is_match = false;
  };

  static void append_steps(const JsonNode& node, std::vector<Step>& steps);
  static Behavior read_behavior(const JsonNode& node);

  void run(std::size_t index, std::string_view text, bool at_start, PieceSink& sink, Scratch& scratch) const;
  void run_byte_level(std::size_t index, std::string_view text, bool at_start, PieceSink& sink, Scratch& scratch) const;
  void run_metaspace(std::size_t index, std::string_view text, bool at_start, PieceSink& sink, Scratch& scratch) const;
  // Passes the pieces of `text` that `matches` and `behavior` make (as the library's NormalizedString::split) on to
  // step index + 1.
  void emit_split(std::size_t index, std::string_view text, bool at_start,
                  const std::vector<UnicodeRegex::Match>& matches, Behavior behavior, bool invert, PieceSink& sink,
                  Scratch& scratch) const;
  // Passes a piece to step index + 1, or to the sink after the last step.
  void forward(std::size_t index, std::string_view text, bool at_start, PieceSink& sink, Scratch& scratch) const;

  std::vector<Step> steps_;
  bool defer_mapping_ = false;
};

}  // namespace grpo::policy
