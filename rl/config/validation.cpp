// Defaults and validation (see validation.h).
#include "rl/config/validation.h"

#include <fmt/format.h>
#include <google/protobuf/descriptor.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "rl/config/field_text.h"

namespace grpo::config::internal {
namespace {

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

// Each grader comes from exactly one source (registry name, plug-in, remote server), and that source is complete.
void check_grader_sources(const LoadedConfig& loaded) {
  const RewardConfig& reward = loaded.config.reward();
  for (int i = 0; i < reward.graders_size(); ++i) {
    const GraderWeight& grader = reward.graders(i);
    const std::string block = fmt::format("reward.graders[{}]", i);
    // An unset field has no location of its own; the grader block it belongs to does.
    const auto where = [&](const std::string& field) {
      const std::string path = fmt::format("{}.{}", block, field);
      return loaded.location(path) == kDefaultLocation ? block : path;
    };
    const int sources = int{!grader.name().empty()} + int{grader.has_plugin()} + int{grader.has_remote()};
    if (sources == 0) {
      fail_at(loaded, where("name"),
              "a grader needs a source: a registered name (name: \"math\"), a plug-in (plugin { path: ... }) or a "
              "remote server (remote { address: \"host:port\" grader: ... })");
    }
    if (sources > 1) {
      fail_at(loaded, block, "a grader has one source: give only one of name, plugin { ... } and remote { ... }");
    }
    if (grader.has_plugin() && grader.plugin().path().empty()) {
      fail_at(loaded, where("plugin.path"), "plugin.path must name the plug-in's shared library (.so)");
    }
    if (grader.has_remote()) {
      const std::string& address = grader.remote().address();
      const auto colon = address.rfind(':');
      if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
        fail_at(loaded, where("remote.address"),
                fmt::format("remote.address \"{}\" must be host:port, e.g. \"127.0.0.1:9000\"", address));
      }
      if (grader.remote().grader().empty()) {
        fail_at(loaded, where("remote.grader"), "remote.grader must name the grader on the server");
      }
    }
    if (grader.has_code() && grader.name() != "code") {
      fail_at(loaded, where("code"), "code { ... } settings apply only to the grader named \"code\"");
    }
    if (grader.has_format() && grader.name() != "format") {
      fail_at(loaded, where("format"), "format { ... } settings apply only to the grader named \"format\"");
    }
    if (grader.has_format()) {
      const FormatGraderConfig& tags = grader.format();
      const std::vector<std::string> all = {tags.think_open(), tags.think_close(), tags.answer_open(), tags.answer_close()};
      for (std::size_t a = 0; a < all.size(); ++a) {
        if (all[a].empty()) fail_at(loaded, where("format"), "format tags must be non-empty");
        for (std::size_t b = a + 1; b < all.size(); ++b) {
          if (all[a] == all[b]) fail_at(loaded, where("format"), fmt::format("format tag \"{}\" is used twice", all[a]));
        }
      }
    }
    if (grader.has_code() && grader.code().default_language() != "python" &&
        grader.code().default_language() != "cpp") {
      fail_at(loaded, where("code.default_language"),
              fmt::format("code.default_language \"{}\" must be \"python\" or \"cpp\"", grader.code().default_language()));
    }
  }
}

// Rollout workers: a source of the shared token for listed workers, addresses that parse, one kind of worker at a time.
void check_rollout_workers(const LoadedConfig& loaded) {
  const RolloutConfig& rollout = loaded.config.rollout();
  for (int i = 0; i < rollout.workers_size(); ++i) {
    const std::string& address = rollout.workers(i);
    const auto colon = address.rfind(':');
    const std::string port = colon == std::string::npos ? "" : address.substr(colon + 1);
    if (colon == std::string::npos || colon == 0 || port.empty() || port.find_first_not_of("0123456789") != std::string::npos ||
        port.size() > 5 || std::stoi(port) < 1 || std::stoi(port) > 65535) {
      fail_at(loaded, fmt::format("rollout.workers[{}]", i),
              fmt::format("\"{}\" must be host:port with a port in [1, 65535], e.g. \"127.0.0.1:7000\"", address));
    }
  }
  if (rollout.workers_size() > 0 && rollout.local_workers() > 0) {
    fail_at(loaded, "rollout.local_workers", "give either rollout.workers (running workers) or rollout.local_workers (started here), not both");
  }
  if (rollout.workers_size() > 0 && rollout.worker_token_file().empty()) {
    fail_at(loaded, "rollout.workers",
            "rollout.workers needs rollout.worker_token_file: the file with the shared secret the workers were started with (--token-file)");
  }
}

// GRPO settings that only make sense together.
void check_grpo(const LoadedConfig& loaded) {
  const GrpoConfig& g = loaded.config.grpo();
  if (g.dual_clip() != 0.0 && g.dual_clip() <= 1.0) {
    fail_at(loaded, "grpo.dual_clip", fmt::format("{} must be 0 (off) or above 1 (verl uses 3): it caps the loss of negative advantages at −A·c",
                                                  g.dual_clip()));
  }
  if (g.kl_placement() == KL_IN_REWARD && g.kl_beta() == 0.0) {
    fail_at(loaded, "grpo.kl_placement", "KL_IN_REWARD with kl_beta 0 does nothing; set grpo.kl_beta, e.g. 0.001");
  }
  if (g.overlong_cache() >= loaded.config.rollout().max_new_tokens()) {
    fail_at(loaded, "grpo.overlong_cache",
            fmt::format("{} must be below rollout.max_new_tokens = {}: the punishment window ends at the token budget", g.overlong_cache(),
                        loaded.config.rollout().max_new_tokens()));
  }
}

}  // namespace

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
      const bool absent_by_choice = field.options().GetExtension(keep_unset) && !reflection.HasField(message, &field);
      if (!absent_by_choice) resolve_defaults(*reflection.MutableMessage(&message, &field));
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

void resolve_default_graders(RewardConfig& reward) {
  if (reward.graders_size() > 0) return;
  GraderWeight* accuracy = reward.add_graders();
  accuracy->set_name("accuracy");
  accuracy->set_weight(1.0);
  GraderWeight* format = reward.add_graders();
  format->set_name("format");
  format->set_weight(0.5);
}

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
  collect([&] { check_grader_sources(loaded); });
  collect([&] { check_rollout_workers(loaded); });
  collect([&] { check_grpo(loaded); });
  collect([&] {
    const std::vector<std::string> devices = {"auto", "cpu", "cuda"};
    check_choice(loaded, "runtime.device", loaded.config.runtime().device(), devices);
  });
  if (!problems.empty()) throw ConfigError(join(problems, "\n"));
}

}  // namespace grpo::config::internal
