// LlamaForCausalLM (Llama 2/3/3.1/3.2, DeepSeek-R1-Distill-Llama): attention_bias puts biases on all four attention
// projections; mlp_bias is not implemented. RoPE llama3 scaling is read by the common code.
#include <stdexcept>

#include <fmt/format.h>

#include "policy/architecture.h"

namespace grpo::policy::architectures_detail {
namespace {

void read_llama(const nlohmann::json& json, const std::filesystem::path& source, ModelConfig& config) {
  if (json.value("mlp_bias", false)) throw std::invalid_argument(fmt::format("{}: mlp_bias true is not supported", source.string()));
  config.qkv_bias = config.attention_bias;
  config.o_bias = config.attention_bias;
  config.qk_norm = false;
}

void write_llama(const ModelConfig& config, nlohmann::json& json) {
  json["attention_bias"] = config.qkv_bias;
  json["mlp_bias"] = false;
}

}  // namespace

const Architecture kLlama{"LlamaForCausalLM", "llama", read_llama, write_llama};

}  // namespace grpo::policy::architectures_detail
