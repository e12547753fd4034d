// UTF-8 validation and repair by the table of well-formed byte sequences (Unicode 15, table 3-7).
#include "policy/utf8.h"

namespace grpo::policy::utf8 {
namespace {

// How many bytes a sequence starting with `lead` has and the range its second byte must be in; length 0 for a byte
// that cannot start a sequence.
struct LeadInfo {
  std::size_t length = 0;
  unsigned char second_low = 0x80;
  unsigned char second_high = 0xBF;
};

LeadInfo lead_info(unsigned char lead) {
  if (lead < 0x80) return {1, 0, 0};
  if (lead < 0xC2) return {};
  if (lead < 0xE0) return {2, 0x80, 0xBF};
  if (lead == 0xE0) return {3, 0xA0, 0xBF};
  if (lead == 0xED) return {3, 0x80, 0x9F};
  if (lead < 0xF0) return {3, 0x80, 0xBF};
  if (lead == 0xF0) return {4, 0x90, 0xBF};
  if (lead < 0xF4) return {4, 0x80, 0xBF};
  if (lead == 0xF4) return {4, 0x80, 0x8F};
  return {};
}

// How many bytes from text[pos] belong to the (possibly truncated) sequence its lead byte starts: the whole
// sequence when it is well formed, else the maximal prefix of one (at least 1), which becomes one U+FFFD.
std::size_t consumed(std::string_view text, std::size_t pos, bool& valid) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  const LeadInfo info = lead_info(lead);
  valid = false;
  if (info.length == 0) return 1;
  if (info.length == 1) {
    valid = true;
    return 1;
  }
  std::size_t length = 1;
  for (; length < info.length; ++length) {
    if (pos + length >= text.size()) return length;
    const auto byte = static_cast<unsigned char>(text[pos + length]);
    const unsigned char low = length == 1 ? info.second_low : 0x80;
    const unsigned char high = length == 1 ? info.second_high : 0xBF;
    if (byte < low || byte > high) return length;
  }
  valid = true;
  return length;
}

}  // namespace

std::size_t sequence_length(std::string_view text, std::size_t pos) {
  bool valid = false;
  const std::size_t length = consumed(text, pos, valid);
  return valid ? length : 0;
}

char32_t decode(std::string_view text, std::size_t& pos) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  if (lead < 0x80) {
    ++pos;
    return lead;
  }
  const std::size_t length = length_from_lead(lead);
  char32_t code_point = lead & (0x7F >> length);
  for (std::size_t i = 1; i < length; ++i) {
    code_point = (code_point << 6) | (static_cast<unsigned char>(text[pos + i]) & 0x3F);
  }
  pos += length;
  return code_point;
}

char32_t decode_last(std::string_view text) {
  std::size_t start = text.size() - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  return decode(text, start);
}

void append(std::string& out, char32_t code_point) {
  if (code_point < 0x80) {
    out += static_cast<char>(code_point);
  } else if (code_point < 0x800) {
    out += static_cast<char>(0xC0 | (code_point >> 6));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else if (code_point < 0x10000) {
    out += static_cast<char>(0xE0 | (code_point >> 12));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code_point >> 18));
    out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  }
}

bool is_valid(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    // Eight ASCII bytes at a time: the common case.
    while (pos + 8 <= text.size()) {
      unsigned char bits = 0;
      for (std::size_t i = 0; i < 8; ++i) bits |= static_cast<unsigned char>(text[pos + i]);
      if ((bits & 0x80) != 0) break;
      pos += 8;
    }
    if (pos >= text.size()) break;
    const std::size_t length = sequence_length(text, pos);
    if (length == 0) return false;
    pos += length;
  }
  return true;
}

std::string repair(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  std::size_t pos = 0;
  while (pos < text.size()) {
    bool valid = false;
    const std::size_t length = consumed(text, pos, valid);
    if (valid) {
      out.append(text.substr(pos, length));
    } else {
      append(out, kReplacementCharacter);
    }
    pos += length;
  }
  return out;
}

}  // namespace grpo::policy::utf8
