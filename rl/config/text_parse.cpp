// RunConfig text parsing with actionable errors (see text_parse.h).
#include "rl/config/text_parse.h"

#include <fmt/format.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "rl/config/field_text.h"

namespace grpo::config::internal {
namespace {

// protobuf's io::Tokenizer advances the column to the next multiple of 8 at a tab; editors count characters.
constexpr int kTokenizerTabWidth = 8;

// Parse errors. protobuf stops at the first error and phrases it for protobuf authors; the token stream around its
// position tells which message and field it was in, so the error can list the valid names and say what type fits.

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
                      const SourceText& source, FieldLocations& locations) {
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

}  // namespace

SourceText::SourceText(std::string_view text, std::string name) : name_(std::move(name)) {
  std::size_t start = 0;
  while (true) {
    const std::size_t end = text.find('\n', start);
    lines_.push_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
}

std::string SourceText::location(int line, int tokenizer_column) const {
  return fmt::format("{}:{}:{}", name_, line + 1, character_column(line, tokenizer_column) + 1);
}

int SourceText::character_column(int line, int tokenizer_column) const {
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

void parse_text(std::string_view text, const SourceText& source, RunConfig& config, FieldLocations& locations) {
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

}  // namespace grpo::config::internal
