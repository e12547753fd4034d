// --set overrides (see overrides.h).
#include "rl/config/overrides.h"

#include <fmt/format.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/text_format.h>

#include <cctype>
#include <charconv>
#include <cstdint>
#include <string_view>
#include <system_error>

#include "rl/config/field_text.h"
#include "rl/config/text_parse.h"

namespace grpo::config::internal {
namespace {

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

}  // namespace

void apply_override(const std::string& assignment, RunConfig& config, FieldLocations& locations) {
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
      // A list of strings (rollout.workers, rollout.stop_strings): each --set adds one element, and the first one
      // replaces the list the config file gave, so that the command line says the whole list.
      if (dot == std::string::npos && field->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
        const Reflection& reflection = *message->GetReflection();
        const auto previous = locations.find(path);
        if (previous == locations.end() || !previous->second.starts_with("--set ")) reflection.ClearField(message, field);
        reflection.AddString(message, field, std::string(std::string_view(assignment).substr(equals + 1)));
        locations[path] = where;
        locations[fmt::format("{}[{}]", path, reflection.FieldSize(*message, field) - 1)] = where;
        return;
      }
      throw ConfigError(
          fmt::format("{}: {} is a repeated field; --set sets single values and adds to lists of strings, so write this "
                      "list in the config file",
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

}  // namespace grpo::config::internal
