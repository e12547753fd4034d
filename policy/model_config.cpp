// config.json reading and writing for the decoder family; the per-architecture differences are in
// policy/architectures/ (see architecture.h).
#include "policy/model_config.h"

#include <stdexcept>

#include <fmt/format.h>

#include "policy/architecture.h"

namespace grpo::policy {
namespace {

[[noreturn]] void fail(const std::filesystem::path& source, const std::string& what) {
  throw std::invalid_argument(fmt::format("{}: {}", source.string(), what));
}

std::int64_t require_int(const nlohmann::json& json, const char* key, const std::filesystem::path& source) {
  const auto value = int_field(json, key, source, NullField::kIsError);
  if (!value) fail(source, fmt::format("missing required field '{}'", key));
  return *value;
}

// eos_token_id is an integer or, in Llama 3 and Qwen3 configs, a list of them.
std::vector<std::int64_t> read_token_ids(const nlohmann::json& json, const char* key, const std::filesystem::path& source) {
  if (!json.contains(key) || json.at(key).is_null()) return {};
  const auto& value = json.at(key);
  if (value.is_number_integer()) return {*int_field(json, key, source, NullField::kIsMissing)};
  std::vector<std::int64_t> ids;
  if (value.is_array()) {
    for (const auto& id : value) {
      if (!id.is_number_integer() || (id.is_number_unsigned() && id.get<std::uint64_t>() > INT64_MAX)) {
        fail(source, fmt::format("field '{}' must be an integer or a list of integers, got {}", key, value.dump()));
      }
      ids.push_back(id.get<std::int64_t>());
    }
    return ids;
  }
  fail(source, fmt::format("field '{}' must be an integer or a list of integers, got {}", key, value.dump()));
}

// transformers < 5 writes "rope_theta" and "rope_scaling" (null or an object with "type"/"rope_type");
// transformers ≥ 5 writes "rope_parameters" holding rope_theta and the scaling fields. Both are read.
void read_rope(const nlohmann::json& json, const std::filesystem::path& source, ModelConfig& config) {
  // A null rope_theta is unset, to be given by rope_parameters; with neither, transformers fails on it.
  auto theta = number_field(json, "rope_theta", source, NullField::kIsMissing);
  const bool theta_is_null = json.contains("rope_theta") && json["rope_theta"].is_null();
  nlohmann::json scaling = json.value("rope_scaling", nlohmann::json());
  const char* scaling_name = "rope_scaling";
  if (const auto parameters = json.find("rope_parameters"); parameters != json.end() && !parameters->is_null()) {
    if (!parameters->is_object()) fail(source, fmt::format("rope_parameters must be an object, got {}", parameters->dump()));
    if (const auto inner = number_field(*parameters, "rope_theta", source, NullField::kIsError, "rope_parameters"))
      theta = inner;
    if (scaling.is_null()) {
      scaling = *parameters;
      scaling_name = "rope_parameters";
    }
  }
  if (!theta && theta_is_null) fail(source, "field 'rope_theta' must be a number, got null");
  config.rope_theta = theta.value_or(10000.0);
  if (scaling.is_null()) return;
  if (!scaling.is_object()) fail(source, fmt::format("rope_scaling must be null or an object, got {}", scaling.dump()));
  const auto number = [&](const char* key, double fallback) {
    return number_field(scaling, key, source, NullField::kIsMissing, scaling_name).value_or(fallback);
  };
  if (const auto partial = number("partial_rotary_factor", 1.0); partial != 1.0) {
    fail(source, fmt::format("partial_rotary_factor {} is not supported; supported: 1.0", partial));
  }
  // transformers reads rope_type, else the older spelling type; a null one fails there ("rope_type None").
  const char* type_key = scaling.contains("rope_type") ? "rope_type" : "type";
  const auto type = string_field(scaling, type_key, source, NullField::kIsError, scaling_name).value_or("default");
  if (type == "default") return;
  if (type != "llama3") {
    fail(source, fmt::format("rope scaling type '{}' is not supported ({}); supported: default, llama3", type, scaling.dump()));
  }
  auto& rope = config.rope_scaling;
  rope.type = RopeScaling::Type::kLlama3;
  rope.factor = number("factor", 0.0);
  rope.low_freq_factor = number("low_freq_factor", 0.0);
  rope.high_freq_factor = number("high_freq_factor", 0.0);
  rope.original_max_position_embeddings =
      int_field(scaling, "original_max_position_embeddings", source, NullField::kIsMissing, scaling_name).value_or(0);
  if (rope.factor <= 0 || rope.low_freq_factor <= 0 || rope.high_freq_factor <= rope.low_freq_factor ||
      rope.original_max_position_embeddings <= 0) {
    fail(source, fmt::format("llama3 rope scaling needs factor > 0, 0 < low_freq_factor < high_freq_factor and "
                             "original_max_position_embeddings > 0; got {}", scaling.dump()));
  }
}

// head_dim and num_key_value_heads as the family's transformers config resolves them (see Architecture).
void read_head_sizes(const nlohmann::json& json, const std::filesystem::path& source, const Architecture& arch,
                     ModelConfig& config) {
  const auto heads = config.num_attention_heads;
  // Null is num_attention_heads in all three config classes' __post_init__.
  const auto kv = int_field(json, "num_key_value_heads", source, NullField::kIsMissing);
  const bool kv_missing = !json.contains("num_key_value_heads");
  config.num_key_value_heads =
      kv.value_or(kv_missing && arch.missing_num_key_value_heads > 0 ? arch.missing_num_key_value_heads : heads);
  if (kv_missing && heads > 0 && config.num_key_value_heads != heads && heads % config.num_key_value_heads != 0) {
    fail(source,
         fmt::format(
             "num_key_value_heads is missing, and {} then takes {} (transformers' default), which does not divide "
             "num_attention_heads = {}: set num_key_value_heads",
             arch.name, config.num_key_value_heads, heads));
  }
  const auto computed = heads > 0 ? config.hidden_size / heads : 0;
  const auto null_head_dim = arch.null_head_dim_is_computed ? NullField::kIsMissing : NullField::kIsError;
  const auto head_dim = int_field(json, "head_dim", source, null_head_dim);
  const bool head_dim_missing = !json.contains("head_dim");
  config.head_dim = head_dim.value_or(head_dim_missing && arch.missing_head_dim > 0 ? arch.missing_head_dim : computed);
}

// config.json's model_type picks the model class in transformers (AutoModelForCausalLM), "architectures" picks it
// here: when they disagree, the two would build different models from the same weights.
void check_model_type(const nlohmann::json& json, const std::filesystem::path& source, const Architecture& arch) {
  const auto model_type = string_field(json, "model_type", source, NullField::kIsMissing);
  if (!model_type || *model_type == arch.model_type) return;
  std::string meaning;
  for (const auto& other : architectures()) {
    if (other.model_type == *model_type) meaning = fmt::format(" (which is {})", other.name);
  }
  fail(source, fmt::format("model_type '{}'{} does not match architectures [\"{}\"] (model_type '{}'); transformers "
                           "builds the model model_type names, so set the two to the same model",
                           *model_type, meaning, arch.name, arch.model_type));
}

// num_attention_heads * x must fit the int64 shapes it becomes.
bool product_fits(std::int64_t a, std::int64_t b) {
  std::int64_t product = 0;
  return !__builtin_mul_overflow(a, b, &product);
}

}  // namespace

void ModelConfig::validate() const {
  auto positive = [](std::int64_t value, const char* name) {
    if (value <= 0) throw std::invalid_argument(fmt::format("model config: {} must be positive, got {}", name, value));
  };
  positive(vocab_size, "vocab_size");
  positive(hidden_size, "hidden_size");
  positive(intermediate_size, "intermediate_size");
  positive(num_hidden_layers, "num_hidden_layers");
  positive(num_attention_heads, "num_attention_heads");
  positive(num_key_value_heads, "num_key_value_heads");
  positive(head_dim, "head_dim");
  positive(max_position_embeddings, "max_position_embeddings");
  if (num_attention_heads % num_key_value_heads != 0) {
    throw std::invalid_argument(fmt::format("model config: num_attention_heads ({}) must be a multiple of num_key_value_heads ({})",
                                            num_attention_heads, num_key_value_heads));
  }
  if (!product_fits(num_attention_heads, head_dim) || !product_fits(vocab_size, hidden_size) ||
      !product_fits(intermediate_size, hidden_size)) {
    throw std::invalid_argument(
        fmt::format("model config: sizes too large (num_attention_heads {} × head_dim {}, vocab_size {} × "
                    "hidden_size {}, intermediate_size {} overflow 64-bit shapes)",
                    num_attention_heads, head_dim, vocab_size, hidden_size, intermediate_size));
  }
  if (head_dim % 2 != 0) throw std::invalid_argument(fmt::format("model config: head_dim ({}) must be even for rotary embeddings", head_dim));
  if (!(rms_norm_eps > 0)) throw std::invalid_argument(fmt::format("model config: rms_norm_eps must be positive, got {}", rms_norm_eps));
  if (!(rope_theta > 0)) throw std::invalid_argument(fmt::format("model config: rope_theta must be positive, got {}", rope_theta));
  auto in_vocab = [&](std::int64_t id, const char* name) {
    if (id >= vocab_size) throw std::invalid_argument(fmt::format("model config: {} {} is outside the vocabulary of {}", name, id, vocab_size));
  };
  in_vocab(eos_token_id, "eos_token_id");
  in_vocab(pad_token_id, "pad_token_id");
  in_vocab(bos_token_id, "bos_token_id");
  for (const auto id : eos_token_ids) in_vocab(id, "eos_token_id");
}

nlohmann::json ModelConfig::to_json() const {
  const auto& arch = find_architecture(architecture);
  nlohmann::json json = {
      {"architectures", {architecture}},
      {"model_type", arch.model_type},
      {"vocab_size", vocab_size},
      {"hidden_size", hidden_size},
      {"intermediate_size", intermediate_size},
      {"num_hidden_layers", num_hidden_layers},
      {"num_attention_heads", num_attention_heads},
      {"num_key_value_heads", num_key_value_heads},
      {"head_dim", head_dim},
      {"max_position_embeddings", max_position_embeddings},
      {"rms_norm_eps", rms_norm_eps},
      {"hidden_act", "silu"},
      {"attention_dropout", 0.0},
      {"tie_word_embeddings", tie_word_embeddings},
      {"torch_dtype", "float32"},
      {"use_cache", true},
  };
  // Both spellings of RoPE settings, so that transformers 4.x (rope_theta, rope_scaling) and 5.x (rope_parameters)
  // read the same frequencies; either alone would silently fall back to a default in the other.
  nlohmann::json parameters = {{"rope_theta", rope_theta}, {"rope_type", "default"}};
  json["rope_theta"] = rope_theta;
  json["rope_scaling"] = nullptr;
  if (rope_scaling.type == RopeScaling::Type::kLlama3) {
    parameters = {{"rope_theta", rope_theta},
                  {"rope_type", "llama3"},
                  {"factor", rope_scaling.factor},
                  {"low_freq_factor", rope_scaling.low_freq_factor},
                  {"high_freq_factor", rope_scaling.high_freq_factor},
                  {"original_max_position_embeddings", rope_scaling.original_max_position_embeddings}};
    json["rope_scaling"] = parameters;
  }
  json["rope_parameters"] = parameters;
  if (bos_token_id >= 0) json["bos_token_id"] = bos_token_id;
  if (eos_token_ids.size() > 1) {
    json["eos_token_id"] = eos_token_ids;
  } else if (eos_token_id >= 0) {
    json["eos_token_id"] = eos_token_id;
  }
  if (pad_token_id >= 0) json["pad_token_id"] = pad_token_id;
  arch.write(*this, json);
  return json;
}

ModelConfig ModelConfig::from_json(const nlohmann::json& json, const std::filesystem::path& source) {
  if (!json.is_object()) fail(source, "expected a JSON object");
  ModelConfig config;
  const auto architectures = json.value("architectures", nlohmann::json::array());
  if (!architectures.is_array() || architectures.size() != 1 || !architectures.front().is_string()) {
    fail(source, fmt::format("'architectures' must list exactly one architecture, got {}", architectures.dump()));
  }
  config.architecture = architectures.front().get<std::string>();
  const Architecture* arch = nullptr;
  try {
    arch = &find_architecture(config.architecture);
  } catch (const std::invalid_argument& error) {
    fail(source, error.what());
  }
  check_model_type(json, source, *arch);
  if (const auto act = string_field(json, "hidden_act", source, NullField::kIsError).value_or("silu"); act != "silu") {
    fail(source, fmt::format("hidden_act '{}' is not supported; supported: silu", act));
  }
  if (const auto tp = int_field(json, "pretraining_tp", source, NullField::kIsMissing).value_or(1); tp != 1) {
    fail(source, fmt::format("pretraining_tp {} is not supported; supported: 1", tp));
  }
  config.vocab_size = require_int(json, "vocab_size", source);
  config.hidden_size = require_int(json, "hidden_size", source);
  config.intermediate_size = require_int(json, "intermediate_size", source);
  config.num_hidden_layers = require_int(json, "num_hidden_layers", source);
  config.num_attention_heads = require_int(json, "num_attention_heads", source);
  read_head_sizes(json, source, *arch, config);
  config.max_position_embeddings = require_int(json, "max_position_embeddings", source);
  config.rms_norm_eps = number_field(json, "rms_norm_eps", source, NullField::kIsError).value_or(1e-6);
  read_rope(json, source, config);
  // LlamaConfig, Qwen2Config and Qwen3Config all default to untied embeddings.
  config.tie_word_embeddings = bool_field(json, "tie_word_embeddings", source, NullField::kIsError).value_or(false);
  config.bos_token_id = int_field(json, "bos_token_id", source, NullField::kIsMissing).value_or(-1);
  config.eos_token_ids = read_token_ids(json, "eos_token_id", source);
  config.eos_token_id = config.eos_token_ids.empty() ? -1 : config.eos_token_ids.front();
  config.pad_token_id = int_field(json, "pad_token_id", source, NullField::kIsMissing).value_or(-1);
  arch->read(json, source, config);
  try {
    config.validate();
  } catch (const std::invalid_argument& error) {
    fail(source, error.what());
  }
  return config;
}

}  // namespace grpo::policy
