// Sampling filters and sampled-token log-probs (see sampler.h).
#include "rollout/sampler.h"

namespace grpo::rollout {
namespace {

double effective_temperature(const SamplingParams& params) { return params.temperature > 0.0 ? params.temperature : 1.0; }

}  // namespace

torch::Tensor sampling_distribution(const torch::Tensor& logits, const SamplingParams& params) {
  auto scaled = logits.to(torch::kFloat32) / effective_temperature(params);
  const auto vocab = scaled.size(-1);
  if (params.top_k > 0 && params.top_k < vocab) {
    const auto kth = std::get<0>(scaled.topk(params.top_k, -1)).narrow(-1, params.top_k - 1, 1);  // [B, 1]
    scaled = scaled.masked_fill(scaled < kth, -std::numeric_limits<float>::infinity());
  }
  auto probs = scaled.softmax(-1);
  if (params.top_p < 1.0) {
    // Keep the smallest prefix of tokens (by descending probability) whose mass reaches top_p; the token that
    // crosses the threshold is kept, as in Hugging Face's TopPLogitsWarper.
    const auto [sorted, order] = probs.sort(-1, /*descending=*/true);
    const auto mass_before = sorted.cumsum(-1) - sorted;
    auto drop_sorted = mass_before >= params.top_p;
    drop_sorted.select(-1, 0).fill_(false);  // the most likely token always stays (top_p = 0 means greedy)
    const auto drop = torch::zeros_like(drop_sorted).scatter(-1, order, drop_sorted);
    probs = probs.masked_fill(drop, 0.0);
    probs = probs / probs.sum(-1, /*keepdim=*/true);
  }
  return probs;
}

SampledTokens sample_tokens(const torch::Tensor& logits, const SamplingParams& params, at::Generator& generator) {
  const auto logits32 = logits.to(torch::kFloat32);
  torch::Tensor tokens;
  if (params.temperature <= 0.0) {
    tokens = logits32.argmax(-1);
  } else {
    tokens = at::multinomial(sampling_distribution(logits32, params), /*num_samples=*/1, /*replacement=*/false, generator).squeeze(-1);
  }
  const auto logprobs = (logits32 / effective_temperature(params)).log_softmax(-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
  return {tokens, logprobs};
}

}  // namespace grpo::rollout
