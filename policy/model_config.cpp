// config.json reading and writing for the Llama/Qwen2 family.
#include "policy/model_config.h"

#include <stdexcept>

#include <fmt/format.h>

namespace grpo::policy {
namespace {

std::int64_t require_int(const nlohmann::json& json, const char* key, const std::filesystem::path& source) {
  if (!json.contains(key)) {
    throw std::invalid_argument(fmt::format("{}: missing required field '{}'", source.string(), key));
  }
  const auto& value = json.at(key);
  if (!value.is_number_integer()) {
    throw std::invalid_argument(fmt::format("{}: field '{}' must be an integer, got {}", source.string(), key, value.dump()));
  }
  return value.get<std::int64_t>();
}

std::int64_t optional_int(const nlohmann::json& json, const char* key, std::int64_t fallback) {
  if (!json.contains(key) || json.at(key).is_null()) return fallback;
  const auto& value = json.at(key);
  if (value.is_array() && !value.empty() && value.front().is_number_integer()) return value.front().get<std::int64_t>();
  return value.is_number_integer() ? value.get<std::int64_t>() : fallback;
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
  for (auto [id, name] : {std::pair{eos_token_id, "eos_token_id"}, {pad_token_id, "pad_token_id"}, {bos_token_id, "bos_token_id"}}) {
    if (id >= vocab_size) throw std::invalid_argument(fmt::format("model config: {} {} is outside the vocabulary of {}", name, id, vocab_size));
  }
}

nlohmann::json ModelConfig::to_json() const {
  nlohmann::json json = {
      {"architectures", {architecture}},
      {"model_type", "llama"},
      {"vocab_size", vocab_size},
      {"hidden_size", hidden_size},
      {"intermediate_size", intermediate_size},
      {"num_hidden_layers", num_hidden_layers},
      {"num_attention_heads", num_attention_heads},
      {"num_key_value_heads", num_key_value_heads},
      {"head_dim", head_dim},
      {"max_position_embeddings", max_position_embeddings},
      {"rms_norm_eps", rms_norm_eps},
      {"rope_theta", rope_theta},
      {"rope_scaling", nullptr},
      {"hidden_act", "silu"},
      {"attention_bias", attention_bias},
      {"attention_dropout", 0.0},
      {"mlp_bias", false},
      {"tie_word_embeddings", tie_word_embeddings},
      {"torch_dtype", "float32"},
      {"use_cache", true},
  };
  if (bos_token_id >= 0) json["bos_token_id"] = bos_token_id;
  if (eos_token_id >= 0) json["eos_token_id"] = eos_token_id;
  if (pad_token_id >= 0) json["pad_token_id"] = pad_token_id;
  return json;
}

ModelConfig ModelConfig::from_json(const nlohmann::json& json, const std::filesystem::path& source) {
  if (!json.is_object()) throw std::invalid_argument(fmt::format("{}: expected a JSON object", source.string()));
  ModelConfig config;
  const auto architectures = json.value("architectures", nlohmann::json::array());
  if (!architectures.is_array() || architectures.size() != 1 || !architectures.front().is_string()) {
    throw std::invalid_argument(fmt::format("{}: 'architectures' must list exactly one architecture, got {}", source.string(), architectures.dump()));
  }
  config.architecture = architectures.front().get<std::string>();
  if (config.architecture != "LlamaForCausalLM") {
    throw std::invalid_argument(fmt::format("{}: architecture '{}' is not supported; supported: LlamaForCausalLM",
                                            source.string(), config.architecture));
  }
  if (json.contains("rope_scaling") && !json.at("rope_scaling").is_null()) {
    throw std::invalid_argument(fmt::format("{}: rope_scaling {} is not supported", source.string(), json.at("rope_scaling").dump()));
  }
  if (json.value("hidden_act", std::string("silu")) != "silu") {
    throw std::invalid_argument(fmt::format("{}: hidden_act '{}' is not supported; supported: silu", source.string(), json.value("hidden_act", std::string())));
  }
  if (json.value("mlp_bias", false)) throw std::invalid_argument(fmt::format("{}: mlp_bias true is not supported", source.string()));
  config.vocab_size = require_int(json, "vocab_size", source);
  config.hidden_size = require_int(json, "hidden_size", source);
  config.intermediate_size = require_int(json, "intermediate_size", source);
  config.num_hidden_layers = require_int(json, "num_hidden_layers", source);
  config.num_attention_heads = require_int(json, "num_attention_heads", source);
  config.num_key_value_heads = optional_int(json, "num_key_value_heads", config.num_attention_heads);
  config.head_dim = optional_int(json, "head_dim", config.num_attention_heads > 0 ? config.hidden_size / config.num_attention_heads : 0);
  config.max_position_embeddings = require_int(json, "max_position_embeddings", source);
  config.rms_norm_eps = json.value("rms_norm_eps", 1e-6);
  config.rope_theta = json.value("rope_theta", 10000.0);
  config.tie_word_embeddings = json.value("tie_word_embeddings", false);
  config.attention_bias = json.value("attention_bias", false);
  config.bos_token_id = optional_int(json, "bos_token_id", -1);
  config.eos_token_id = optional_int(json, "eos_token_id", -1);
  config.pad_token_id = optional_int(json, "pad_token_id", -1);
  try {
    config.validate();
  } catch (const std::invalid_argument& error) {
    throw std::invalid_argument(fmt::format("{}: {}", source.string(), error.what()));
  }
  return config;
}

}  // namespace grpo::policy
