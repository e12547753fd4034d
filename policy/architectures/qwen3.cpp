// Qwen3ForCausalLM (dense Qwen3): RMSNorm over each query and key head (q_norm, k_norm, weight [head_dim]) before
// RoPE; attention_bias on all four projections as in Llama; head_dim is explicit in config.json.
#include "policy/architecture.h"

namespace grpo::policy::architectures_detail {
namespace {

void read_qwen3(const nlohmann::json& json, const std::filesystem::path& source, ModelConfig& config) {
  reject_sliding_window(json, source);
  config.attention_bias = bool_field(json, "attention_bias", source, NullField::kIsError).value_or(false);
  config.qkv_bias = config.attention_bias;
  config.o_bias = config.attention_bias;
  config.qk_norm = true;
}

void write_qwen3(const ModelConfig& config, nlohmann::json& json) {
  json["attention_bias"] = config.qkv_bias;
  json["use_sliding_window"] = false;
  json["sliding_window"] = nullptr;
  json["max_window_layers"] = config.num_hidden_layers;
}

}  // namespace

// Qwen3Config (transformers 5.23): head_dim defaults to 128 whatever hidden_size / num_attention_heads is, and
// num_key_value_heads to 32 when missing (num_attention_heads when null).
const Architecture kQwen3{.name = "Qwen3ForCausalLM",
                          .model_type = "qwen3",
                          .missing_head_dim = 128,
                          .missing_num_key_value_heads = 32,
                          .null_head_dim_is_computed = false,
                          .read = read_qwen3,
                          .write = write_qwen3};

}  // namespace grpo::policy::architectures_detail
