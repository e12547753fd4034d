// Sampling filters, counter-based draws and sampled-token log-probs (see sampler.h).
#include "rollout/sampler.h"

#include <algorithm>
#include <cmath>
#include <ATen/Parallel.h>
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

namespace detail {

bool filters_active(const SamplingParams& params, std::int64_t vocab) {
  return (params.top_k > 0 && params.top_k < vocab) || params.top_p < 1.0 || params.min_p > 0.0;
}

SampledTokens sample_from_distribution(const torch::Tensor& logits32, const SamplingParams& params, std::span<const std::uint64_t> row_seeds,
                                       std::uint64_t step) {
  // Inverse-CDF sampling with one counter-based uniform per row: the first token whose cumulative mass exceeds
  // u · total. A token of probability 0 never has cdf[i] > cdf[i − 1], so it is never drawn.
  const auto probs = sampling_distribution(logits32, params);
  const auto cdf = probs.cumsum(-1);
  const auto rows = logits32.size(0);
  auto draws = torch::empty({rows, 1}, torch::kFloat32);
  auto* draw = draws.data_ptr<float>();
  for (std::int64_t b = 0; b < rows; ++b) draw[b] = uniform_draw(row_seeds[static_cast<std::size_t>(b)], step);
  const auto targets = draws * cdf.narrow(-1, cdf.size(-1) - 1, 1);
  auto tokens = torch::searchsorted(cdf, targets, /*out_int32=*/false, /*right=*/true).squeeze(-1);
  // u · total rounds to total only when float32 cannot tell them apart; then the last token of positive mass is meant.
  const auto past_end = tokens >= cdf.size(-1);
  if (past_end.any().item<bool>()) {
    const auto last_positive = (probs > 0).to(torch::kInt64).cumsum(-1).argmax(-1);
    tokens = torch::where(past_end, last_positive, tokens);
  }
  const auto logprobs = (logits32 / effective_temperature(params)).log_softmax(-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
  return {tokens, logprobs};
}

SampledTokens sample_unfiltered(const torch::Tensor& logits32, double temperature, std::span<const std::uint64_t> row_seeds, std::uint64_t step) {
  // The same draw as sample_from_distribution without the filters, in fewer passes over [B, V] (which at a 150k
  // vocabulary cost more than the model's small layers): e = exp((x − max) / τ) once, its row sums, then each row
  // scanned until the running sum (in double) exceeds u · Σe. The log-prob is (x_t − max) / τ − log Σe.
  const auto rows = logits32.size(0);
  const auto vocab = logits32.size(1);
  const auto max = std::get<0>(logits32.max(-1, /*keepdim=*/true));
  auto shifted = logits32 - max;
  if (temperature != 1.0) shifted.mul_(1.0 / temperature);
  const auto weights = shifted.exp().contiguous();
  const auto totals = weights.sum(-1, /*keepdim=*/false, torch::kFloat64).contiguous();
  auto tokens = torch::empty({rows}, torch::kInt64);
  auto logprobs = torch::empty({rows}, torch::kFloat32);
  const auto* w = weights.data_ptr<float>();
  const auto* total = totals.data_ptr<double>();
  const auto shifted_c = shifted.contiguous();
  const auto* z = shifted_c.data_ptr<float>();
  auto* token_out = tokens.data_ptr<std::int64_t>();
  auto* logprob_out = logprobs.data_ptr<float>();
  // Rows in chunks of at least ~32k elements: smaller ones cost more to hand to a thread than to scan.
  at::parallel_for(0, rows, std::max<std::int64_t>(1, 32768 / vocab), [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t b = begin; b < end; ++b) {
      const float* row = w + b * vocab;
      const double target = static_cast<double>(uniform_draw(row_seeds[static_cast<std::size_t>(b)], step)) * total[b];
      double running = 0.0;
      std::int64_t chosen = -1, last_positive = 0;
      for (std::int64_t i = 0; i < vocab; ++i) {
        if (row[i] > 0.0f) last_positive = i;
        running += static_cast<double>(row[i]);
        if (running > target) {
          chosen = i;
          break;
        }
      }
      if (chosen < 0) chosen = last_positive;  // rounding left the target at the very end
      token_out[b] = chosen;
      logprob_out[b] = static_cast<float>(static_cast<double>(z[b * vocab + chosen]) - std::log(total[b]));
    }
  });
  return {tokens, logprobs};
}

}  // namespace detail

SampledTokens sample_tokens(const torch::Tensor& logits, const SamplingParams& params, std::span<const std::uint64_t> row_seeds,
                            std::uint64_t step) {
  TORCH_CHECK(logits.dim() == 2, "sample_tokens: logits must be [B, V], got ", logits.sizes());
  TORCH_CHECK(static_cast<std::int64_t>(row_seeds.size()) == logits.size(0), "sample_tokens: ", row_seeds.size(), " row seeds for ",
              logits.size(0), " rows");
  const auto logits32 = logits.to(torch::kFloat32);
  if (params.temperature <= 0.0) {
    // Greedy: the first most likely token, with its log-prob under the untempered policy.
    const auto [best, tokens] = logits32.max(-1);
    const auto logprobs = best - logits32.logsumexp(-1);
    return {tokens, logprobs};
  }
  if (!detail::filters_active(params, logits32.size(-1))) return detail::sample_unfiltered(logits32, params.temperature, row_seeds, step);
  return detail::sample_from_distribution(logits32, params, row_seeds, step);
}

}  // namespace grpo::rollout
