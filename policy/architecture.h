// The registry of supported architectures, keyed by config.json's "architectures" entry. Each architecture lives in
// its own file under policy/architectures/ and says how its config.json differs from the common fields: which
// biases and norms the decoder has and which settings it must reject. The decoder itself (policy/llama_model.h)
// is shared: the three families differ only in those flags.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/model_config.h"

namespace grpo::policy {

struct Architecture {
  std::string_view name;        // config.json "architectures": "Qwen2ForCausalLM"
  std::string_view model_type;  // config.json "model_type": "qwen2"; another model_type is an error
  // What the family's transformers config class takes when config.json has no head_dim / num_key_value_heads
  // (they disagree: Qwen3Config says head_dim 128, Qwen2Config and Qwen3Config 32 KV heads). 0 means computed:
  // hidden_size / num_attention_heads, and num_attention_heads.
  std::int64_t missing_head_dim = 0;
  std::int64_t missing_num_key_value_heads = 0;
  // Whether "head_dim": null means the computed value (LlamaConfig's __post_init__) rather than an error (Qwen2's
  // and Qwen3's models fail on it in transformers).
  bool null_head_dim_is_computed = false;
  // Sets the architecture's flags on `config` (common fields already read) from `json`; throws
  // std::invalid_argument naming `source` and the field for settings that change the math and are not implemented.
  void (*read)(const nlohmann::json& json, const std::filesystem::path& source, ModelConfig& config);
  // Adds the architecture's own fields to a config.json being written.
  void (*write)(const ModelConfig& config, nlohmann::json& json);
};

// Throws std::invalid_argument listing the supported names.
const Architecture& find_architecture(std::string_view name);
std::span<const Architecture> architectures();
std::vector<std::string> architecture_names();

namespace architectures_detail {
// Defined one per file in policy/architectures/.
extern const Architecture kLlama;
extern const Architecture kQwen2;
extern const Architecture kQwen3;
// Shared by Qwen2 and Qwen3: rejects use_sliding_window and sliding layer_types, which we do not implement.
void reject_sliding_window(const nlohmann::json& json, const std::filesystem::path& source);
}  // namespace architectures_detail

// Typed config.json fields, shared by the common reader (model_config.cpp) and the architectures. What a JSON null
// means follows transformers 5: the same as a missing field for its Optional fields (rope_scaling,
// num_key_value_heads, token ids), an error for its strictly typed ones (hidden_act, rms_norm_eps,
// tie_word_embeddings, ...), which its config classes reject.
enum class NullField { kIsMissing, kIsError };
// nullopt when the field is missing (or null, with kIsMissing). A value of another type throws
// std::invalid_argument "<source>: field '<parent>.<key>' must be <type>, got <value>" (no parent: just the key).
std::optional<std::int64_t> int_field(const nlohmann::json& object, const char* key,
                                      const std::filesystem::path& source, NullField null,
                                      std::string_view parent = {});
std::optional<double> number_field(const nlohmann::json& object, const char* key, const std::filesystem::path& source,
                                   NullField null, std::string_view parent = {});
std::optional<bool> bool_field(const nlohmann::json& object, const char* key, const std::filesystem::path& source,
                               NullField null, std::string_view parent = {});
std::optional<std::string> string_field(const nlohmann::json& object, const char* key,
                                        const std::filesystem::path& source, NullField null,
                                        std::string_view parent = {});

}  // namespace grpo::policy
