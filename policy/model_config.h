// Architecture hyper-parameters of a decoder-only model, read from and written to a Hugging Face config.json.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace grpo::policy {

// Rotary-embedding frequency scaling (config.json "rope_scaling", or "rope_parameters" in transformers ≥ 5).
// Only the types that change inv_freq in a way we implement exactly are accepted; others are an error.
struct RopeScaling {
  enum class Type { kNone, kLlama3 };
  Type type = Type::kNone;
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  std::int64_t original_max_position_embeddings = 0;
};

// The Llama / Qwen2 / Qwen3 family as Hugging Face describes it. Field names follow config.json; the flags that
// differ between architectures (biases, q/k norms) are set by the architecture's entry in policy/architecture.h.
struct ModelConfig {
  std::string architecture = "LlamaForCausalLM";
  std::int64_t vocab_size = 0;
  std::int64_t hidden_size = 0;
  std::int64_t intermediate_size = 0;
  std::int64_t num_hidden_layers = 0;
  std::int64_t num_attention_heads = 0;
  std::int64_t num_key_value_heads = 0;
  std::int64_t head_dim = 0;  // when config.json has none: the architecture's default (see Architecture)
  std::int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = true;
  bool attention_bias = false;  // config.json's field (Llama, Qwen3: all four projections; Qwen2: not read)
  bool qkv_bias = false;        // biases on q_proj, k_proj, v_proj (Qwen2 always; Llama/Qwen3 = attention_bias)
  bool o_bias = false;          // bias on o_proj (Llama/Qwen3 = attention_bias; Qwen2 never)
  bool qk_norm = false;         // per-head RMSNorm of queries and keys before RoPE (Qwen3)
  std::int64_t bos_token_id = -1;  // -1: none
  std::int64_t eos_token_id = -1;  // the first one when config.json lists several
  std::vector<std::int64_t> eos_token_ids;  // every id config.json lists as eos_token_id
  std::int64_t pad_token_id = -1;

  // Throws std::invalid_argument naming the inconsistent fields (heads not dividing, sizes not positive, ...).
  void validate() const;
  nlohmann::json to_json() const;
  // `source` names the file in error messages. Rejects architectures and settings this code does not implement
  // (unknown rope_scaling types, activations other than SiLU, sliding windows, ...) rather than approximating them,
  // a model_type that names another architecture than "architectures", and fields of the wrong type (naming the
  // field). Missing and null fields mean what they mean in transformers 5 (see NullField in architecture.h).
  static ModelConfig from_json(const nlohmann::json& json, const std::filesystem::path& source);
};

}  // namespace grpo::policy
