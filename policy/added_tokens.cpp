// AddedTokenMatcher: a byte trie gives the longest token at each position (the first position with one wins, which is
// aho-corasick's leftmost-longest); the whitespace and word-boundary rules are the library's, with Rust regex's \w
// (Alphabetic, marks, Nd, Pc, Join_Control) and \s (White_Space).
#include "policy/added_tokens.h"

#include <algorithm>

#include <unicode/uchar.h>

#include "policy/utf8.h"

namespace grpo::policy {
namespace {

bool is_word_character(char32_t c) {
  const auto code_point = static_cast<UChar32>(c);
  return u_hasBinaryProperty(code_point, UCHAR_ALPHABETIC) != 0 ||
         (U_GET_GC_MASK(code_point) & (U_GC_M_MASK | U_GC_ND_MASK | U_GC_PC_MASK)) != 0 ||
         u_hasBinaryProperty(code_point, UCHAR_JOIN_CONTROL) != 0;
}

bool is_white_space(char32_t c) { return u_isUWhiteSpace(static_cast<UChar32>(c)) != 0; }

bool ends_with_word(std::string_view text) { return !text.empty() && is_word_character(utf8::decode_last(text)); }

bool starts_with_word(std::string_view text) {
  std::size_t pos = 0;
  return !text.empty() && is_word_character(utf8::decode(text, pos));
}

// Where the whitespace that `text` ends with begins.
std::size_t trailing_space_start(std::string_view text) {
  std::size_t end = text.size();
  while (end > 0) {
    std::size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    std::size_t next = start;
    if (!is_white_space(utf8::decode(text, next))) break;
    end = start;
  }
  return end;
}

// Where the whitespace that `text` starts with ends.
std::size_t leading_space_end(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t next = pos;
    if (!is_white_space(utf8::decode(text, next))) break;
    pos = next;
  }
  return pos;
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens, const std::vector<std::string>& patterns)
    : tokens_(std::move(tokens)), nodes_(1) {
  for (std::size_t index = 0; index < patterns.size(); ++index) {
    const std::string& pattern = patterns[index];
    if (pattern.empty()) continue;
    first_byte_[static_cast<unsigned char>(pattern[0])] = true;
    std::int32_t node = 0;
    for (const char c : pattern) {
      const auto byte = static_cast<unsigned char>(c);
      auto& edges = nodes_[node].edges;
      auto it = std::lower_bound(edges.begin(), edges.end(), std::make_pair(byte, std::int32_t{-1}));
      if (it == edges.end() || it->first != byte) {
        const auto child = static_cast<std::int32_t>(nodes_.size());
        it = edges.insert(it, {byte, child});
        nodes_.emplace_back();
      }
      node = it->second;
    }
    // Of two tokens with the same pattern, the first one listed is found.
    if (nodes_[node].token < 0) nodes_[node].token = static_cast<std::int32_t>(index);
  }
}

std::int32_t AddedTokenMatcher::longest_at(std::string_view text, std::size_t pos, std::size_t& length) const {
  std::int32_t found = -1;
  std::int32_t node = 0;
  for (std::size_t i = pos; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const auto& edges = nodes_[node].edges;
    const auto it = std::lower_bound(edges.begin(), edges.end(), std::make_pair(byte, std::int32_t{-1}));
    if (it == edges.end() || it->first != byte) break;
    node = it->second;
    if (nodes_[node].token >= 0) {
      found = nodes_[node].token;
      length = i + 1 - pos;
    }
  }
  return found;
}

void AddedTokenMatcher::split(std::string_view text, std::vector<TextSegment>& segments) const {
  segments.clear();
  std::size_t start_offset = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t length = 0;
    std::int32_t index = -1;
    for (; pos < text.size(); ++pos) {
      if (first_byte_[static_cast<unsigned char>(text[pos])] && (index = longest_at(text, pos, length)) >= 0) break;
    }
    if (index < 0) break;
    std::size_t start = pos;
    std::size_t stop = pos + length;
    // The next search starts after the match, whatever single_word and rstrip decide.
    pos = stop;
    const AddedToken& token = tokens_[static_cast<std::size_t>(index)];
    if (token.single_word) {
      const bool space_before = start == 0 || !ends_with_word(text.substr(0, start));
      const bool space_after = stop == text.size() || !starts_with_word(text.substr(stop));
      if (!space_before || !space_after) continue;
    }
    if (token.lstrip) start = std::max(trailing_space_start(text.substr(0, start)), start_offset);
    if (token.rstrip) stop += leading_space_end(text.substr(stop));
    if (start_offset < start) segments.push_back({start_offset, start, -1});
    segments.push_back({start, stop, token.id});
    start_offset = stop;
  }
  if (start_offset != text.size()) segments.push_back({start_offset, text.size(), -1});
}

}  // namespace grpo::policy
