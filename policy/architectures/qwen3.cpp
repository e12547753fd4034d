// Qwen3ForCausalLM (dense Qwen3): RMSNorm over each query and key head (q_norm, k_norm, weight [head_dim]) before
// RoPE; attention_bias on all four projections as in Llama; head_dim is explicit in config.json.
#include "policy/architecture.h"

namespace grpo::policy::architectures_detail {
namespace {

void read_qwen3(const nlohmann::json& json, const std::filesystem::path& source, ModelConfig& config) {
  reject_sliding_window(json, source);
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

const Architecture kQwen3{"Qwen3ForCausalLM", "qwen3", read_qwen3, write_qwen3};

}  // namespace grpo::policy::architectures_detail
