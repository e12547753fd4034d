// UTF-8 helpers for the tokenizers: validation, decoding one code point, and the lossy repair that Python's
// bytes.decode(errors="replace") and Rust's String::from_utf8_lossy both do.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace grpo::policy::utf8 {

inline constexpr char32_t kReplacementCharacter = 0xFFFD;

// The length (1..4) of the well-formed UTF-8 sequence that starts at text[pos], or 0 when the bytes there are not
// one (a stray continuation byte, an overlong form, a surrogate, a value above U+10FFFF, a truncated sequence).
std::size_t sequence_length(std::string_view text, std::size_t pos);

// The length of the character that starts with `lead`, for text already known to be valid.
inline std::size_t length_from_lead(unsigned char lead) {
  return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

// The code point at text[pos] of valid UTF-8; advances pos past it.
char32_t decode(std::string_view text, std::size_t& pos);

// The last code point of valid, non-empty UTF-8 `text`.
char32_t decode_last(std::string_view text);

void append(std::string& out, char32_t code_point);

bool is_valid(std::string_view text);

// `text` with each maximal ill-formed subsequence replaced by U+FFFD (the Unicode "best practice" that Python and
// Rust follow, so the results agree byte for byte).
std::string repair(std::string_view text);

}  // namespace grpo::policy::utf8
