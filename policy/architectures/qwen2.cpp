// Qwen2ForCausalLM (Qwen2, Qwen2.5, DeepSeek-R1-Distill-Qwen): biases on q/k/v, none on o_proj, whatever
// attention_bias says (transformers' Qwen2Attention hard-codes them, and Qwen2Config has no such field, so it is
// not read). Sliding-window attention is not implemented.
#include "policy/architecture.h"

namespace grpo::policy::architectures_detail {
namespace {

void read_qwen2(const nlohmann::json& json, const std::filesystem::path& source, ModelConfig& config) {
  reject_sliding_window(json, source);
  config.attention_bias = false;
  config.qkv_bias = true;
  config.o_bias = false;
  config.qk_norm = false;
}

void write_qwen2(const ModelConfig& config, nlohmann::json& json) {
  json["use_sliding_window"] = false;
  json["sliding_window"] = nullptr;
  json["max_window_layers"] = config.num_hidden_layers;
}

}  // namespace

// Qwen2Config (transformers 5.23) declares no head_dim: Qwen2Attention takes config.json's if present, else
// hidden_size / num_attention_heads. num_key_value_heads defaults to 32 when missing, to num_attention_heads
// when null.
const Architecture kQwen2{.name = "Qwen2ForCausalLM",
                          .model_type = "qwen2",
                          .missing_head_dim = 0,
                          .missing_num_key_value_heads = 32,
                          .null_head_dim_is_computed = false,
                          .read = read_qwen2,
                          .write = write_qwen2};

}  // namespace grpo::policy::architectures_detail
