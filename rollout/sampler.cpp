// Sampling filters, counter-based draws and sampled-token log-probs (see sampler.h).
#include "rollout/sampler.h"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace grpo::rollout {
namespace {

double effective_temperature(const SamplingParams& params) { return params.temperature > 0.0 ? params.temperature : 1.0; }

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

}  // namespace

std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t index) { return splitmix64(splitmix64(seed) ^ (index * 0xD1B54A32D192ED03ULL)); }

float uniform_draw(std::uint64_t seed, std::uint64_t counter) {
  return static_cast<float>(derive_seed(seed, counter) >> 40) * 0x1.0p-24f;
}

void validate_sampling(const SamplingParams& params) {
  auto fail = [](const std::string& what) { throw std::invalid_argument("sampling: " + what); };
  if (!(params.temperature >= 0.0) || !std::isfinite(params.temperature)) fail("temperature must be a finite number >= 0");
  if (!(params.top_p >= 0.0 && params.top_p <= 1.0)) fail("top_p must be in [0, 1]");
  if (params.top_k < 0) fail("top_k must be >= 0 (0 turns it off)");
  if (!(params.min_p >= 0.0 && params.min_p <= 1.0)) fail("min_p must be in [0, 1]");
}

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
  if (params.min_p > 0.0) {
    // transformers' MinPLogitsWarper: drop tokens below min_p times the most likely one's probability.
    const auto threshold = std::get<0>(probs.max(-1, /*keepdim=*/true)) * params.min_p;
    probs = probs.masked_fill(probs < threshold, 0.0);
    probs = probs / probs.sum(-1, /*keepdim=*/true);
  }
  return probs;
}

SampledTokens sample_tokens(const torch::Tensor& logits, const SamplingParams& params, std::span<const std::uint64_t> row_seeds,
                            std::uint64_t step) {
  TORCH_CHECK(logits.dim() == 2, "sample_tokens: logits must be [B, V], got ", logits.sizes());
  TORCH_CHECK(static_cast<std::int64_t>(row_seeds.size()) == logits.size(0), "sample_tokens: ", row_seeds.size(), " row seeds for ",
              logits.size(0), " rows");
  const auto logits32 = logits.to(torch::kFloat32);
  const auto logprobs_all = (logits32 / effective_temperature(params)).log_softmax(-1);
  torch::Tensor tokens;
  if (params.temperature <= 0.0) {
    tokens = logits32.argmax(-1);
  } else {
    // Inverse-CDF sampling with one counter-based uniform per row: the first token whose cumulative mass exceeds
    // u · total. A token of probability 0 never has cdf[i] > cdf[i − 1], so it is never drawn.
    const auto probs = sampling_distribution(logits32, params);
    const auto cdf = probs.cumsum(-1);
    const auto rows = logits.size(0);
    auto draws = torch::empty({rows, 1}, torch::kFloat32);
    auto* draw = draws.data_ptr<float>();
    for (std::int64_t b = 0; b < rows; ++b) draw[b] = uniform_draw(row_seeds[static_cast<std::size_t>(b)], step);
    const auto targets = draws * cdf.narrow(-1, cdf.size(-1) - 1, 1);
    tokens = torch::searchsorted(cdf, targets, /*out_int32=*/false, /*right=*/true).squeeze(-1);
    // u · total rounds to total only when float32 cannot tell them apart; then the last token of positive mass is meant.
    const auto past_end = tokens >= cdf.size(-1);
    if (past_end.any().item<bool>()) {
      const auto last_positive = (probs > 0).to(torch::kInt64).cumsum(-1).argmax(-1);
      tokens = torch::where(past_end, last_positive, tokens);
    }
  }
  const auto logprobs = logprobs_all.gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
  return {tokens, logprobs};
}

}  // namespace grpo::rollout
