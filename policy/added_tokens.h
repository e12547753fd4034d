// Finding the added tokens of tokenizer.json ("<|im_start|>", "<think>") in text, as the library's AddedVocabulary
// does: leftmost-longest matches, then single_word, lstrip and rstrip applied to each match.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace grpo::policy {

struct AddedToken {
  std::string content;
  std::int64_t id = 0;
  bool special = false;
  // Matched on the normalized text (with its normalized content) rather than on the raw text.
  bool normalized = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
};

// A part of the text: an added token (id >= 0, the span includes any whitespace it strips) or text (id -1).
struct TextSegment {
  std::size_t start = 0;
  std::size_t end = 0;
  std::int64_t id = -1;
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  // `patterns[i]` is the text that finds `tokens[i]` (its content, normalized for normalized tokens).
  AddedTokenMatcher(std::vector<AddedToken> tokens, const std::vector<std::string>& patterns);

  bool empty() const { return tokens_.empty(); }
  // Cuts valid UTF-8 `text` into segments covering it in order (the library's find_matches).
  void split(std::string_view text, std::vector<TextSegment>& segments) const;

 private:
  struct Node {
    // Sorted (byte, child) edges.
    std::vector<std::pair<unsigned char, std::int32_t>> edges;
    // The token that ends here, or -1.
    std::int32_t token = -1;
  };

  // The index of the longest token starting at text[pos] and its length, or -1.
  std::int32_t longest_at(std::string_view text, std::size_t pos, std::size_t& length) const;

  std::vector<AddedToken> tokens_;
  std::vector<Node> nodes_;
  std::array<bool, 256> first_byte_{};
};

}  // namespace grpo::policy
