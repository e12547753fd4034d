// TokenDecoder: the library's decoders (decoders/*.rs) step by step on the token list; a lone ByteLevel decoder, the
// byte-level BPE case, goes straight from tokens to bytes.
#include "policy/bpe_decoders.h"

#include <fmt/format.h>

#include "policy/byte_level.h"
#include "policy/utf8.h"

namespace grpo::policy {
namespace {

// Each token's bytes (its raw UTF-8 when it is not all in the alphabet), then the lossy UTF-8 repair.
std::string byte_level_decode(const std::vector<std::string_view>& tokens) {
  std::string bytes;
  for (const std::string_view token : tokens) {
    if (!byte_level::append_unmapped(bytes, token)) bytes.append(token);
  }
  if (utf8::is_valid(bytes)) return bytes;
  return utf8::repair(bytes);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The byte of a "<0xHH>" token, or -1. Rust's u8::from_str_radix also takes "+H".
int fallback_byte(std::string_view token) {
  if (token.size() != 6 || !token.starts_with("<0x") || token[5] != '>') return -1;
  if (token[3] == '+') return hex_value(token[4]);
  const int high = hex_value(token[3]);
  const int low = hex_value(token[4]);
  return high < 0 || low < 0 ? -1 : high * 16 + low;
}

void byte_fallback(std::vector<std::string>& tokens) {
  std::vector<std::string> out;
  std::string pending;
  const auto flush = [&] {
    if (pending.empty()) return;
    if (utf8::is_valid(pending)) {
      out.push_back(pending);
    } else {
      for (std::size_t i = 0; i < pending.size(); ++i) out.emplace_back("\xEF\xBF\xBD");
    }
    pending.clear();
  };
  for (std::string& token : tokens) {
    if (const int byte = fallback_byte(token); byte >= 0) {
      pending += static_cast<char>(byte);
      continue;
    }
    flush();
    out.push_back(std::move(token));
  }
  flush();
  tokens = std::move(out);
}

std::vector<char32_t> code_points(std::string_view text) {
  std::vector<char32_t> out;
  std::size_t pos = 0;
  while (pos < text.size()) out.push_back(utf8::decode(text, pos));
  return out;
}

}  // namespace

TokenDecoder TokenDecoder::from_json(const JsonNode& node) {
  TokenDecoder decoder;
  if (node.is_null()) return decoder;
  decoder.present_ = true;
  append_steps(node, decoder.steps_);
  return decoder;
}

void TokenDecoder::append_steps(const JsonNode& node, std::vector<Step>& steps) {
  const std::string type = node.type();
  Step step;
  if (type == "Sequence") {
    const JsonNode list = node.child("decoders");
    if (!list.value().is_array()) list.fail("is not an array");
    for (std::size_t i = 0; i < list.value().size(); ++i) append_steps(list.element(i), steps);
    return;
  }
  const auto one_character = [&](std::string_view field, std::string fallback) {
    std::string value = node.optional_string_field(field).value_or(std::move(fallback));
    if (value.empty() || utf8::length_from_lead(static_cast<unsigned char>(value[0])) != value.size()) {
      node.child(field).fail(fmt::format("'{}' is not one character", value));
    }
    return value;
  };
  if (type == "ByteLevel") {
    step.kind = Kind::kByteLevel;
  } else if (type == "Replace") {
    step.kind = Kind::kReplace;
    step.pattern = read_pattern(node);
    step.content = node.string_field("content");
  } else if (type == "ByteFallback") {
    step.kind = Kind::kByteFallback;
  } else if (type == "Fuse") {
    step.kind = Kind::kFuse;
  } else if (type == "Strip") {
    step.kind = Kind::kStrip;
    step.content = one_character("content", " ");
    step.start = static_cast<std::size_t>(std::max<std::int64_t>(0, node.int_field("start", 0)));
    step.stop = static_cast<std::size_t>(std::max<std::int64_t>(0, node.int_field("stop", 0)));
  } else if (type == "Metaspace") {
    step.kind = Kind::kMetaspace;
    step.content = one_character("replacement", "\xE2\x96\x81");
    if (const std::optional<std::string> scheme = node.optional_string_field("prepend_scheme")) {
      step.prepend = *scheme != "never";
    } else {
      step.prepend = node.bool_field("add_prefix_space", true);
    }
  } else {
    node.unsupported_type({"ByteLevel", "Replace", "ByteFallback", "Fuse", "Strip", "Metaspace", "Sequence"});
  }
  steps.push_back(std::move(step));
}

void TokenDecoder::apply(const Step& step, std::vector<std::string>& tokens) {
  switch (step.kind) {
    case Kind::kByteLevel: {
      const std::vector<std::string_view> views(tokens.begin(), tokens.end());
      tokens = {byte_level_decode(views)};
      return;
    }
    case Kind::kReplace:
      for (std::string& token : tokens) {
        if (token.empty()) continue;
        std::vector<UnicodeRegex::Match> matches;
        step.pattern->find_all(token, matches);
        std::string out;
        std::size_t previous = 0;
        for (const UnicodeRegex::Match& match : matches) {
          out.append(token, previous, match.start - previous);
          out += step.content;
          previous = match.end;
        }
        out.append(token, previous);
        token = std::move(out);
      }
      return;
    case Kind::kByteFallback:
      return byte_fallback(tokens);
    case Kind::kFuse: {
      std::string fused;
      for (const std::string& token : tokens) fused += token;
      tokens = {std::move(fused)};
      return;
    }
    case Kind::kStrip: {
      const char32_t content = code_points(step.content)[0];
      for (std::string& token : tokens) {
        const std::vector<char32_t> chars = code_points(token);
        std::size_t start_cut = 0;
        for (std::size_t i = 0; i < std::min(step.start, chars.size()) && chars[i] == content; ++i) start_cut = i + 1;
        std::size_t stop_cut = chars.size();
        for (std::size_t i = 0; i < std::min(step.stop, chars.size()) && chars[chars.size() - i - 1] == content; ++i) {
          stop_cut = chars.size() - i - 1;
        }
        std::string out;
        for (std::size_t i = start_cut; i < stop_cut; ++i) utf8::append(out, chars[i]);
        token = std::move(out);
      }
      return;
    }
    case Kind::kMetaspace:
      // Every replacement character becomes a space, except in the first token when a prefix was prepended, where
      // they are dropped (the library's decoders/metaspace.rs).
      for (std::size_t index = 0; index < tokens.size(); ++index) {
        std::string out;
        const std::string& token = tokens[index];
        for (std::size_t pos = 0; pos < token.size();) {
          if (std::string_view(token).substr(pos).starts_with(step.content)) {
            if (!(index == 0 && step.prepend)) out += ' ';
            pos += step.content.size();
          } else {
            out += token[pos++];
          }
        }
        tokens[index] = std::move(out);
      }
      return;
  }
}

std::string TokenDecoder::decode(const std::vector<std::string_view>& tokens) const {
  if (!present_) {
    std::string joined;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) joined += ' ';
      joined += tokens[i];
    }
    return joined;
  }
  if (steps_.size() == 1 && steps_[0].kind == Kind::kByteLevel) return byte_level_decode(tokens);
  std::vector<std::string> strings(tokens.begin(), tokens.end());
  for (const Step& step : steps_) apply(step, strings);
  std::string text;
  for (const std::string& piece : strings) text += piece;
  return text;
}

}  // namespace grpo::policy
