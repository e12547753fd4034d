// The byte-to-unicode tables, built once (openai/gpt-2 encoder.py bytes_to_unicode, as the `tokenizers` library's
// pre_tokenizers/byte_level.rs builds them).
#include "policy/byte_level.h"

#include <array>

#include "policy/utf8.h"

namespace grpo::policy::byte_level {
namespace {

struct Tables {
  std::array<char32_t, 256> chars{};
  std::array<std::string, 256> utf8;
  // Indexed by code point; the alphabet is within U+0000..U+0143.
  std::array<int, 0x144> bytes{};

  Tables() {
    bytes.fill(-1);
    char32_t next_extra = 0x100;
    for (int byte = 0; byte < 256; ++byte) {
      const bool printable = (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) || byte >= 0xAE;
      chars[byte] = printable ? static_cast<char32_t>(byte) : next_extra++;
      utf8::append(utf8[byte], chars[byte]);
      bytes[chars[byte]] = byte;
    }
  }
};

const Tables& tables() {
  static const Tables instance;
  return instance;
}

}  // namespace

std::string_view byte_to_utf8(std::uint8_t byte) { return tables().utf8[byte]; }

char32_t byte_to_char(std::uint8_t byte) { return tables().chars[byte]; }

int char_to_byte(char32_t c) { return c < tables().bytes.size() ? tables().bytes[c] : -1; }

void append_mapped(std::string& out, std::string_view raw) {
  const Tables& t = tables();
  for (const char c : raw) out += t.utf8[static_cast<unsigned char>(c)];
}

bool append_unmapped(std::string& out, std::string_view token) {
  const std::size_t size = out.size();
  std::size_t pos = 0;
  while (pos < token.size()) {
    const int byte = char_to_byte(utf8::decode(token, pos));
    if (byte < 0) {
      out.resize(size);
      return false;
    }
    out += static_cast<char>(byte);
  }
  return true;
}

}  // namespace grpo::policy::byte_level
