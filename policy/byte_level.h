// The GPT-2 byte-to-unicode alphabet of byte-level BPE: every byte gets a printable character (the printable
// Latin-1 bytes stand for themselves, the others for U+0100..U+0143 in order), so that tokens are text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace grpo::policy::byte_level {

// The character that stands for `byte`, as UTF-8 (one or two bytes).
std::string_view byte_to_utf8(std::uint8_t byte);

char32_t byte_to_char(std::uint8_t byte);

// The byte that `c` stands for, or -1 when `c` is not in the alphabet.
int char_to_byte(char32_t c);

// Appends the alphabet form of raw bytes.
void append_mapped(std::string& out, std::string_view raw);

// Appends the raw bytes that `token` (valid UTF-8) stands for and returns true, or appends nothing and returns
// false when some character of `token` is outside the alphabet.
bool append_unmapped(std::string& out, std::string_view token);

}  // namespace grpo::policy::byte_level
