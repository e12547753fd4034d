// Token sampling from logits: temperature, top-k and top-p filters, and the log-probability of each sampled token
// under the policy (the "old" log-probs of the GRPO ratio).
//
// Shapes: B rows, V vocabulary.
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace grpo::rollout {

struct SamplingParams {
  double temperature = 1.0;  // 0 = greedy (argmax)
  double top_p = 1.0;        // 1 = off
  std::int64_t top_k = 0;    // 0 = off
};

struct SampledTokens {
  torch::Tensor tokens;    // [B] int64
  torch::Tensor logprobs;  // [B] float32: log softmax(logits / τ) at the token, τ = temperature (1 when greedy)
};

// The log-probs are those of the policy π(·)/τ before the top-k/top-p filters, which is what the trainer
// recomputes with teacher forcing (TRL and verl scale logits by the temperature the same way); filters only decide
// which tokens may be drawn.
SampledTokens sample_tokens(const torch::Tensor& logits, const SamplingParams& params, at::Generator& generator);

// The filtered, temperature-scaled distribution the sampler draws from: [B, V] probabilities (rows sum to 1).
torch::Tensor sampling_distribution(const torch::Tensor& logits, const SamplingParams& params);

}  // namespace grpo::rollout
