// The Oniguruma-to-PCRE2 translation and the match loop. Each thread keeps one PCRE2 match block and one JIT stack,
// so matching allocates nothing and a compiled pattern is shared by all threads.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "policy/unicode_regex.h"

#include <pcre2.h>

#include <stdexcept>

#include <fmt/format.h>

#include "policy/utf8.h"

namespace grpo::policy {
namespace {

[[noreturn]] void unsupported(std::string_view pattern, std::size_t offset, std::string_view what) {
  throw std::invalid_argument(fmt::format("pattern {:?} at offset {}: {}", std::string(pattern), offset, what));
}

// A Unicode property's code points that Oniguruma has and PCRE2 lacks (PCRE2's Unicode tables are older), or with
// `exact`, all of the property's code points.
struct PropertyExtra {
  std::string_view name;
  std::string_view class_body;
  bool exact = false;
};

#include "policy/unicode_regex_table.inc"

// Ruby's \h: a hexadecimal digit (PCRE2's \h is horizontal space).
constexpr std::string_view kHexClassBody = "0-9a-fA-F";

// Property names compare as Oniguruma compares them: case, spaces, hyphens and underscores ignored.
std::string loose_name(std::string_view name) {
  std::string out;
  for (const char c : name) {
    if (c == ' ' || c == '-' || c == '_') continue;
    out += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  }
  return out;
}

const PropertyExtra* find_property_extra(std::string_view name) {
  const std::string key = loose_name(name);
  for (const PropertyExtra& extra : kPropertyExtras) {
    if (loose_name(extra.name) == key) return &extra;
  }
  return nullptr;
}

// The class body (no brackets) that means Oniguruma's \p{name}.
std::string property_class_body(std::string_view name) {
  const PropertyExtra* extra = find_property_extra(name);
  if (extra == nullptr) return fmt::format("\\p{{{}}}", name);
  if (extra->exact) return std::string(extra->class_body);
  return fmt::format("\\p{{{}}}{}", name, extra->class_body);
}

// Emits a class `body`: inside a class as is; outside, bracketed and negated when asked. A negated class inside a
// class cannot be written as a union of items unless PCRE2's own property already means the same.
void emit_class(std::string_view pattern, std::size_t offset, std::string_view body, bool negated, bool in_class,
                std::string_view plain_negation, std::string& out) {
  if (!in_class) {
    out += fmt::format("[{}{}]", negated ? "^" : "", body);
  } else if (!negated) {
    out += body;
  } else if (!plain_negation.empty()) {
    out += plain_negation;
  } else {
    unsupported(pattern, offset, "this negated escape inside a character class has no exact PCRE2 equivalent");
  }
}

// Translates \p{..}, \P{..}, \p{^..} and \pL at pattern[pos]; advances past it.
void translate_property(std::string_view pattern, std::size_t& pos, bool in_class, std::string& out) {
  const std::size_t start = pos;
  bool negated = pattern[pos + 1] == 'P';
  std::string_view name;
  if (pos + 2 < pattern.size() && pattern[pos + 2] == '{') {
    const std::size_t close = pattern.find('}', pos + 3);
    if (close == std::string_view::npos) unsupported(pattern, start, "an unterminated \\p{");
    name = pattern.substr(pos + 3, close - pos - 3);
    pos = close + 1;
  } else if (pos + 2 < pattern.size()) {
    name = pattern.substr(pos + 2, 1);
    pos += 3;
  } else {
    unsupported(pattern, start, "\\p without a property name");
  }
  if (name.starts_with('^')) {
    negated = !negated;
    name.remove_prefix(1);
  }
  const bool changed = find_property_extra(name) != nullptr;
  emit_class(pattern, start, property_class_body(name), negated, in_class,
             changed ? "" : fmt::format("\\P{{{}}}", name), out);
}

// The per-thread state of a match: PCRE2 needs one match block per concurrent match, and the JIT a stack; the
// default 32 KiB machine stack is too small for `\s+(?!\S)` over long whitespace runs.
struct MatchScratch {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;

  MatchScratch() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    jit_stack = pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, nullptr);
    if (data == nullptr || context == nullptr) throw std::bad_alloc();
    if (jit_stack != nullptr) pcre2_jit_stack_assign(context, nullptr, jit_stack);
  }
  ~MatchScratch() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
  MatchScratch(const MatchScratch&) = delete;
  MatchScratch& operator=(const MatchScratch&) = delete;
};

MatchScratch& thread_scratch() {
  thread_local MatchScratch scratch;
  return scratch;
}

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// Copies the (possibly multi-byte) character at pattern[pos] and advances past it.
void copy_character(std::string_view pattern, std::size_t& pos, std::string& out) {
  const std::size_t length = utf8::length_from_lead(static_cast<unsigned char>(pattern[pos]));
  out.append(pattern.substr(pos, length));
  pos += length;
}

// Translates the escape at pattern[pos] == '\\'; advances past it.
void translate_escape(std::string_view pattern, std::size_t& pos, bool in_class, std::string& out) {
  const std::size_t start = pos;
  if (pos + 1 >= pattern.size()) unsupported(pattern, start, "a trailing backslash");
  const char letter = pattern[pos + 1];
  switch (letter) {
    case 's':
    case 'S':
      emit_class(pattern, start, kOnigurumaSpaceClassBody, letter == 'S', in_class, "", out);
      pos += 2;
      return;
    case 'h':
    case 'H':
      emit_class(pattern, start, kHexClassBody, letter == 'H', in_class, "", out);
      pos += 2;
      return;
    case 'd':
    case 'D':
      // Oniguruma's \d in Unicode mode is \p{Nd}.
      emit_class(pattern, start, property_class_body("Nd"), letter == 'D', in_class, "", out);
      pos += 2;
      return;
    case 'p':
    case 'P':
      translate_property(pattern, pos, in_class, out);
      return;
    case 'w':
    case 'W':
    case 'b':
    case 'B':
      unsupported(pattern, start,
                  fmt::format("\\{}: Oniguruma's word characters (Alphabetic, marks, Nd, Pc and more) have no exact "
                              "PCRE2 equivalent; write the classes out, e.g. [\\p{{L}}\\p{{M}}\\p{{Nd}}_]",
                              letter));
    case 'u':
      if (pos + 5 < pattern.size() && is_hex(pattern[pos + 2]) && is_hex(pattern[pos + 3]) &&
          is_hex(pattern[pos + 4]) && is_hex(pattern[pos + 5])) {
        out += fmt::format("\\x{{{}}}", pattern.substr(pos + 2, 4));
        pos += 6;
        return;
      }
      unsupported(pattern, start, "\\u must be followed by four hex digits");
    default:
      out += '\\';
      ++pos;
      copy_character(pattern, pos, out);
  }
}

}  // namespace

std::string UnicodeRegex::translate_oniguruma(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 16);
  std::size_t pos = 0;
  bool in_class = false;
  while (pos < pattern.size()) {
    const char c = pattern[pos];
    if (c == '\\') {
      translate_escape(pattern, pos, in_class, out);
      continue;
    }
    if (!in_class) {
      if (c == '[') {
        in_class = true;
        out += c;
        ++pos;
        // A ']' right after '[' or '[^' is a literal in both dialects.
        if (pos < pattern.size() && pattern[pos] == '^') out += pattern[pos++];
        if (pos < pattern.size() && pattern[pos] == ']') out += pattern[pos++];
        continue;
      }
      copy_character(pattern, pos, out);
      continue;
    }
    if (c == ']') {
      in_class = false;
      out += c;
      ++pos;
    } else if (c == '[') {
      if (pos + 1 < pattern.size() && pattern[pos + 1] == ':') {
        const std::size_t close = pattern.find(":]", pos + 2);
        if (close == std::string_view::npos) unsupported(pattern, pos, "an unterminated POSIX class");
        out.append(pattern.substr(pos, close + 2 - pos));
        pos = close + 2;
      } else {
        unsupported(pattern, pos, "a nested character class (Oniguruma syntax) has no PCRE2 equivalent");
      }
    } else if (c == '&' && pos + 1 < pattern.size() && pattern[pos + 1] == '&') {
      unsupported(pattern, pos, "class intersection && (Oniguruma syntax) has no PCRE2 equivalent");
    } else {
      copy_character(pattern, pos, out);
    }
  }
  return out;
}

UnicodeRegex UnicodeRegex::compile(std::string pcre2_pattern, std::string_view source, bool literal) {
  pcre2_compile_context* context = pcre2_compile_context_create(nullptr);
  if (context == nullptr) throw std::bad_alloc();
  // Oniguruma's '.' stops at LF only, and its ^ and $ match at line starts and ends (Ruby semantics).
  pcre2_set_newline(context, PCRE2_NEWLINE_LF);
  // PCRE2_LITERAL allows neither UCP nor MULTILINE (nor needs them).
  const std::uint32_t options = literal ? PCRE2_UTF | PCRE2_LITERAL : PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE;
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pcre2_pattern.data()), pcre2_pattern.size(), options,
                                   &error, &error_offset, context);
  pcre2_compile_context_free(context);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof message);
    throw std::invalid_argument(fmt::format("pattern {:?} does not compile (as PCRE2 {:?}): {} at offset {}",
                                            std::string(source), pcre2_pattern, reinterpret_cast<char*>(message),
                                            error_offset));
  }
  // Without JIT support (some platforms) pcre2_match interprets the pattern instead: slower, same results.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  return UnicodeRegex(std::string(source), std::shared_ptr<pcre2_real_code_8>(code, pcre2_code_free));
}

UnicodeRegex UnicodeRegex::oniguruma(std::string_view pattern) {
  return compile(translate_oniguruma(pattern), pattern, /*literal=*/false);
}

UnicodeRegex UnicodeRegex::literal(std::string_view text) { return compile(std::string(text), text, /*literal=*/true); }

void UnicodeRegex::find_all(std::string_view text, std::vector<Match>& matches) const {
  MatchScratch& scratch = thread_scratch();
  static constexpr char kEmpty[] = "";
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.empty() ? kEmpty : text.data());
  std::size_t search_from = 0;
  bool matched_before = false;
  std::size_t previous_end = 0;
  while (search_from <= text.size()) {
    const int rc =
        pcre2_match(code_.get(), subject, text.size(), search_from, PCRE2_NO_UTF_CHECK, scratch.data, scratch.context);
    if (rc == PCRE2_ERROR_NOMATCH) return;
    if (rc < 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof message);
      throw std::runtime_error(
          fmt::format("matching pattern {:?} failed: {}", pattern_, reinterpret_cast<char*>(message)));
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(scratch.data);
    const std::size_t start = ovector[0];
    const std::size_t end = ovector[1];
    if (start == end && matched_before && previous_end == end) {
      search_from +=
          search_from < text.size() ? utf8::length_from_lead(static_cast<unsigned char>(text[search_from])) : 1;
      continue;
    }
    search_from = end;
    matched_before = true;
    previous_end = end;
    matches.push_back({start, end});
  }
}

}  // namespace grpo::policy
