// Sampling filters on hand-computed tables, greedy decoding, temperature, seeded determinism and frequencies.
#include <gtest/gtest.h>

#include <cmath>
#include <span>
#include <vector>

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

const std::vector<std::uint64_t> kTwoSeeds = {1, 2};

TEST(Sampler, GreedyIsArgmaxWithPolicyLogprob) {
  const auto logits = torch::tensor({{1.0f, 3.0f, 2.0f}, {0.5f, -1.0f, 0.7f}});
  const auto out = sample_tokens(logits, {0.0, 1.0, 0}, kTwoSeeds, 0);
  EXPECT_EQ(out.tokens[0].item<std::int64_t>(), 1);
  EXPECT_EQ(out.tokens[1].item<std::int64_t>(), 2);
  const double lse0 = std::log(std::exp(1.0) + std::exp(3.0) + std::exp(2.0));
  EXPECT_NEAR(out.logprobs[0].item<double>(), 3.0 - lse0, 1e-6);
}

TEST(Sampler, LogprobIsUnderTemperatureScaledPolicyNotFilteredDistribution) {
  const auto logits = logits_of({0.2, 0.5, 0.3});
  const std::vector<std::uint64_t> seed = {3};
  const auto out = sample_tokens(logits, {2.0, 1.0, 1}, seed, 0);  // top-1: always token 1
  EXPECT_EQ(out.tokens[0].item<std::int64_t>(), 1);
  const double z = std::sqrt(0.2) + std::sqrt(0.5) + std::sqrt(0.3);
  EXPECT_NEAR(out.logprobs[0].item<double>(), std::log(std::sqrt(0.5) / z), 1e-6);
}

TEST(Sampler, MinPDropsTokensBelowAFractionOfTheMostLikely) {
  // p_max = 0.5: min_p 0.5 keeps p >= 0.25 (0.5 and 0.3), min_p 0.7 keeps p >= 0.35 (0.5 only).
  expect_probs(sampling_distribution(logits_of({0.2, 0.5, 0.3}), {1.0, 1.0, 0, 0.5}), {0.0, 0.625, 0.375});
  expect_probs(sampling_distribution(logits_of({0.2, 0.5, 0.3}), {1.0, 1.0, 0, 0.7}), {0.0, 1.0, 0.0});
  expect_probs(sampling_distribution(logits_of({0.2, 0.5, 0.3}), {1.0, 1.0, 0, 0.39}), {0.2, 0.5, 0.3});  // threshold 0.195
  // Applied after temperature, as transformers does: at τ = 2 the probabilities are ∝ sqrt(p), i.e. (0.263, 0.415,
  // 0.322), and min_p 0.6 keeps p >= 0.249: all three stay, where at τ = 1 even min_p 0.45 drops the 0.2 (threshold 0.225).
  const double z = std::sqrt(0.2) + std::sqrt(0.5) + std::sqrt(0.3);
  expect_probs(sampling_distribution(logits_of({0.2, 0.5, 0.3}), {2.0, 1.0, 0, 0.6}), {std::sqrt(0.2) / z, std::sqrt(0.5) / z, std::sqrt(0.3) / z});
  expect_probs(sampling_distribution(logits_of({0.2, 0.5, 0.3}), {1.0, 1.0, 0, 0.45}), {0.0, 0.625, 0.375});
}

TEST(Sampler, FiltersCompose) {
  // top-k 2 keeps (0.5, 0.3) → (0.625, 0.375); min_p 0.7 then drops 0.375 < 0.4375.
  expect_probs(sampling_distribution(logits_of({0.2, 0.5, 0.3}), {1.0, 1.0, 2, 0.7}), {0.0, 1.0, 0.0});
}

TEST(Sampler, RejectsBadParameters) {
  EXPECT_THROW(validate_sampling({-1.0, 1.0, 0}), std::invalid_argument);
  EXPECT_THROW(validate_sampling({1.0, 1.5, 0}), std::invalid_argument);
  EXPECT_THROW(validate_sampling({1.0, 1.0, -2}), std::invalid_argument);
  EXPECT_THROW(validate_sampling({1.0, 1.0, 0, 2.0}), std::invalid_argument);
  EXPECT_THROW(validate_sampling({std::nan(""), 1.0, 0}), std::invalid_argument);
  EXPECT_NO_THROW(validate_sampling({0.0, 0.0, 0, 0.0}));
}

TEST(Sampler, UniformDrawsAreInTheUnitIntervalAndCounterBased) {
  EXPECT_EQ(uniform_draw(7, 3), uniform_draw(7, 3));
  EXPECT_NE(uniform_draw(7, 3), uniform_draw(7, 4));
  EXPECT_NE(uniform_draw(7, 3), uniform_draw(8, 3));
  EXPECT_NE(derive_seed(7, 0), derive_seed(7, 1));
  double sum = 0.0;
  for (std::uint64_t i = 0; i < 100000; ++i) {
    const float u = uniform_draw(11, i);
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    sum += u;
  }
  EXPECT_NEAR(sum / 100000.0, 0.5, 0.005);  // standard error of the mean 0.0009
}

TEST(Sampler, InverseCdfPicksTheTokenWhoseIntervalHoldsTheDraw) {
  // Hand table: cdf of (0.2, 0.5, 0.3) is (0.2, 0.7, 1.0); the draw u lands in token 0 for u < 0.2, token 1 for
  // 0.2 <= u < 0.7, token 2 above. Find seeds whose first draw falls in each interval and check the token.
  const auto logits = logits_of({0.2, 0.5, 0.3});
  int checked[3] = {0, 0, 0};
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    const float u = uniform_draw(seed, 5);
    if (std::abs(u - 0.2f) < 1e-4f || std::abs(u - 0.7f) < 1e-4f) continue;  // too close to a boundary to call by hand
    const std::int64_t expected = u < 0.2f ? 0 : (u < 0.7f ? 1 : 2);
    const std::vector<std::uint64_t> seeds = {seed};
    EXPECT_EQ(sample_tokens(logits, {1.0, 1.0, 0}, seeds, 5).tokens[0].item<std::int64_t>(), expected) << "u = " << u;
    ++checked[expected];
  }
  EXPECT_GT(checked[0], 10);
  EXPECT_GT(checked[1], 10);
  EXPECT_GT(checked[2], 10);
}

TEST(Sampler, ZeroProbabilityTokensAreNeverDrawn) {
  // top-k 1 leaves a single token; every draw, including those near 1, must give it.
  const auto logits = logits_of({0.3, 0.3, 0.4}).expand({5000, 3}).contiguous();
  std::vector<std::uint64_t> seeds(5000);
  for (std::size_t i = 0; i < seeds.size(); ++i) seeds[i] = i;
  const auto out = sample_tokens(logits, {1.0, 1.0, 1}, seeds, 0);
  EXPECT_TRUE(out.tokens.eq(2).all().item<bool>());
}

TEST(Sampler, FusedUnfilteredPathDrawsWhatTheDistributionPathDraws) {
  // The fast path (no filters) and the cumulative-sum path take the same draw u for a row: they agree on the token
  // except when u · total falls within float rounding of a boundary between two tokens, and on its log-prob.
  auto generator = at::make_generator<at::CPUGeneratorImpl>(5);
  for (const double temperature : {1.0, 0.7}) {
    const auto logits = at::normal(0.0, 3.0, {512, 1000}, generator, torch::TensorOptions().dtype(torch::kFloat32));
    std::vector<std::uint64_t> seeds(512);
    for (std::size_t i = 0; i < seeds.size(); ++i) seeds[i] = derive_seed(9, i);
    const SamplingParams params{temperature, 1.0, 0};
    ASSERT_FALSE(detail::filters_active(params, 1000));
    const auto fused = detail::sample_unfiltered(logits, temperature, seeds, 3);
    const auto reference = detail::sample_from_distribution(logits, params, seeds, 3);
    const auto same = fused.tokens.eq(reference.tokens).sum().item<std::int64_t>();
    EXPECT_GE(same, 510) << "temperature " << temperature;
    const auto expected_logprobs = (logits / temperature).log_softmax(-1).gather(-1, fused.tokens.unsqueeze(-1)).squeeze(-1);
    EXPECT_LT((fused.logprobs - expected_logprobs).abs().max().item<double>(), 1e-5);
    // sample_tokens takes the fused path here.
    EXPECT_TRUE(torch::equal(sample_tokens(logits, params, seeds, 3).tokens, fused.tokens));
  }
}

TEST(Sampler, SeededAndMatchesFrequencies) {
  const auto logits = logits_of({0.2, 0.5, 0.3}).expand({20000, 3}).contiguous();
  std::vector<std::uint64_t> seeds(20000);
  for (std::size_t i = 0; i < seeds.size(); ++i) seeds[i] = derive_seed(42, i);
  const auto a = sample_tokens(logits, {1.0, 1.0, 0}, seeds, 0).tokens;
  const auto b = sample_tokens(logits, {1.0, 1.0, 0}, seeds, 0).tokens;
  EXPECT_TRUE(torch::equal(a, b));
  // A row's draw depends on its own seed only: the second half sampled alone gives the same tokens.
  const auto half = sample_tokens(logits.narrow(0, 10000, 10000), {1.0, 1.0, 0}, std::span(seeds).subspan(10000), 0).tokens;
  EXPECT_TRUE(torch::equal(half, a.narrow(0, 10000, 10000)));
  const auto counts = torch::bincount(a, {}, 3).to(torch::kFloat64) / 20000.0;
  // Binomial standard deviation at n = 20000 is at most 0.0036; 0.015 is over four of them.
  EXPECT_NEAR(counts[0].item<double>(), 0.2, 0.015);
  EXPECT_NEAR(counts[1].item<double>(), 0.5, 0.015);
  EXPECT_NEAR(counts[2].item<double>(), 0.3, 0.015);
}

}  // namespace
}  // namespace grpo::rollout
