// GRPO math against hand-computed values: advantages (ties, zero variance, unscorable samples), the clipped
// surrogate on both sides of the clip (values and gradients), k3 KL, loss aggregation.
#include <gtest/gtest.h>

#include <cmath>

#include "rl/grpo_math.h"

namespace grpo::rl {
namespace {

torch::Tensor row(std::vector<double> values) { return torch::tensor(values, torch::kFloat64).unsqueeze(0); }
torch::Tensor all_scorable(const torch::Tensor& r) { return torch::ones_like(r, torch::kBool); }

void expect_values(const torch::Tensor& actual, std::vector<double> expected, double tol = 1e-9) {
  const auto flat = actual.reshape({-1}).to(torch::kFloat64);
  ASSERT_EQ(flat.numel(), static_cast<std::int64_t>(expected.size()));
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(flat[static_cast<std::int64_t>(i)].item<double>(), expected[i], tol) << "index " << i;
}

TEST(GroupAdvantages, UnbiasedStdWithinEachGroup) {
  // [1, 0, 0, 1]: mean 0.5, unbiased variance (4 · 0.25) / 3 = 1/3.
  const double a = 0.5 / std::sqrt(1.0 / 3.0);
  const auto r = row({1, 0, 0, 1});
  expect_values(group_advantages(r, all_scorable(r), 0.0), {a, -a, -a, a});
  // [2, 0, 1]: mean 1, variance 2/2 = 1; ε = 0.5 enters as std + ε.
  const auto r2 = row({2, 0, 1});
  expect_values(group_advantages(r2, all_scorable(r2), 0.5), {1 / 1.5, -1 / 1.5, 0.0});
}

TEST(GroupAdvantages, GroupsAreIndependent) {
  const auto r = torch::tensor({{1.0, 0.0}, {5.0, 3.0}}, torch::kFloat64);
  // Each group: deviations ±(d/2), unbiased std |d|/sqrt(2) → ±1/sqrt(2) whatever the scale.
  const double a = 1.0 / std::sqrt(2.0);
  expect_values(group_advantages(r, all_scorable(r), 0.0), {a, -a, a, -a});
}

TEST(GroupAdvantages, TiesAndZeroVarianceGiveZero) {
  const auto r = torch::tensor({{1.0, 1.0, 1.0, 1.0}, {0.0, 0.0, 0.0, 0.0}}, torch::kFloat64);
  expect_values(group_advantages(r, all_scorable(r), 1e-4), {0, 0, 0, 0, 0, 0, 0, 0});
  // Ties inside a group with variance: tied samples share one advantage.
  const auto t = row({1, 1, 0, 0});
  const auto adv = group_advantages(t, all_scorable(t), 0.0);
  EXPECT_DOUBLE_EQ(adv[0][0].item<double>(), adv[0][1].item<double>());
  EXPECT_DOUBLE_EQ(adv[0][2].item<double>(), -adv[0][0].item<double>());
}

TEST(GroupAdvantages, UnscorableSamplesLeftOutOfTheBaseline) {
  // Sample 2 cannot be scored (its reward is garbage): baseline over {1, 0, 1}: mean 2/3, var (1/9+4/9+1/9)/2 = 1/3.
  const auto r = row({1, 0, 99, 1});
  const auto scorable = torch::tensor({true, true, false, true}).unsqueeze(0);
  const double s = std::sqrt(1.0 / 3.0);
  expect_values(group_advantages(r, scorable, 0.0), {(1.0 / 3) / s, (-2.0 / 3) / s, 0.0, (1.0 / 3) / s});
  // One scorable sample: nothing to compare against.
  const auto lonely = torch::tensor({false, true, false, false}).unsqueeze(0);
  expect_values(group_advantages(r, lonely, 0.0), {0, 0, 0, 0});
}

TEST(KlK3, HandValues) {
  // π_θ = 0.5, π_ref = 0.25: r = 0.5 → 0.5 − ln 0.5 − 1.
  const auto kl = kl_k3(torch::tensor({std::log(0.5), std::log(0.3)}, torch::kFloat64),
                        torch::tensor({std::log(0.25), std::log(0.3)}, torch::kFloat64));
  expect_values(kl, {0.5 - std::log(0.5) - 1.0, 0.0});
  // Non-negative everywhere.
  const auto x = torch::linspace(-5, 5, 101, torch::kFloat64);
  EXPECT_GE(kl_k3(x, x.flip(0)).min().item<double>(), 0.0);
}

// The surrogate alone: advantages per sequence, no KL, every token its own sequence (seq_mean_token_sum: the loss
// is the sum over sequences / B, so each token's loss and gradient can be read back times B).
PolicyLoss surrogate_only(const torch::Tensor& lp, const torch::Tensor& old_lp, const torch::Tensor& adv, double low, double high,
                          double dual_clip = 0.0) {
  PolicyLossParams params;
  params.clip_eps_low = low;
  params.clip_eps_high = high;
  params.dual_clip = dual_clip;
  params.aggregation = LossAggregation::kSeqMeanTokenSum;
  return policy_loss({lp, old_lp, {}, {}, adv, torch::ones_like(lp)}, params);
}

TEST(ClippedSurrogate, BothSidesOfTheClipValuesAndGradients) {
  // Four single-token sequences: ratio 1.5 or 0.5, advantage +1 or −1, ε = 0.2.
  const auto old_lp = torch::zeros({4, 1}, torch::kFloat64);
  auto lp = torch::tensor({std::log(1.5), std::log(1.5), std::log(0.5), std::log(0.5)}, torch::kFloat64).view({4, 1}).requires_grad_(true);
  const auto adv = torch::tensor({1.0, -1.0, 1.0, -1.0}, torch::kFloat64);
  const auto out = surrogate_only(lp, old_lp, adv, 0.2, 0.2);
  // ρ=1.5,A=+1: min(1.5, 1.2) = 1.2 (clipped high). ρ=1.5,A=−1: min(−1.5, −1.2) = −1.5. ρ=0.5,A=+1: min(0.5, 0.8) = 0.5.
  // ρ=0.5,A=−1: min(−0.5, −0.8) = −0.8 (clipped low). Loss is the negation, averaged over the 4 sequences.
  EXPECT_NEAR(out.loss.item<double>(), (-1.2 + 1.5 - 0.5 + 0.8) / 4, 1e-12);
  EXPECT_DOUBLE_EQ(out.clip_high_fraction, 0.25);
  EXPECT_DOUBLE_EQ(out.clip_low_fraction, 0.25);
  out.loss.backward();
  // d(−ρA)/d logp = −ρA where unclipped, 0 where clipped; / B.
  expect_values(lp.grad() * 4.0, {0.0, 1.5, -0.5, 0.0});
}

TEST(ClippedSurrogate, AsymmetricClipHigher) {
  const auto old_lp = torch::zeros({1, 1}, torch::kFloat64);
  const auto lp = torch::full({1, 1}, std::log(1.25), torch::kFloat64);
  const auto adv = torch::ones({1}, torch::kFloat64);
  EXPECT_NEAR(surrogate_only(lp, old_lp, adv, 0.2, 0.28).loss.item<double>(), -1.25, 1e-12);  // 1.25 < 1.28: not clipped
  EXPECT_NEAR(surrogate_only(lp, old_lp, adv, 0.2, 0.2).loss.item<double>(), -1.2, 1e-12);
}

TEST(ClippedSurrogate, DualClipCapsTheLossOfNegativeAdvantages) {
  // ρ = 5, A = −1: unclipped −ρA = 5, the PPO max picks 5; the dual clip (c = 3) caps it at −A·c = 3 and stops its
  // gradient. With A = +1 the dual clip does nothing (loss −min(5, 1.2) = −1.2).
  const auto old_lp = torch::zeros({2, 1}, torch::kFloat64);
  auto lp = torch::full({2, 1}, std::log(5.0), torch::kFloat64).requires_grad_(true);
  const auto adv = torch::tensor({-1.0, 1.0}, torch::kFloat64);
  const auto out = surrogate_only(lp, old_lp, adv, 0.2, 0.2, 3.0);
  EXPECT_NEAR(out.loss.item<double>(), (3.0 - 1.2) / 2, 1e-12);
  EXPECT_DOUBLE_EQ(out.dual_clip_fraction, 0.5);
  out.loss.backward();
  expect_values(lp.grad(), {0.0, 0.0});
  EXPECT_THROW(surrogate_only(lp, old_lp, adv, 0.2, 0.2, 0.5), c10::Error);  // c must exceed 1
}

TEST(ClippedSurrogate, SequenceRatioIsTheGeometricMeanOfTokenRatios) {
  // GSPO: tokens with ratios 2 and 0.5 (and a masked third) give s = exp((ln 2 + ln 0.5) / 2) = 1: on-policy value.
  const auto old_lp = torch::zeros({1, 3}, torch::kFloat64);
  const auto lp = torch::tensor({std::log(2.0), std::log(0.5), 7.0}, torch::kFloat64).unsqueeze(0);
  const auto mask = torch::tensor({1.0, 1.0, 0.0}, torch::kFloat64).unsqueeze(0);
  PolicyLossParams params;
  params.ratio_level = RatioLevel::kSequence;
  const auto out = policy_loss({lp, old_lp, {}, {}, torch::ones({1}, torch::kFloat64), mask}, params);
  EXPECT_NEAR(out.loss.item<double>(), -1.0, 1e-12);
  EXPECT_NEAR(out.ratio_mean, 1.0, 1e-12);
}

TEST(KlEstimators, HandValuesOfK1K2K3) {
  const auto lp = torch::tensor({std::log(0.5)}, torch::kFloat64);
  const auto ref = torch::tensor({std::log(0.25)}, torch::kFloat64);
  expect_values(kl_estimate(lp, ref, KlEstimator::kK1), {std::log(2.0)});
  expect_values(kl_estimate(lp, ref, KlEstimator::kK2), {0.5 * std::log(2.0) * std::log(2.0)});
  expect_values(kl_estimate(lp, ref, KlEstimator::kK3), {0.5 - std::log(0.5) - 1.0});
  // Summed per sequence over real tokens, for KL in the reward.
  const auto seq = sequence_kl(torch::tensor({{std::log(0.5), std::log(0.5)}}, torch::kFloat64),
                               torch::tensor({{std::log(0.25), 3.0}}, torch::kFloat64), torch::tensor({{1.0, 0.0}}, torch::kFloat64),
                               KlEstimator::kK1);
  expect_values(seq, {std::log(2.0)});
}

TEST(RewardShaping, OverlongPenaltyFollowsDapo) {
  // L_max 20, cache 4: no penalty up to 16, linear to −1 at 20, −1 beyond.
  EXPECT_DOUBLE_EQ(overlong_penalty(10, 20, 4), 0.0);
  EXPECT_DOUBLE_EQ(overlong_penalty(16, 20, 4), 0.0);
  EXPECT_DOUBLE_EQ(overlong_penalty(18, 20, 4), -0.5);
  EXPECT_DOUBLE_EQ(overlong_penalty(20, 20, 4), -1.0);
  EXPECT_DOUBLE_EQ(overlong_penalty(25, 20, 4), -1.0);
}

TEST(RewardShaping, DynamicSamplingKeepsGroupsWithSignal) {
  const auto rewards = torch::tensor({{1.0, 1.0, 1.0}, {0.0, 1.0, 0.0}, {0.0, 0.0, 0.0}, {1.0, 0.0, 1.0}}, torch::kFloat64);
  auto scorable = torch::ones({4, 3}, torch::kBool);
  scorable[3][1] = false;  // the only differing sample cannot be scored: no signal left
  EXPECT_EQ(groups_with_signal(rewards, scorable), (std::vector<bool>{false, true, false, false}));
}

TEST(Advantages, BatchStdAndNoStd) {
  // Groups [1, 0] and [3, 3]: centered (0.5, −0.5, 0, 0); batch std of (1, 0, 3, 3) = sqrt(((−0.75)² + (−1.75)²
  // + 1.25² · 2) / 3) = sqrt(2.25).
  const auto r = torch::tensor({{1.0, 0.0}, {3.0, 3.0}}, torch::kFloat64);
  const auto all = torch::ones_like(r, torch::kBool);
  expect_values(compute_advantages(r, all, AdvantageNorm::kBatch, 0.0), {0.5 / 1.5, -0.5 / 1.5, 0.0, 0.0});
  expect_values(compute_advantages(r, all, AdvantageNorm::kNone, 0.0), {0.5, -0.5, 0.0, 0.0});
}

TEST(AggregateLoss, SequenceMeanOfTokenMeansAndTokenMean) {
  const auto loss = torch::tensor({{1.0, 2.0, 3.0}, {4.0, 100.0, 100.0}}, torch::kFloat64);
  const auto mask = torch::tensor({{1.0, 1.0, 1.0}, {1.0, 0.0, 0.0}}, torch::kFloat64);
  EXPECT_DOUBLE_EQ(aggregate_loss(loss, mask, LossAggregation::kSeqMeanTokenMean).item<double>(), (2.0 + 4.0) / 2);
  EXPECT_DOUBLE_EQ(aggregate_loss(loss, mask, LossAggregation::kTokenMean).item<double>(), (1.0 + 2.0 + 3.0 + 4.0) / 4);
  // An empty sequence contributes zero, not NaN.
  const auto empty_mask = torch::tensor({{1.0, 1.0, 1.0}, {0.0, 0.0, 0.0}}, torch::kFloat64);
  EXPECT_DOUBLE_EQ(aggregate_loss(loss, empty_mask, LossAggregation::kSeqMeanTokenMean).item<double>(), 1.0);
}

TEST(PolicyLoss, CombinesSurrogateAndKlPerToken) {
  // Two sequences; sequence 0 has two tokens, sequence 1 one token (second masked).
  const auto lp = torch::tensor({{std::log(0.5), std::log(0.4)}, {std::log(0.2), 0.0}}, torch::kFloat64);
  const auto old_lp = lp.clone();  // on-policy: ρ = 1
  const auto ref = torch::tensor({{std::log(0.25), std::log(0.4)}, {std::log(0.1), 0.0}}, torch::kFloat64);
  const auto adv = torch::tensor({2.0, -1.0}, torch::kFloat64);
  const auto mask = torch::tensor({{1.0, 1.0}, {1.0, 0.0}}, torch::kFloat64);
  const double beta = 0.1;
  const double kl00 = 0.5 - std::log(0.5) - 1.0;  // ref/p = 0.5
  const double kl10 = 0.5 - std::log(0.5) - 1.0;  // 0.1/0.2
  // Token losses: −ρA + β·KL.
  const double seq0 = ((-2.0 + beta * kl00) + (-2.0 + 0.0)) / 2.0;
  const double seq1 = (1.0 + beta * kl10);
  PolicyLossParams params;
  params.kl_beta = beta;
  const auto out = policy_loss({lp, old_lp, ref, {}, adv, mask}, params);
  EXPECT_NEAR(out.loss.item<double>(), (seq0 + seq1) / 2.0, 1e-12);
  EXPECT_NEAR(out.kl_mean, (kl00 + 0.0 + kl10) / 3.0, 1e-12);
  EXPECT_DOUBLE_EQ(out.clip_low_fraction + out.clip_high_fraction, 0.0);
  EXPECT_NEAR(out.ratio_mean, 1.0, 1e-12);
  // β = 0 needs no reference.
  PolicyLossParams token_mean;
  token_mean.aggregation = LossAggregation::kTokenMean;
  const auto no_kl = policy_loss({lp, old_lp, {}, {}, adv, mask}, token_mean);
  EXPECT_NEAR(no_kl.loss.item<double>(), (-2.0 - 2.0 + 1.0) / 3.0, 1e-12);
  EXPECT_THROW(policy_loss({lp, old_lp, {}, {}, adv, mask}, params), c10::Error);  // β > 0 without a reference
}

TEST(Names, EveryVariantHasItsConfigName) {
  for (const auto* name : {"seq_mean_token_mean", "token_mean", "token_mean_local", "seq_mean_token_sum_norm", "seq_mean_token_sum"}) {
    EXPECT_TRUE(parse_loss_aggregation(name).has_value()) << name;
  }
  for (const auto* name : {"group", "batch", "none"}) EXPECT_TRUE(parse_advantage_norm(name).has_value()) << name;
  for (const auto* name : {"k1", "k2", "k3"}) EXPECT_TRUE(parse_kl_estimator(name).has_value()) << name;
  EXPECT_FALSE(parse_loss_aggregation("dapo").has_value());
  EXPECT_EQ(parse_ratio_level("sequence"), RatioLevel::kSequence);
}

}  // namespace
}  // namespace grpo::rl
