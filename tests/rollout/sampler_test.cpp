// Sampling filters on hand-computed tables, greedy decoding, temperature, seeded determinism and frequencies.
#include <gtest/gtest.h>

#include <cmath>

#include "rollout/sampler.h"

namespace grpo::rollout {
namespace {

torch::Tensor logits_of(std::vector<double> probs) { return torch::tensor(probs, torch::kFloat32).log().unsqueeze(0); }

void expect_probs(const torch::Tensor& actual, std::vector<double> expected) {
  ASSERT_EQ(actual.size(-1), static_cast<std::int64_t>(expected.size()));
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(actual[0][static_cast<std::int64_t>(i)].item<double>(), expected[i], 1e-6) << "token " << i;
  }
}

TEST(Sampler, TopKKeepsTheKMostLikelyRenormalised) {
  expect_probs(sampling_distribution(logits_of({0.2, 0.5, 0.3}), {1.0, 1.0, 2}), {0.0, 0.625, 0.375});
  expect_probs(sampling_distribution(logits_of({0.2, 0.5, 0.3}), {1.0, 1.0, 1}), {0.0, 1.0, 0.0});
  expect_probs(sampling_distribution(logits_of({0.2, 0.5, 0.3}), {1.0, 1.0, 5}), {0.2, 0.5, 0.3});  // k ≥ V: off
}

TEST(Sampler, TopPKeepsTheSmallestPrefixReachingP) {
  // Sorted: 0.5, 0.3, 0.2. Mass before each: 0, 0.5, 0.8. Kept while the mass before is < p.
  expect_probs(sampling_distribution(logits_of({0.2, 0.5, 0.3}), {1.0, 0.7, 0}), {0.0, 0.625, 0.375});
  expect_probs(sampling_distribution(logits_of({0.2, 0.5, 0.3}), {1.0, 0.5, 0}), {0.0, 1.0, 0.0});
  expect_probs(sampling_distribution(logits_of({0.2, 0.5, 0.3}), {1.0, 0.81, 0}), {0.2, 0.5, 0.3});
  expect_probs(sampling_distribution(logits_of({0.2, 0.5, 0.3}), {1.0, 0.0, 0}), {0.0, 1.0, 0.0});  // p = 0 keeps the top token
}

TEST(Sampler, TemperatureScalesLogits) {
  // softmax(log p / 2) ∝ sqrt(p).
  const std::vector<double> p = {0.1, 0.9};
  const double z = std::sqrt(0.1) + std::sqrt(0.9);
  expect_probs(sampling_distribution(logits_of(p), {2.0, 1.0, 0}), {std::sqrt(0.1) / z, std::sqrt(0.9) / z});
}

TEST(Sampler, GreedyIsArgmaxWithPolicyLogprob) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(1);
  const auto logits = torch::tensor({{1.0f, 3.0f, 2.0f}, {0.5f, -1.0f, 0.7f}});
  const auto out = sample_tokens(logits, {0.0, 1.0, 0}, generator);
  EXPECT_EQ(out.tokens[0].item<std::int64_t>(), 1);
  EXPECT_EQ(out.tokens[1].item<std::int64_t>(), 2);
  const double lse0 = std::log(std::exp(1.0) + std::exp(3.0) + std::exp(2.0));
  EXPECT_NEAR(out.logprobs[0].item<double>(), 3.0 - lse0, 1e-6);
}

TEST(Sampler, LogprobIsUnderTemperatureScaledPolicyNotFilteredDistribution) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(3);
  const auto logits = logits_of({0.2, 0.5, 0.3});
  const auto out = sample_tokens(logits, {2.0, 1.0, 1}, generator);  // top-1: always token 1
  EXPECT_EQ(out.tokens[0].item<std::int64_t>(), 1);
  const double z = std::sqrt(0.2) + std::sqrt(0.5) + std::sqrt(0.3);
  EXPECT_NEAR(out.logprobs[0].item<double>(), std::log(std::sqrt(0.5) / z), 1e-6);
}

TEST(Sampler, SeededAndMatchesFrequencies) {
  const auto logits = logits_of({0.2, 0.5, 0.3}).expand({20000, 3}).contiguous();
  auto g1 = at::make_generator<at::CPUGeneratorImpl>(42);
  auto g2 = at::make_generator<at::CPUGeneratorImpl>(42);
  const auto a = sample_tokens(logits, {1.0, 1.0, 0}, g1).tokens;
  const auto b = sample_tokens(logits, {1.0, 1.0, 0}, g2).tokens;
  EXPECT_TRUE(torch::equal(a, b));
  const auto counts = torch::bincount(a, {}, 3).to(torch::kFloat64) / 20000.0;
  // Binomial standard deviation at n = 20000 is at most 0.0036; 0.015 is over four of them.
  EXPECT_NEAR(counts[0].item<double>(), 0.2, 0.015);
  EXPECT_NEAR(counts[1].item<double>(), 0.5, 0.015);
  EXPECT_NEAR(counts[2].item<double>(), 0.3, 0.015);
}

}  // namespace
}  // namespace grpo::rollout
