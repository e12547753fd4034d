// TextNormalizer: the normalization forms through ICU's Normalizer2 on UTF-8, the other normalizers by hand with the
// character semantics of the Rust `tokenizers` crate (char::to_lowercase, char::is_whitespace, marks as accents).
#include "policy/unicode_normalizer.h"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>

#include <fmt/format.h>

#include "policy/utf8.h"

namespace grpo::policy {
namespace {

bool is_ascii(std::string_view text) {
  for (const char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

const icu::Normalizer2& icu_normalizer(std::string_view form) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* normalizer = nullptr;
  if (form == "NFC") normalizer = icu::Normalizer2::getNFCInstance(status);
  if (form == "NFD") normalizer = icu::Normalizer2::getNFDInstance(status);
  if (form == "NFKC") normalizer = icu::Normalizer2::getNFKCInstance(status);
  if (form == "NFKD") normalizer = icu::Normalizer2::getNFKDInstance(status);
  if (U_FAILURE(status) || normalizer == nullptr) {
    throw TokenizerError(fmt::format("ICU has no {} normalizer: {}", form, u_errorName(status)));
  }
  return *normalizer;
}

// Every normalization form leaves ASCII unchanged; ICU's quick check settles most other text without copying.
void normalize_form(std::string_view form, std::string& text) {
  if (is_ascii(text)) return;
  const icu::Normalizer2& normalizer = icu_normalizer(form);
  UErrorCode status = U_ZERO_ERROR;
  if (normalizer.isNormalizedUTF8(text, status) && U_SUCCESS(status)) return;
  status = U_ZERO_ERROR;
  std::string out;
  out.reserve(text.size() + text.size() / 4);
  icu::StringByteSink<std::string> sink(&out);
  normalizer.normalizeUTF8(0, text, sink, nullptr, status);
  if (U_FAILURE(status))
    throw TokenizerError(fmt::format("ICU {} normalization failed: {}", form, u_errorName(status)));
  text = std::move(out);
}

// Rust's char::to_lowercase, one character at a time (so no final-sigma rule): the simple mapping, except U+0130,
// the one character whose unconditional lowercase is two characters.
void lowercase(std::string& text) {
  if (is_ascii(text)) {
    for (char& c : text) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return;
  }
  std::string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  while (pos < text.size()) {
    const char32_t c = utf8::decode(text, pos);
    if (c == 0x130) {
      out += "i\xCC\x87";
    } else {
      utf8::append(out, static_cast<char32_t>(u_tolower(static_cast<UChar32>(c))));
    }
  }
  text = std::move(out);
}

void strip_accents(std::string& text) {
  if (is_ascii(text)) return;
  std::string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t start = pos;
    const char32_t c = utf8::decode(text, pos);
    if ((U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_M_MASK) == 0) out.append(text, start, pos - start);
  }
  text = std::move(out);
}

bool is_white_space(char32_t c) { return u_isUWhiteSpace(static_cast<UChar32>(c)) != 0; }

void strip(std::string& text, bool left, bool right) {
  std::size_t begin = 0;
  std::size_t end = text.size();
  if (left) {
    while (begin < end) {
      std::size_t next = begin;
      if (!is_white_space(utf8::decode(text, next))) break;
      begin = next;
    }
  }
  if (right) {
    while (end > begin) {
      std::size_t start = end - 1;
      while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
      std::size_t next = start;
      if (!is_white_space(utf8::decode(text, next))) break;
      end = start;
    }
  }
  text = text.substr(begin, end - begin);
}

// The library finds no match in empty text, whatever the pattern.
void replace(const UnicodeRegex& pattern, const std::string& content, std::string& text) {
  if (text.empty()) return;
  std::vector<UnicodeRegex::Match> matches;
  pattern.find_all(text, matches);
  if (matches.empty()) return;
  std::string out;
  std::size_t previous = 0;
  for (const UnicodeRegex::Match& match : matches) {
    out.append(text, previous, match.start - previous);
    out += content;
    previous = match.end;
  }
  out.append(text, previous);
  text = std::move(out);
}

}  // namespace

TextNormalizer TextNormalizer::from_json(const JsonNode& node) {
  TextNormalizer normalizer;
  if (!node.is_null()) append_steps(node, normalizer.steps_);
  return normalizer;
}

void TextNormalizer::append_steps(const JsonNode& node, std::vector<Step>& steps) {
  const std::string type = node.type();
  Step step;
  if (type == "Sequence") {
    const JsonNode list = node.child("normalizers");
    if (!list.value().is_array()) list.fail("is not an array");
    for (std::size_t i = 0; i < list.value().size(); ++i) append_steps(list.element(i), steps);
    return;
  }
  if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    step.kind = type == "NFC" ? Kind::kNfc : type == "NFD" ? Kind::kNfd : type == "NFKC" ? Kind::kNfkc : Kind::kNfkd;
    (void)icu_normalizer(type);
  } else if (type == "Lowercase") {
    step.kind = Kind::kLowercase;
  } else if (type == "StripAccents") {
    step.kind = Kind::kStripAccents;
  } else if (type == "Replace") {
    step.kind = Kind::kReplace;
    step.pattern = read_pattern(node);
    step.content = node.string_field("content");
  } else if (type == "Prepend") {
    step.kind = Kind::kPrepend;
    step.content = node.string_field("prepend");
  } else if (type == "Strip") {
    step.kind = Kind::kStrip;
    step.strip_left = node.bool_field("strip_left", false);
    step.strip_right = node.bool_field("strip_right", false);
  } else {
    node.unsupported_type(
        {"NFC", "NFD", "NFKC", "NFKD", "Lowercase", "StripAccents", "Replace", "Prepend", "Strip", "Sequence"});
  }
  steps.push_back(std::move(step));
}

void TextNormalizer::apply(const Step& step, std::string& text) {
  switch (step.kind) {
    case Kind::kNfc:
      return normalize_form("NFC", text);
    case Kind::kNfd:
      return normalize_form("NFD", text);
    case Kind::kNfkc:
      return normalize_form("NFKC", text);
    case Kind::kNfkd:
      return normalize_form("NFKD", text);
    case Kind::kLowercase:
      return lowercase(text);
    case Kind::kStripAccents:
      return strip_accents(text);
    case Kind::kReplace:
      return replace(*step.pattern, step.content, text);
    case Kind::kPrepend:
      if (!text.empty()) text.insert(0, step.content);
      return;
    case Kind::kStrip:
      return strip(text, step.strip_left, step.strip_right);
  }
}

void TextNormalizer::normalize(std::string& text) const {
  for (const Step& step : steps_) apply(step, text);
}

}  // namespace grpo::policy
