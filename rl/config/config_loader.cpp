// Parses RunConfig text with readable errors, applies --set overrides by reflection, resolves schema defaults and
// checks (valid_min)/(valid_max) and the cross-field rules, recording where every value came from.
#include "rl/config/config_loader.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <optional>
#include <sstream>
#include <system_error>
#include <utility>
#include <vector>

namespace grpo::config {
namespace {

namespace pb = google::protobuf;
using pb::Descriptor;
using pb::FieldDescriptor;
using pb::Message;
using pb::Reflection;
using Locations = std::map<std::string, std::string, std::less<>>;

constexpr std::string_view kDefaultLocation = "default";
constexpr std::string_view kEmbeddedSourceName = "<embedded default>";
// protobuf's io::Tokenizer advances the column to the next multiple of 8 at a tab; editors count characters.
constexpr int kTokenizerTabWidth = 8;

// ---------------------------------------------------------------------------------------------------------------
// Describing fields for messages.

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  return fmt::format("{}", fmt::join(parts, separator));
}

std::string field_names(const Descriptor& message) {
  std::vector<std::string> names;
  for (int i = 0; i < message.field_count(); ++i) names.push_back(message.field(i)->name());
  return join(names, ", ");
}

std::string enum_value_names(const pb::EnumDescriptor& type) {
  std::vector<std::string> names;
  for (int i = 0; i < type.value_count(); ++i) names.push_back(type.value(i)->name());
  return join(names, ", ");
}

std::string lowercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// "; did you mean 'group_size'?" when one candidate is a likely typo of `name` (case or a few edits), else "".
std::string did_you_mean(std::string_view name, const std::vector<std::string>& candidates) {
  const std::string lowered = lowercase(name);
  std::string best;
  std::size_t best_distance = std::max<std::size_t>(1, name.size() / 3) + 1;
  for (const std::string& candidate : candidates) {
    const std::size_t distance = edit_distance(lowered, lowercase(candidate));
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best.empty() ? "" : fmt::format("; did you mean '{}'?", best);
}

std::string unknown_field_message(const Descriptor& message, std::string_view name) {
  std::vector<std::string> names;
  for (int i = 0; i < message.field_count(); ++i) names.push_back(message.field(i)->name());
  return fmt::format("unknown field '{}' in {}; valid fields: {}{}", name, message.name(), join(names, ", "),
                     did_you_mean(name, names));
}

std::string unknown_enum_message(const pb::EnumDescriptor& type, std::string_view value) {
  std::vector<std::string> names;
  for (int i = 0; i < type.value_count(); ++i) names.push_back(type.value(i)->name());
  return fmt::format("unknown value '{}' for {}; valid values: {}{}", value, type.name(), join(names, ", "),
                     did_you_mean(value, names));
}

bool is_integer_field(const FieldDescriptor& field) {
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
      return true;
    default:
      return false;
  }
}

bool is_floating_field(const FieldDescriptor& field) {
  return field.cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE || field.cpp_type() == FieldDescriptor::CPPTYPE_FLOAT;
}

// Bounds of integer fields print as integers ("[2, 1024]"), others in shortest round-trip form ("[0, 1e-06]").
std::string format_bound(const FieldDescriptor& field, double bound) {
  if (is_integer_field(field) && std::floor(bound) == bound && std::abs(bound) < 1e18) {
    return fmt::format("{}", static_cast<std::int64_t>(bound));
  }
  return fmt::format("{}", bound);
}

struct Range {
  std::optional<double> min;
  std::optional<double> max;
};

Range range_of(const FieldDescriptor& field) {
  const pb::FieldOptions& options = field.options();
  Range range;
  if (options.HasExtension(valid_min)) range.min = options.GetExtension(valid_min);
  if (options.HasExtension(valid_max)) range.max = options.GetExtension(valid_max);
  return range;
}

// "[2, 1024]", "[0, inf)", or "" for a field without bounds.
std::string range_text(const FieldDescriptor& field) {
  const Range range = range_of(field);
  if (!range.min && !range.max) return "";
  return fmt::format("{}{}, {}{}", range.min ? "[" : "(", range.min ? format_bound(field, *range.min) : "-inf",
                     range.max ? format_bound(field, *range.max) : "inf", range.max ? "]" : ")");
}

// What a value of `field` looks like, for "expected ..., got ..." messages.
std::string expected_value(const FieldDescriptor& field) {
  const std::string range = range_text(field);
  const std::string in_range = range.empty() ? "" : fmt::format(" in {}", range);
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
      return fmt::format("an integer ({}){}", field.type_name(), in_range);
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
      return fmt::format("a non-negative integer ({}){}", field.type_name(), in_range);
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT:
      return fmt::format("a number ({}){}", field.type_name(), in_range);
    case FieldDescriptor::CPPTYPE_BOOL:
      return "true or false";
    case FieldDescriptor::CPPTYPE_STRING:
      return "a string in double quotes";
    case FieldDescriptor::CPPTYPE_ENUM:
      return fmt::format("one of {} (unquoted)", enum_value_names(*field.enum_type()));
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return fmt::format("a {} message: {} {{ ... }}", field.message_type()->name(), field.name());
  }
  return field.type_name();
}

// ---------------------------------------------------------------------------------------------------------------
// Field paths: "rollout.group_size", "reward.graders[1].name".

// Throws std::invalid_argument (a caller's programming error, not the user's) when `path` names no field of `root`.
void check_field_path(const Descriptor& root, std::string_view path) {
  const Descriptor* message = &root;
  std::string_view rest = path;
  while (true) {
    const std::size_t dot = rest.find('.');
    std::string_view component = rest.substr(0, dot);
    if (component.empty()) {
      throw std::invalid_argument(
          fmt::format("field path '{}': empty component; names are separated by single dots", path));
    }
    bool indexed = false;
    if (const std::size_t bracket = component.find('['); bracket != std::string_view::npos) {
      const std::string_view digits = component.substr(bracket + 1, component.size() - bracket - 2);
      int value = 0;
      const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
      if (component.back() != ']' || digits.empty() || error != std::errc{} || end != digits.data() + digits.size()) {
        throw std::invalid_argument(
            fmt::format("field path '{}': malformed index in '{}'; write name[0]", path, component));
      }
      indexed = true;
      component = component.substr(0, bracket);
    }
    if (message == nullptr) {
      throw std::invalid_argument(
          fmt::format("field path '{}': '{}' lies below a field that is not a message", path, component));
    }
    const FieldDescriptor* field = message->FindFieldByName(std::string(component));
    if (field == nullptr) {
      throw std::invalid_argument(fmt::format("field path '{}': {}", path, unknown_field_message(*message, component)));
    }
    if (indexed && !field->is_repeated()) {
      throw std::invalid_argument(
          fmt::format("field path '{}': {} is not repeated and takes no index", path, field->name()));
    }
    if (dot == std::string_view::npos) return;
    if (field->is_repeated() && !indexed) {
      throw std::invalid_argument(fmt::format("field path '{}': {} is repeated; name one element, e.g. {}[0]", path,
                                              field->name(), field->name()));
    }
    message = field->message_type();
    rest = rest.substr(dot + 1);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Source text: converts protobuf's 0-based, tab-expanded positions to "<name>:<line>:<column>", 1-based characters.

class SourceText {
 public:
  SourceText(std::string_view text, std::string name) : name_(std::move(name)) {
    std::size_t start = 0;
    while (true) {
      const std::size_t end = text.find('\n', start);
      lines_.push_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
      if (end == std::string_view::npos) break;
      start = end + 1;
    }
  }

  std::string location(int line, int tokenizer_column) const {
    return fmt::format("{}:{}:{}", name_, line + 1, character_column(line, tokenizer_column) + 1);
  }

 private:
  int character_column(int line, int tokenizer_column) const {
    if (line < 0 || static_cast<std::size_t>(line) >= lines_.size()) return tokenizer_column;
    const std::string_view text = lines_[static_cast<std::size_t>(line)];
    int expanded = 0;
    int characters = 0;
    for (const char c : text) {
      if (expanded >= tokenizer_column) break;
      expanded += c == '\t' ? kTokenizerTabWidth - expanded % kTokenizerTabWidth : 1;
      ++characters;
    }
    return characters + std::max(0, tokenizer_column - expanded);
  }

  std::string name_;
  std::vector<std::string_view> lines_;
};

// ---------------------------------------------------------------------------------------------------------------
// Parse errors. protobuf stops at the first error and phrases it for protobuf authors; the token stream around its
// position tells which message and field it was in, so the error can list the valid names and say what type fits.

struct ParseProblem {
  int line;    // 0-based, as protobuf reports
  int column;  // 0-based, tab-expanded, as protobuf reports
  std::string message;
};

class CollectProblems : public pb::io::ErrorCollector {
 public:
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    problems_.push_back({line, column, message});
  }
  const std::vector<ParseProblem>& problems() const { return problems_; }

 private:
  std::vector<ParseProblem> problems_;
};

class IgnoreProblems : public pb::io::ErrorCollector {
 public:
  void AddError(int, pb::io::ColumnNumber, const std::string&) override {}
};

struct Token {
  std::string text;
  pb::io::Tokenizer::TokenType type;
  int line;
  int column;
};

// Tokenizes as TextFormat's parser does (sh-style comments, 1.5f floats).
std::vector<Token> tokenize(std::string_view text) {
  pb::io::ArrayInputStream input(text.data(), static_cast<int>(text.size()));
  IgnoreProblems ignore;
  pb::io::Tokenizer tokenizer(&input, &ignore);
  tokenizer.set_comment_style(pb::io::Tokenizer::SH_COMMENT_STYLE);
  tokenizer.set_allow_f_after_float(true);
  std::vector<Token> tokens;
  while (tokenizer.Next()) {
    const pb::io::Tokenizer::Token& token = tokenizer.current();
    tokens.push_back({token.text, token.type, token.line, token.column});
  }
  return tokens;
}

// Index of the first token at or after (line, column); tokens.size() when the position is past the last token.
std::size_t token_index_at(const std::vector<Token>& tokens, int line, int column) {
  const auto it = std::find_if(tokens.begin(), tokens.end(), [&](const Token& token) {
    return std::pair(token.line, token.column) >= std::pair(line, column);
  });
  return static_cast<std::size_t>(it - tokens.begin());
}

// The last token at or before `at` spelled `text`, to move protobuf's position (often the token after the culprit)
// onto the culprit itself.
std::optional<std::size_t> last_token_spelled(const std::vector<Token>& tokens, std::size_t at, std::string_view text) {
  for (std::size_t i = std::min(at + 1, tokens.size()); i-- > 0;) {
    if (tokens[i].text == text) return i;
  }
  return std::nullopt;
}

struct ParseContext {
  const Descriptor* message;  // the message whose body holds the position; null inside an unknown field
  std::string path_prefix;    // "" at top level, "rollout.", "reward.graders[1]."
  std::string field_name;     // the last field name written in that body before the position
};

// Replays the nesting of `{`/`<` blocks over tokens[0, end).
ParseContext context_before(const std::vector<Token>& tokens, std::size_t end, const Descriptor& root) {
  struct Frame {
    ParseContext context;
    std::map<std::string, int> elements_seen;  // per repeated message field, for "graders[1]."
  };
  std::vector<Frame> frames{{{&root, "", ""}, {}}};
  const auto is_symbol = [&](std::size_t i, std::string_view symbol) {
    return i < tokens.size() && tokens[i].type == pb::io::Tokenizer::TYPE_SYMBOL && tokens[i].text == symbol;
  };
  for (std::size_t i = 0; i < end; ++i) {
    if ((is_symbol(i, "}") || is_symbol(i, ">")) && frames.size() > 1) {
      frames.pop_back();
      continue;
    }
    if (tokens[i].type != pb::io::Tokenizer::TYPE_IDENTIFIER) continue;
    std::size_t next = i + 1;
    const bool colon = is_symbol(next, ":");
    if (colon) ++next;
    const bool opens_block = is_symbol(next, "{") || is_symbol(next, "<");
    // An identifier followed by neither ':' nor a block is a value (an enum name, nan, true), not a field name.
    if (!colon && !opens_block) continue;
    Frame& frame = frames.back();
    frame.context.field_name = tokens[i].text;
    if (!opens_block || next >= end) continue;
    const FieldDescriptor* field =
        frame.context.message == nullptr ? nullptr : frame.context.message->FindFieldByName(tokens[i].text);
    std::string prefix = frame.context.path_prefix + tokens[i].text;
    if (field != nullptr && field->is_repeated()) prefix += fmt::format("[{}]", frame.elements_seen[tokens[i].text]++);
    const Descriptor* nested = field == nullptr ? nullptr : field->message_type();
    frames.push_back({{nested, prefix + ".", ""}, {}});
    i = next;
  }
  return frames.back().context;
}

// Text between the double quotes of protobuf's message, in order: `... "a" ... "b"` → {a, b}.
std::vector<std::string> quoted_parts(std::string_view message) {
  std::vector<std::string> parts;
  std::size_t start = message.find('"');
  while (start != std::string_view::npos) {
    const std::size_t end = message.find('"', start + 1);
    if (end == std::string_view::npos) break;
    parts.emplace_back(message.substr(start + 1, end - start - 1));
    start = message.find('"', end + 1);
  }
  return parts;
}

// Rewrites one protobuf parse error; unrecognised messages pass through at protobuf's position.
ParseProblem explain(const ParseProblem& raw, const std::vector<Token>& tokens, const Descriptor& root) {
  const std::string_view message = raw.message;
  const std::size_t at = token_index_at(tokens, raw.line, raw.column);
  const auto at_token = [&](std::size_t index, std::string text) {
    return ParseProblem{tokens[index].line, tokens[index].column, std::move(text)};
  };
  const std::vector<std::string> quoted = quoted_parts(message);

  if (message.starts_with("Message type \"") && quoted.size() == 2) {
    const Descriptor* type = root.file()->pool()->FindMessageTypeByName(quoted[0]);
    if (type == nullptr) return raw;
    const std::string text = unknown_field_message(*type, quoted[1]);
    const auto name = last_token_spelled(tokens, at, quoted[1]);
    return name ? at_token(*name, text) : ParseProblem{raw.line, raw.column, text};
  }

  const ParseContext context = context_before(tokens, at, root);
  const FieldDescriptor* field =
      context.message == nullptr ? nullptr : context.message->FindFieldByName(context.field_name);
  const std::string path = context.path_prefix + context.field_name;

  if (message.starts_with("Unknown enumeration value of \"") && quoted.size() == 2 && field != nullptr &&
      field->enum_type() != nullptr) {
    const std::string text = fmt::format("{}: {}", path, unknown_enum_message(*field->enum_type(), quoted[0]));
    const auto value = last_token_spelled(tokens, at, quoted[0]);
    return value ? at_token(*value, text) : ParseProblem{raw.line, raw.column, text};
  }
  if (message.starts_with("Non-repeated field \"") && quoted.size() == 1) {
    const std::string text =
        fmt::format("{}{}: set more than once; it is not repeated and takes one value (keep one of them)",
                    context.path_prefix, quoted[0]);
    const auto name = last_token_spelled(tokens, at, quoted[0]);
    return name ? at_token(*name, text) : ParseProblem{raw.line, raw.column, text};
  }
  if (at >= tokens.size()) {
    if (!message.starts_with("Expected") || context.path_prefix.empty()) return raw;
    const std::string block = context.path_prefix.substr(0, context.path_prefix.size() - 1);
    return {raw.line, raw.column, fmt::format("the text ends inside '{} {{ ... }}'; close the block with '}}'", block)};
  }
  if (message.starts_with("Expected identifier, got:") && context.message != nullptr) {
    const std::string where =
        context.path_prefix.empty()
            ? std::string("at top level")
            : fmt::format("inside {}", context.path_prefix.substr(0, context.path_prefix.size() - 1));
    return {raw.line, raw.column,
            fmt::format("expected a field name of {} {}, got '{}'{}; valid fields: {}", context.message->name(), where,
                        tokens[at].text, tokens[at].text == "}" ? " (one '}' too many?)" : "",
                        field_names(*context.message))};
  }
  if (message.starts_with("Expected \":\", found") && tokens[at].text != "{" && tokens[at].text != "<" && at > 0 &&
      tokens[at - 1].type == pb::io::Tokenizer::TYPE_IDENTIFIER) {
    return {raw.line, raw.column,
            fmt::format("{}{}: expected ':' between the field name and its value, got {}", context.path_prefix,
                        tokens[at - 1].text, tokens[at].text)};
  }
  if (field == nullptr) return raw;

  if (message.starts_with("Expected \":\", found")) {
    return {raw.line, raw.column,
            fmt::format("{}: is a single value, not a message; write '{}: <value>' with {}", path, field->name(),
                        expected_value(*field))};
  }
  if (message.starts_with("Expected \"{\", found") && field->message_type() != nullptr) {
    return {raw.line, raw.column,
            fmt::format("{}: is a message ({}), not a single value; write '{} {{ ... }}' with fields: {}", path,
                        field->message_type()->name(), field->name(), field_names(*field->message_type()))};
  }
  // The remaining rewrites are about a value: it must follow ':' (or '[' / ',' in a list); a leading '-' is a token
  // of its own, and protobuf points at either the sign or the digits.
  std::size_t value_start = at;
  if (value_start > 0 && tokens[value_start - 1].text == "-") --value_start;
  const std::string before = value_start > 0 ? tokens[value_start - 1].text : std::string();
  if (before != ":" && before != "[" && before != ",") return raw;
  std::string got = tokens[value_start].text;
  if (got == "-" && value_start + 1 < tokens.size()) got += tokens[value_start + 1].text;
  const ParseProblem at_value = at_token(value_start, "");
  if (message.starts_with("Expected ") || message.starts_with("Invalid value for boolean field")) {
    return {at_value.line, at_value.column, fmt::format("{}: expected {}, got {}", path, expected_value(*field), got)};
  }
  if (message.starts_with("Integer out of range")) {
    return {
        at_value.line, at_value.column,
        fmt::format("{}: {} does not fit in {}; expected {}", path, got, field->type_name(), expected_value(*field))};
  }
  return raw;
}

// Field path → "<file>:<line>:<column>" for every value the file set, from protobuf's parse-location tree.
void record_locations(const Message& message, const pb::TextFormat::ParseInfoTree& tree, const std::string& prefix,
                      const SourceText& source, Locations& locations) {
  const Reflection& reflection = *message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection.ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    const std::string path = prefix + field->name();
    const bool repeated = field->is_repeated();
    const int count = repeated ? reflection.FieldSize(message, field) : 1;
    for (int i = 0; i < count; ++i) {
      const int index = repeated ? i : -1;
      const std::string element_path = repeated ? fmt::format("{}[{}]", path, i) : path;
      const pb::TextFormat::ParseLocation where = tree.GetLocation(field, index);
      if (where.line >= 0) {
        locations[element_path] = source.location(where.line, where.column);
        if (repeated && i == 0) locations[path] = locations[element_path];
      }
      if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) continue;
      const pb::TextFormat::ParseInfoTree* nested = tree.GetTreeForNested(field, index);
      if (nested == nullptr) continue;
      const Message& child =
          repeated ? reflection.GetRepeatedMessage(message, field, i) : reflection.GetMessage(message, field);
      record_locations(child, *nested, element_path + ".", source, locations);
    }
  }
}

void parse_text(std::string_view text, const SourceText& source, RunConfig& config, Locations& locations) {
  CollectProblems problems;
  pb::TextFormat::ParseInfoTree tree;
  pb::TextFormat::Parser parser;
  parser.RecordErrorsTo(&problems);
  parser.WriteLocationsTo(&tree);
  pb::io::ArrayInputStream input(text.data(), static_cast<int>(text.size()));
  if (!parser.Parse(&input, &config) || !problems.problems().empty()) {
    const std::vector<Token> tokens = tokenize(text);
    std::vector<std::string> lines;
    for (const ParseProblem& raw : problems.problems()) {
      const ParseProblem problem = explain(raw, tokens, *RunConfig::descriptor());
      lines.push_back(fmt::format("{}: {}", source.location(problem.line, problem.column), problem.message));
    }
    if (lines.empty())
      lines.push_back(fmt::format("{}: cannot parse as a RunConfig text proto",
                                  source.location(/*line=*/0, /*tokenizer_column=*/0)));
    throw ConfigError(join(lines, "\n"));
  }
  record_locations(config, tree, "", source, locations);
}

// ---------------------------------------------------------------------------------------------------------------
// --set path=value.

std::string_view trim(std::string_view text) {
  const auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!text.empty() && space(text.front())) text.remove_prefix(1);
  while (!text.empty() && space(text.back())) text.remove_suffix(1);
  return text;
}

template <typename T>
T parse_number(std::string_view text, const FieldDescriptor& field, const std::string& path, const std::string& where) {
  T value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error == std::errc::result_out_of_range) {
    throw ConfigError(fmt::format("{}: {} does not fit in {} for {}; expected {}", where, text, field.type_name(), path,
                                  expected_value(field)));
  }
  if (error != std::errc{} || end != text.data() + text.size()) {
    throw ConfigError(fmt::format("{}: expected {} for {}, got '{}'", where, expected_value(field), path, text));
  }
  return value;
}

// Sets the scalar `field` of `message` from the text after '=': numbers in decimal, bools as true/false/1/0, enums
// by name in any case, strings verbatim or in quotes (with text-format escapes).
void set_from_text(Message& message, const FieldDescriptor& field, std::string_view raw_value, const std::string& path,
                   const std::string& where) {
  const Reflection& reflection = *message.GetReflection();
  const std::string_view value = trim(raw_value);
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      reflection.SetInt32(&message, &field, parse_number<std::int32_t>(value, field, path, where));
      return;
    case FieldDescriptor::CPPTYPE_INT64:
      reflection.SetInt64(&message, &field, parse_number<std::int64_t>(value, field, path, where));
      return;
    case FieldDescriptor::CPPTYPE_UINT32:
      reflection.SetUInt32(&message, &field, parse_number<std::uint32_t>(value, field, path, where));
      return;
    case FieldDescriptor::CPPTYPE_UINT64:
      reflection.SetUInt64(&message, &field, parse_number<std::uint64_t>(value, field, path, where));
      return;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      reflection.SetDouble(&message, &field, parse_number<double>(value, field, path, where));
      return;
    case FieldDescriptor::CPPTYPE_FLOAT:
      reflection.SetFloat(&message, &field, parse_number<float>(value, field, path, where));
      return;
    case FieldDescriptor::CPPTYPE_BOOL: {
      const std::string lowered = lowercase(value);
      if (lowered != "true" && lowered != "false" && lowered != "1" && lowered != "0") {
        throw ConfigError(fmt::format("{}: expected true, false, 1 or 0 for {}, got '{}'", where, path, value));
      }
      reflection.SetBool(&message, &field, lowered == "true" || lowered == "1");
      return;
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      const pb::EnumDescriptor& type = *field.enum_type();
      for (int i = 0; i < type.value_count(); ++i) {
        if (lowercase(type.value(i)->name()) == lowercase(value)) {
          reflection.SetEnum(&message, &field, type.value(i));
          return;
        }
      }
      throw ConfigError(fmt::format("{}: {}: {}", where, path, unknown_enum_message(type, value)));
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      const bool quoted = raw_value.size() >= 2 && (raw_value.front() == '"' || raw_value.front() == '\'') &&
                          raw_value.back() == raw_value.front();
      if (!quoted) {
        reflection.SetString(&message, &field, std::string(raw_value));
        return;
      }
      CollectProblems problems;
      pb::TextFormat::Parser parser;
      parser.RecordErrorsTo(&problems);
      // The tokenizer reports some defects (an unknown escape) without failing the parse.
      if (!parser.ParseFieldValueFromString(std::string(raw_value), &field, &message) || !problems.problems().empty()) {
        std::string reason = problems.problems().empty() ? "" : ": " + problems.problems().front().message;
        if (reason.ends_with('.')) reason.pop_back();
        throw ConfigError(
            fmt::format("{}: malformed quoted string for {}{}; leave the quotes off to take the text "
                        "verbatim",
                        where, path, reason));
      }
      return;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  throw ConfigError(fmt::format("{}: {} is a message and has no single value", where, path));
}

void apply_override(const std::string& assignment, RunConfig& config, Locations& locations) {
  const std::string where = fmt::format("--set {}", assignment);
  const std::size_t equals = assignment.find('=');
  if (equals == std::string::npos) {
    throw ConfigError(fmt::format("{}: no '=' in the override; write path=value, e.g. rollout.group_size=8", where));
  }
  const std::string path(trim(std::string_view(assignment).substr(0, equals)));
  if (path.empty()) {
    throw ConfigError(
        fmt::format("{}: the field path before '=' is empty; write path=value, e.g. "
                    "rollout.group_size=8",
                    where));
  }
  Message* message = &config;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = path.find('.', start);
    const std::string component = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const std::string so_far = path.substr(0, dot);
    if (component.empty()) {
      throw ConfigError(
          fmt::format("{}: empty component in field path '{}'; names are separated by single dots, "
                      "e.g. rollout.group_size",
                      where, path));
    }
    const Descriptor& type = *message->GetDescriptor();
    const FieldDescriptor* field = type.FindFieldByName(component);
    if (field == nullptr) throw ConfigError(fmt::format("{}: {}", where, unknown_field_message(type, component)));
    if (field->is_repeated()) {
      throw ConfigError(
          fmt::format("{}: {} is a repeated field; --set sets single values, so write the list in the "
                      "config file",
                      where, so_far));
    }
    const bool last = dot == std::string::npos;
    if (last && field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      const Descriptor& nested = *field->message_type();
      const FieldDescriptor* example = nullptr;
      for (int i = 0; i < nested.field_count() && example == nullptr; ++i) {
        if (!nested.field(i)->is_repeated()) example = nested.field(i);
      }
      const std::string how = example == nullptr
                                  ? std::string("it holds only repeated fields, so write it in the config file")
                                  : fmt::format("set one of its fields, e.g. {}.{}=...; valid fields: {}", so_far,
                                                example->name(), field_names(nested));
      throw ConfigError(
          fmt::format("{}: {} is a message ({}), not a single value; {}", where, so_far, nested.name(), how));
    }
    if (last) {
      set_from_text(*message, *field, std::string_view(assignment).substr(equals + 1), path, where);
      locations[path] = where;
      return;
    }
    if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
      throw ConfigError(fmt::format("{}: {} is a single value ({}), not a message; nothing lies below it", where,
                                    so_far, field->type_name()));
    }
    message = message->GetReflection()->MutableMessage(message, field);
    start = dot + 1;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Defaults and validation.

// Sets every unset singular field to its schema default, recursively, including inside repeated messages.
void resolve_defaults(Message& message) {
  const Reflection& reflection = *message.GetReflection();
  const Descriptor& type = *message.GetDescriptor();
  for (int i = 0; i < type.field_count(); ++i) {
    const FieldDescriptor& field = *type.field(i);
    if (field.is_repeated()) {
      if (field.cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) continue;
      for (int j = 0; j < reflection.FieldSize(message, &field); ++j) {
        resolve_defaults(*reflection.MutableRepeatedMessage(&message, &field, j));
      }
      continue;
    }
    if (field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      resolve_defaults(*reflection.MutableMessage(&message, &field));
      continue;
    }
    if (reflection.HasField(message, &field)) continue;
    switch (field.cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        reflection.SetInt32(&message, &field, field.default_value_int32());
        break;
      case FieldDescriptor::CPPTYPE_INT64:
        reflection.SetInt64(&message, &field, field.default_value_int64());
        break;
      case FieldDescriptor::CPPTYPE_UINT32:
        reflection.SetUInt32(&message, &field, field.default_value_uint32());
        break;
      case FieldDescriptor::CPPTYPE_UINT64:
        reflection.SetUInt64(&message, &field, field.default_value_uint64());
        break;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        reflection.SetDouble(&message, &field, field.default_value_double());
        break;
      case FieldDescriptor::CPPTYPE_FLOAT:
        reflection.SetFloat(&message, &field, field.default_value_float());
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        reflection.SetBool(&message, &field, field.default_value_bool());
        break;
      case FieldDescriptor::CPPTYPE_ENUM:
        reflection.SetEnum(&message, &field, field.default_value_enum());
        break;
      case FieldDescriptor::CPPTYPE_STRING:
        reflection.SetString(&message, &field, field.default_value_string());
        break;
      case FieldDescriptor::CPPTYPE_MESSAGE:
        break;
    }
  }
}

// The R1-Zero reward (DeepSeek-R1 report): accuracy plus a smaller format reward. run_config.proto documents this
// as the meaning of an empty reward.graders; it is applied here and nowhere else.
void resolve_default_graders(RewardConfig& reward) {
  if (reward.graders_size() > 0) return;
  GraderWeight* accuracy = reward.add_graders();
  accuracy->set_name("accuracy");
  accuracy->set_weight(1.0);
  GraderWeight* format = reward.add_graders();
  format->set_name("format");
  format->set_weight(0.5);
}

struct NumericValue {
  double value;
  std::string text;
};

std::optional<NumericValue> numeric_value(const Message& message, const FieldDescriptor& field, int index) {
  const Reflection& reflection = *message.GetReflection();
  const bool repeated = field.is_repeated();
  const auto number = [](auto value) { return NumericValue{static_cast<double>(value), fmt::format("{}", value)}; };
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return number(repeated ? reflection.GetRepeatedInt32(message, &field, index)
                             : reflection.GetInt32(message, &field));
    case FieldDescriptor::CPPTYPE_INT64:
      return number(repeated ? reflection.GetRepeatedInt64(message, &field, index)
                             : reflection.GetInt64(message, &field));
    case FieldDescriptor::CPPTYPE_UINT32:
      return number(repeated ? reflection.GetRepeatedUInt32(message, &field, index)
                             : reflection.GetUInt32(message, &field));
    case FieldDescriptor::CPPTYPE_UINT64:
      return number(repeated ? reflection.GetRepeatedUInt64(message, &field, index)
                             : reflection.GetUInt64(message, &field));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return number(repeated ? reflection.GetRepeatedDouble(message, &field, index)
                             : reflection.GetDouble(message, &field));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return number(repeated ? reflection.GetRepeatedFloat(message, &field, index)
                             : reflection.GetFloat(message, &field));
    default:
      return std::nullopt;
  }
}

// Every set numeric field against its (valid_min)/(valid_max); floating fields must also be finite.
void check_ranges(const LoadedConfig& loaded, const Message& message, const std::string& prefix,
                  std::vector<std::string>& problems) {
  const Reflection& reflection = *message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection.ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    const bool repeated = field->is_repeated();
    const int count = repeated ? reflection.FieldSize(message, field) : 1;
    for (int i = 0; i < count; ++i) {
      const std::string path = repeated ? fmt::format("{}{}[{}]", prefix, field->name(), i) : prefix + field->name();
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        check_ranges(
            loaded, repeated ? reflection.GetRepeatedMessage(message, field, i) : reflection.GetMessage(message, field),
            path + ".", problems);
        continue;
      }
      const std::optional<NumericValue> number = numeric_value(message, *field, repeated ? i : -1);
      if (!number) continue;
      const Range range = range_of(*field);
      const std::string valid = range.min || range.max ? fmt::format("; valid range {}", range_text(*field)) : "";
      if (is_floating_field(*field) && !std::isfinite(number->value)) {
        problems.push_back(
            fmt::format("{}: {} = {} is not a finite number{}", loaded.location(path), path, number->text, valid));
      } else if ((range.min && number->value < *range.min) || (range.max && number->value > *range.max)) {
        problems.push_back(
            fmt::format("{}: {} = {} is out of range{}", loaded.location(path), path, number->text, valid));
      }
    }
  }
}

void check_arithmetic_ops(const LoadedConfig& loaded) {
  const ArithmeticTaskConfig& arithmetic = loaded.config.task().arithmetic();
  if (arithmetic.min_ops() <= arithmetic.max_ops()) return;
  // Point at whichever bound the user wrote; when both are written, at min_ops.
  const bool min_is_default = loaded.location("task.arithmetic.min_ops") == kDefaultLocation;
  const std::string blamed = min_is_default ? "task.arithmetic.max_ops" : "task.arithmetic.min_ops";
  const std::string other = min_is_default ? "task.arithmetic.min_ops" : "task.arithmetic.max_ops";
  const bool blame_min = blamed == "task.arithmetic.min_ops";
  fail_at(loaded, blamed,
          fmt::format("{} is {} {} = {} (from {}); min_ops must be <= max_ops",
                      blame_min ? arithmetic.min_ops() : arithmetic.max_ops(), blame_min ? "greater than" : "less than",
                      other, blame_min ? arithmetic.max_ops() : arithmetic.min_ops(), loaded.location(other)));
}

void check_grader_names(const LoadedConfig& loaded) {
  const RewardConfig& reward = loaded.config.reward();
  for (int i = 0; i < reward.graders_size(); ++i) {
    if (!reward.graders(i).name().empty()) continue;
    const std::string name_path = fmt::format("reward.graders[{}].name", i);
    // An unset name has no location of its own; the grader block it belongs to does.
    const std::string path =
        loaded.location(name_path) == kDefaultLocation ? fmt::format("reward.graders[{}]", i) : name_path;
    fail_at(loaded, path, "a grader needs a non-empty name: a registered grader such as \"accuracy\" or \"format\"");
  }
}

// Every check, so that one run of the loader reports every problem; throws one ConfigError with a line each.
void validate(const LoadedConfig& loaded) {
  std::vector<std::string> problems;
  check_ranges(loaded, loaded.config, "", problems);
  const auto collect = [&](const auto& check) {
    try {
      check();
    } catch (const ConfigError& error) {
      problems.emplace_back(error.what());
    }
  };
  collect([&] { check_arithmetic_ops(loaded); });
  collect([&] { check_grader_names(loaded); });
  collect([&] {
    const std::vector<std::string> devices = {"auto", "cpu", "cuda"};
    check_choice(loaded, "runtime.device", loaded.config.runtime().device(), devices);
  });
  if (!problems.empty()) throw ConfigError(join(problems, "\n"));
}

}  // namespace

std::string LoadedConfig::location(std::string_view field_path) const {
  check_field_path(*RunConfig::descriptor(), field_path);
  const auto it = locations_.find(field_path);
  return it == locations_.end() ? std::string(kDefaultLocation) : it->second;
}

LoadedConfig load_config_text(std::string_view text, std::string source_name, std::span<const std::string> overrides) {
  LoadedConfig loaded;
  const SourceText source(text, std::move(source_name));
  parse_text(text, source, loaded.config, loaded.locations_);
  for (const std::string& assignment : overrides) apply_override(assignment, loaded.config, loaded.locations_);
  resolve_default_graders(*loaded.config.mutable_reward());
  resolve_defaults(loaded.config);
  validate(loaded);
  return loaded;
}

LoadedConfig load_config_file(const std::filesystem::path& file, std::span<const std::string> overrides) {
  std::error_code status_error;
  if (std::filesystem::is_directory(file, status_error)) {
    throw ConfigError(
        fmt::format("cannot read config file '{}': it is a directory; pass a .textproto file", file.string()));
  }
  errno = 0;
  std::ifstream input(file, std::ios::binary);
  if (!input) {
    throw ConfigError(
        fmt::format("cannot open config file '{}': {}", file.string(), std::generic_category().message(errno)));
  }
  std::ostringstream text;
  text << input.rdbuf();
  if (input.bad()) {
    throw ConfigError(
        fmt::format("cannot read config file '{}': {}", file.string(), std::generic_category().message(errno)));
  }
  return load_config_text(text.str(), file.string(), overrides);
}

LoadedConfig default_config(std::span<const std::string> overrides) {
  return load_config_text("", std::string(kEmbeddedSourceName), overrides);
}

std::string to_textproto(const google::protobuf::Message& message) {
  pb::TextFormat::Printer printer;
  std::string text;
  if (!printer.PrintToString(message, &text)) {
    throw ConfigError(fmt::format("cannot print a {} as text format", message.GetDescriptor()->full_name()));
  }
  return text;
}

void fail_at(const LoadedConfig& loaded, std::string_view field_path, std::string_view message) {
  throw ConfigError(fmt::format("{}: {}: {}", loaded.location(field_path), field_path, message));
}

void check_choice(const LoadedConfig& loaded, std::string_view field_path, std::string_view value,
                  std::span<const std::string> valid) {
  if (std::find(valid.begin(), valid.end(), value) != valid.end()) return;
  std::vector<std::string> choices(valid.begin(), valid.end());
  fail_at(loaded, field_path, fmt::format("'{}' is not a valid choice; valid choices: {}", value, join(choices, ", ")));
}

}  // namespace grpo::config
