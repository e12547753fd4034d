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

TEST(ClippedSurrogate, BothSidesOfTheClipValuesAndGradients) {
  // Four single-token sequences: ratio 1.5 or 0.5, advantage +1 or −1, ε = 0.2.
  const auto old_lp = torch::zeros({4, 1}, torch::kFloat64);
  auto lp = torch::tensor({std::log(1.5), std::log(1.5), std::log(0.5), std::log(0.5)}, torch::kFloat64).view({4, 1}).requires_grad_(true);
  const auto adv = torch::tensor({1.0, -1.0, 1.0, -1.0}, torch::kFloat64);
  const auto terms = clipped_surrogate(lp, old_lp, adv, 0.2, 0.2);
  // ρ=1.5,A=+1: min(1.5, 1.2) = 1.2 (clipped). ρ=1.5,A=−1: min(−1.5, −1.2) = −1.5. ρ=0.5,A=+1: min(0.5, 0.8) = 0.5.
  // ρ=0.5,A=−1: min(−0.5, −0.8) = −0.8 (clipped). Loss is the negation.
  expect_values(terms.loss, {-1.2, 1.5, -0.5, 0.8});
  expect_values(terms.clipped.to(torch::kFloat64), {1, 0, 0, 1});
  terms.loss.sum().backward();
  // d(−ρA)/d logp = −ρA where unclipped, 0 where clipped.
  expect_values(lp.grad(), {0.0, 1.5, -0.5, 0.0});
}

TEST(ClippedSurrogate, AsymmetricClipHigher) {
  const auto old_lp = torch::zeros({1, 1}, torch::kFloat64);
  const auto lp = torch::full({1, 1}, std::log(1.25), torch::kFloat64);
  const auto adv = torch::ones({1}, torch::kFloat64);
  expect_values(clipped_surrogate(lp, old_lp, adv, 0.2, 0.28).loss, {-1.25});  // 1.25 < 1.28: not clipped
  expect_values(clipped_surrogate(lp, old_lp, adv, 0.2, 0.2).loss, {-1.2});
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

TEST(GrpoLoss, CombinesSurrogateAndKlPerToken) {
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
  const auto out = grpo_loss(lp, old_lp, ref, adv, mask, {0.2, 0.2, beta, LossAggregation::kSeqMeanTokenMean});
  EXPECT_NEAR(out.loss.item<double>(), (seq0 + seq1) / 2.0, 1e-12);
  EXPECT_NEAR(out.kl_mean, (kl00 + 0.0 + kl10) / 3.0, 1e-12);
  EXPECT_DOUBLE_EQ(out.clip_fraction, 0.0);
  EXPECT_NEAR(out.ratio_mean, 1.0, 1e-12);
  // β = 0 needs no reference.
  const auto no_kl = grpo_loss(lp, old_lp, torch::Tensor(), adv, mask, {0.2, 0.2, 0.0, LossAggregation::kTokenMean});
  EXPECT_NEAR(no_kl.loss.item<double>(), (-2.0 - 2.0 + 1.0) / 3.0, 1e-12);
}

}  // namespace
}  // namespace grpo::rl
