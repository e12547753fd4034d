// LlamaForCausalLM (Llama 2/3/3.1/3.2, DeepSeek-R1-Distill-Llama): attention_bias puts biases on all four attention
// projections; mlp_bias is not implemented. RoPE llama3 scaling is read by the common code.
#include <stdexcept>

#include <fmt/format.h>

#include "policy/architecture.h"

namespace grpo::policy::architectures_detail {
namespace {

void read_llama(const nlohmann::json& json, const std::filesystem::path& source, ModelConfig& config) {
  // LlamaConfig types both bool: null is an error there.
  if (bool_field(json, "mlp_bias", source, NullField::kIsError).value_or(false)) {
    throw std::invalid_argument(fmt::format("{}: mlp_bias true is not supported", source.string()));
  }
  config.attention_bias = bool_field(json, "attention_bias", source, NullField::kIsError).value_or(false);
  config.qkv_bias = config.attention_bias;
  config.o_bias = config.attention_bias;
  config.qk_norm = false;
}

void write_llama(const ModelConfig& config, nlohmann::json& json) {
  json["attention_bias"] = config.qkv_bias;
  json["mlp_bias"] = false;
}

}  // namespace

// LlamaConfig: head_dim and num_key_value_heads missing or null are hidden_size / num_attention_heads and
// num_attention_heads (its __post_init__).
const Architecture kLlama{.name = "LlamaForCausalLM",
                          .model_type = "llama",
                          .missing_head_dim = 0,
                          .missing_num_key_value_heads = 0,
                          .null_head_dim_is_computed = true,
                          .read = read_llama,
                          .write = write_llama};

}  // namespace grpo::policy::architectures_detail
