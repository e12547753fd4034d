// Words for configuration errors: field and enum-value lists, "did you mean" suggestions, valid ranges from the
// schema's (valid_min)/(valid_max) options, and field-path checks. Internal to the config loader.
#pragma once

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace grpo::config::internal {

// The protobuf reflection names every part of the loader uses.
namespace pb = google::protobuf;
using pb::Descriptor;
using pb::FieldDescriptor;
using pb::Message;
using pb::Reflection;

std::string join(const std::vector<std::string>& parts, std::string_view separator);
std::string lowercase(std::string_view text);

// "a, b, c": the field names of `message` / the value names of `type`, in declaration order.
std::string field_names(const Descriptor& message);
std::string enum_value_names(const pb::EnumDescriptor& type);

// "unknown field 'x' in RolloutConfig; valid fields: ...; did you mean 'y'?"
std::string unknown_field_message(const Descriptor& message, std::string_view name);
std::string unknown_enum_message(const pb::EnumDescriptor& type, std::string_view value);

bool is_floating_field(const FieldDescriptor& field);

struct Range {
  std::optional<double> min;
  std::optional<double> max;
};
Range range_of(const FieldDescriptor& field);
// "[2, 1024]", "[0, inf)", or "" for a field without bounds.
std::string range_text(const FieldDescriptor& field);
// What a value of `field` looks like, for "expected ..., got ..." messages: "an integer (int32) in [2, 1024]".
std::string expected_value(const FieldDescriptor& field);

// Field paths: "rollout.group_size", "reward.graders[1].name". Throws std::invalid_argument (a caller's programming
// error, not the user's) when `path` names no field of `root`.
void check_field_path(const Descriptor& root, std::string_view path);

}  // namespace grpo::config::internal
