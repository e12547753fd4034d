// Qwen2ForCausalLM (Qwen2, Qwen2.5, DeepSeek-R1-Distill-Qwen): biases on q/k/v, none on o_proj, whatever
// attention_bias says (transformers' Qwen2Attention hard-codes them). Sliding-window attention is not implemented.
#include "policy/architecture.h"

namespace grpo::policy::architectures_detail {
namespace {

void read_qwen2(const nlohmann::json& json, const std::filesystem::path& source, ModelConfig& config) {
  reject_sliding_window(json, source);
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

const Architecture kQwen2{"Qwen2ForCausalLM", "qwen2", read_qwen2, write_qwen2};

}  // namespace grpo::policy::architectures_detail
