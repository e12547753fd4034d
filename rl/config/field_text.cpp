// Words for configuration errors (see field_text.h).
#include "rl/config/field_text.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <system_error>

#include "rl/config/run_config.pb.h"

namespace grpo::config::internal {

namespace {

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

// Bounds of integer fields print as integers ("[2, 1024]"), others in shortest round-trip form ("[0, 1e-06]").
std::string format_bound(const FieldDescriptor& field, double bound) {
  if (is_integer_field(field) && std::floor(bound) == bound && std::abs(bound) < 1e18) {
    return fmt::format("{}", static_cast<std::int64_t>(bound));
  }
  return fmt::format("{}", bound);
}

}  // namespace

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

bool is_floating_field(const FieldDescriptor& field) {
  return field.cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE || field.cpp_type() == FieldDescriptor::CPPTYPE_FLOAT;
}

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

}  // namespace grpo::config::internal
