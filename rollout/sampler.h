// Token sampling from logits: temperature, top-k, top-p and min-p filters, and the log-probability of each sampled
// token under the policy (the "old" log-probs of the GRPO ratio).
//
// Randomness is counter-based: the draw of a row at decode step t is a pure function of (row seed, t). A sequence's
// samples therefore do not depend on which other sequences share its batch, on compaction, or on which rollout
// worker generates it: a prompt reassigned from a dead worker to another one gets the same samples.
//
// Shapes: B rows, V vocabulary.
#pragma once

#include <cstdint>
#include <span>

#include <torch/torch.h>

namespace grpo::rollout {

struct SamplingParams {
  double temperature = 1.0;  // 0 = greedy (argmax)
  double top_p = 1.0;        // 1 = off
  std::int64_t top_k = 0;    // 0 = off
  double min_p = 0.0;        // 0 = off; keeps tokens with p ≥ min_p · p_max (after temperature, as transformers)
};

struct SampledTokens {
  torch::Tensor tokens;    // [B] int64
  torch::Tensor logprobs;  // [B] float32: log softmax(logits / τ) at the token, τ = temperature (1 when greedy)
};

// A uniform draw in [0, 1) with 24 random bits (exactly representable in float32), from splitmix64 of
// (seed, counter): the same on every machine and for every batch layout.
float uniform_draw(std::uint64_t seed, std::uint64_t counter);

// The seed of one stream derived from a parent seed and an index (splitmix64 mixing), e.g. a prompt's seed from
// the request's, a sample's from its prompt's.
std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t index);

// Draws one token per row. row_seeds has B entries; `step` is the decode step (the counter of every row's stream).
// The log-probs are those of the policy π(·)/τ before the top-k/top-p/min-p filters, which is what the trainer
// recomputes with teacher forcing (TRL and verl scale logits by the temperature the same way); filters only decide
// which tokens may be drawn.
SampledTokens sample_tokens(const torch::Tensor& logits, const SamplingParams& params, std::span<const std::uint64_t> row_seeds,
                            std::uint64_t step);

// The filtered, temperature-scaled distribution the sampler draws from: [B, V] probabilities (rows sum to 1).
// Filters apply in transformers' order: temperature, top-k, top-p, min-p.
torch::Tensor sampling_distribution(const torch::Tensor& logits, const SamplingParams& params);

namespace detail {
// The two ways sample_tokens draws, exposed so that tests hold them to each other: through the filtered
// distribution's cumulative sums (any filters), and the fused path without filters.
bool filters_active(const SamplingParams& params, std::int64_t vocab);
SampledTokens sample_from_distribution(const torch::Tensor& logits32, const SamplingParams& params, std::span<const std::uint64_t> row_seeds,
                                       std::uint64_t step);
SampledTokens sample_unfiltered(const torch::Tensor& logits32, double temperature, std::span<const std::uint64_t> row_seeds, std::uint64_t step);
}  // namespace detail

// Throws std::invalid_argument naming the field when a parameter is out of range (negative temperature, top_p
// outside [0, 1], negative top_k, min_p outside [0, 1], or a NaN).
void validate_sampling(const SamplingParams& params);

}  // namespace grpo::rollout
