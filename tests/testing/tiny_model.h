// A tiny randomly initialised Llama-family model for tests of code that runs a policy (generation, log-probs).
// Weights are scaled up so that distributions are peaked: greedy continuations differ from prompt to prompt, and
// agreement checks are not passed by a near-uniform model by accident.
#pragma once

#include <cstdint>

#include "policy/llama_model.h"

namespace grpo::fixtures {

struct TinyModelOptions {
  std::int64_t vocab_size = 11;
  std::int64_t num_hidden_layers = 2;
  std::int64_t num_key_value_heads = 2;
  std::uint64_t seed = 5;
  double weight_scale = 20.0;
};

inline policy::LlamaForCausalLM tiny_model(const TinyModelOptions& options = {}) {
  policy::ModelConfig c;
  c.vocab_size = options.vocab_size;
  c.hidden_size = 16;
  c.intermediate_size = 32;
  c.num_hidden_layers = options.num_hidden_layers;
  c.num_attention_heads = 4;
  c.num_key_value_heads = options.num_key_value_heads;
  c.head_dim = 4;
  c.max_position_embeddings = 64;
  policy::LlamaForCausalLM model(c);
  policy::initialize_weights(model, options.seed);
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.mul_(options.weight_scale);
  return model;
}

}  // namespace grpo::fixtures
