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
  if (!json.contains(key)) fail(source, fmt::format("missing required field '{}'", key));
  const auto& value = json.at(key);
  if (!value.is_number_integer()) fail(source, fmt::format("field '{}' must be an integer, got {}", key, value.dump()));
  return value.get<std::int64_t>();
}

std::int64_t optional_int(const nlohmann::json& json, const char* key, std::int64_t fallback, const std::filesystem::path& source) {
  if (!json.contains(key) || json.at(key).is_null()) return fallback;
  const auto& value = json.at(key);
  if (!value.is_number_integer()) fail(source, fmt::format("field '{}' must be an integer, got {}", key, value.dump()));
  return value.get<std::int64_t>();
}

double optional_number(const nlohmann::json& json, const char* key, double fallback, const std::filesystem::path& source) {
  if (!json.contains(key) || json.at(key).is_null()) return fallback;
  const auto& value = json.at(key);
  if (!value.is_number()) fail(source, fmt::format("field '{}' must be a number, got {}", key, value.dump()));
  return value.get<double>();
}

bool optional_bool(const nlohmann::json& json, const char* key, bool fallback, const std::filesystem::path& source) {
  if (!json.contains(key) || json.at(key).is_null()) return fallback;
  const auto& value = json.at(key);
  if (!value.is_boolean()) fail(source, fmt::format("field '{}' must be true or false, got {}", key, value.dump()));
  return value.get<bool>();
}

// eos_token_id is an integer or, in Llama 3 and Qwen3 configs, a list of them.
std::vector<std::int64_t> read_token_ids(const nlohmann::json& json, const char* key, const std::filesystem::path& source) {
  if (!json.contains(key) || json.at(key).is_null()) return {};
  const auto& value = json.at(key);
  if (value.is_number_integer()) return {value.get<std::int64_t>()};
  std::vector<std::int64_t> ids;
  if (value.is_array()) {
    for (const auto& id : value) {
      if (!id.is_number_integer()) fail(source, fmt::format("field '{}' must be an integer or a list of integers, got {}", key, value.dump()));
      ids.push_back(id.get<std::int64_t>());
    }
    return ids;
  }
  fail(source, fmt::format("field '{}' must be an integer or a list of integers, got {}", key, value.dump()));
}

// transformers < 5 writes "rope_theta" and "rope_scaling" (null or an object with "type"/"rope_type");
// transformers ≥ 5 writes "rope_parameters" holding rope_theta and the scaling fields. Both are read.
void read_rope(const nlohmann::json& json, const std::filesystem::path& source, ModelConfig& config) {
  config.rope_theta = optional_number(json, "rope_theta", 10000.0, source);
  nlohmann::json scaling = json.value("rope_scaling", nlohmann::json());
  if (const auto parameters = json.find("rope_parameters"); parameters != json.end() && !parameters->is_null()) {
    if (!parameters->is_object()) fail(source, fmt::format("rope_parameters must be an object, got {}", parameters->dump()));
    config.rope_theta = optional_number(*parameters, "rope_theta", config.rope_theta, source);
    if (scaling.is_null()) scaling = *parameters;
  }
  if (scaling.is_null()) return;
  if (!scaling.is_object()) fail(source, fmt::format("rope_scaling must be null or an object, got {}", scaling.dump()));
  if (const auto partial = optional_number(scaling, "partial_rotary_factor", 1.0, source); partial != 1.0) {
    fail(source, fmt::format("partial_rotary_factor {} is not supported; supported: 1.0", partial));
  }
  const auto type = scaling.value("rope_type", scaling.value("type", std::string("default")));
  if (type == "default") return;
  if (type != "llama3") {
    fail(source, fmt::format("rope scaling type '{}' is not supported ({}); supported: default, llama3", type, scaling.dump()));
  }
  auto& rope = config.rope_scaling;
  rope.type = RopeScaling::Type::kLlama3;
  rope.factor = optional_number(scaling, "factor", 0.0, source);
  rope.low_freq_factor = optional_number(scaling, "low_freq_factor", 0.0, source);
  rope.high_freq_factor = optional_number(scaling, "high_freq_factor", 0.0, source);
  rope.original_max_position_embeddings = optional_int(scaling, "original_max_position_embeddings", 0, source);
  if (rope.factor <= 0 || rope.low_freq_factor <= 0 || rope.high_freq_factor <= rope.low_freq_factor ||
      rope.original_max_position_embeddings <= 0) {
    fail(source, fmt::format("llama3 rope scaling needs factor > 0, 0 < low_freq_factor < high_freq_factor and "
                             "original_max_position_embeddings > 0; got {}", scaling.dump()));
  }
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
  if (const auto act = json.value("hidden_act", std::string("silu")); act != "silu") {
    fail(source, fmt::format("hidden_act '{}' is not supported; supported: silu", act));
  }
  if (const auto tp = optional_int(json, "pretraining_tp", 1, source); tp != 1) {
    fail(source, fmt::format("pretraining_tp {} is not supported; supported: 1", tp));
  }
  config.vocab_size = require_int(json, "vocab_size", source);
  config.hidden_size = require_int(json, "hidden_size", source);
  config.intermediate_size = require_int(json, "intermediate_size", source);
  config.num_hidden_layers = require_int(json, "num_hidden_layers", source);
  config.num_attention_heads = require_int(json, "num_attention_heads", source);
  config.num_key_value_heads = optional_int(json, "num_key_value_heads", config.num_attention_heads, source);
  config.head_dim = optional_int(json, "head_dim", config.num_attention_heads > 0 ? config.hidden_size / config.num_attention_heads : 0, source);
  config.max_position_embeddings = require_int(json, "max_position_embeddings", source);
  config.rms_norm_eps = optional_number(json, "rms_norm_eps", 1e-6, source);
  read_rope(json, source, config);
  // LlamaConfig, Qwen2Config and Qwen3Config all default to untied embeddings.
  config.tie_word_embeddings = optional_bool(json, "tie_word_embeddings", false, source);
  config.attention_bias = optional_bool(json, "attention_bias", false, source);
  config.bos_token_id = optional_int(json, "bos_token_id", -1, source);
  config.eos_token_ids = read_token_ids(json, "eos_token_id", source);
  config.eos_token_id = config.eos_token_ids.empty() ? -1 : config.eos_token_ids.front();
  config.pad_token_id = optional_int(json, "pad_token_id", -1, source);
  arch->read(json, source, config);
  try {
    config.validate();
  } catch (const std::invalid_argument& error) {
    fail(source, error.what());
  }
  return config;
}

}  // namespace grpo::policy
