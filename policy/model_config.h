// Architecture hyper-parameters of a decoder-only model, read from and written to a Hugging Face config.json.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace grpo::policy {

// The Llama/Qwen2 family as Hugging Face describes it. Field names follow config.json.
struct ModelConfig {
  std::string architecture = "LlamaForCausalLM";
  std::int64_t vocab_size = 0;
  std::int64_t hidden_size = 0;
  std::int64_t intermediate_size = 0;
  std::int64_t num_hidden_layers = 0;
  std::int64_t num_attention_heads = 0;
  std::int64_t num_key_value_heads = 0;
  std::int64_t head_dim = 0;  // hidden_size / num_attention_heads unless config.json says otherwise
  std::int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = true;
  bool attention_bias = false;
  std::int64_t bos_token_id = -1;  // -1: none
  std::int64_t eos_token_id = -1;
  std::int64_t pad_token_id = -1;

  // Throws std::invalid_argument naming the inconsistent fields (heads not dividing, sizes not positive, ...).
  void validate() const;
  nlohmann::json to_json() const;
  // `source` names the file in error messages. Rejects architectures and settings this code does not implement
  // (rope_scaling, activations other than SiLU, ...) rather than approximating them.
  static ModelConfig from_json(const nlohmann::json& json, const std::filesystem::path& source);
};

}  // namespace grpo::policy
