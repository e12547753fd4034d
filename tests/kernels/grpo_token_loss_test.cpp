// The fused GRPO token loss against its ATen definition: loss, ratio, KL and the gradient for every clip, dual-clip,
// importance-weight and KL setting, in float64 (to 1e-12) and float32; on CUDA the kernel against the CPU
// (skipped visibly without a GPU).
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "kernels/grpo_token_loss.h"

namespace grpo::kernels {
namespace {

struct Inputs {
  torch::Tensor logp, old, ref, adv, weight, upstream;
};

// Ratios spread well past both clip edges, advantages of both signs (and a zero one), so every branch is taken.
Inputs make_inputs(torch::Dtype dtype, std::uint64_t seed, torch::Device device = torch::kCPU) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto options = torch::TensorOptions().dtype(torch::kFloat64);
  Inputs in;
  in.old = -torch::rand({6, 9}, g, options) * 3.0;
  in.logp = in.old + torch::randn({6, 9}, g, options) * 0.4;
  in.ref = in.old + torch::randn({6, 9}, g, options) * 0.3;
  in.adv = torch::tensor({1.5, -0.7, 0.0, 0.3, -2.0, 0.9}, options);
  in.weight = torch::rand({6, 9}, g, options) * 2.0;
  in.upstream = torch::randn({6, 9}, g, options);
  for (auto* t : {&in.old, &in.logp, &in.ref, &in.adv, &in.weight, &in.upstream}) *t = t->to(dtype).to(device);
  return in;
}

struct Outcome {
  torch::Tensor loss, ratio, kl, grad;
};

template <typename Op>
Outcome run(const Inputs& in, bool with_ref, bool with_weight, const TokenLossParams& params, Op op) {
  auto logp = in.logp.clone().requires_grad_(true);
  const auto out = op(logp, in.old, with_ref ? in.ref : torch::Tensor(), in.adv, with_weight ? in.weight : torch::Tensor(), params);
  (out.loss * in.upstream).sum().backward();
  return {out.loss.detach(), out.ratio, out.kl, logp.grad()};
}

std::vector<TokenLossParams> every_setting() {
  std::vector<TokenLossParams> settings;
  for (const double high : {0.2, 0.28}) {
    for (const double dual : {0.0, 3.0}) {
      for (const auto kl : {KlKind::kK1, KlKind::kK2, KlKind::kK3}) settings.push_back({0.2, high, dual, 0.04, kl});
    }
  }
  return settings;
}

void expect_equal(const Outcome& a, const Outcome& b, double tolerance, const std::string& what) {
  auto close = [&](const torch::Tensor& x, const torch::Tensor& y) { return torch::allclose(x.cpu().to(torch::kFloat64), y.cpu().to(torch::kFloat64), tolerance, tolerance); };
  EXPECT_TRUE(close(a.loss, b.loss)) << what << "\n" << (a.loss - b.loss).abs().max();
  EXPECT_TRUE(close(a.ratio, b.ratio)) << what;
  EXPECT_TRUE(close(a.grad, b.grad)) << what << "\n" << (a.grad - b.grad).abs().max();
  EXPECT_EQ(a.kl.defined(), b.kl.defined()) << what;
  if (a.kl.defined()) {
    EXPECT_TRUE(close(a.kl, b.kl)) << what;
  }
}

std::string fmt_setting(const TokenLossParams& p, bool with_ref, bool with_weight) {
  return "eps_high " + std::to_string(p.clip_eps_high) + ", dual " + std::to_string(p.dual_clip) + ", kl " +
         std::to_string(static_cast<int>(p.kl)) + ", ref " + std::to_string(with_ref) + ", weight " + std::to_string(with_weight);
}

TEST(GrpoTokenLoss, EqualsTheReferenceForEverySetting) {
  for (const auto dtype : {torch::kFloat64, torch::kFloat32}) {
    const auto in = make_inputs(dtype, 7);
    const double tolerance = dtype == torch::kFloat64 ? 1e-12 : 1e-5;
    for (const auto& params : every_setting()) {
      for (const bool with_ref : {false, true}) {
        for (const bool with_weight : {false, true}) {
          auto p = params;
          if (!with_ref) p.kl_beta = 0.0;
          const auto what = fmt_setting(p, with_ref, with_weight);
          expect_equal(run(in, with_ref, with_weight, p, grpo_token_loss), run(in, with_ref, with_weight, p, grpo_token_loss_reference), tolerance, what);
        }
      }
    }
  }
}

TEST(GrpoTokenLoss, HandComputedTokens) {
  // ρ = e^{0.5} ≈ 1.6487 with A = 1: clipped at 1.2, loss −1.2 and no gradient; with A = −1 the unclipped −A ρ is
  // larger: loss ρ, gradient ρ; dual clip 1.5 caps that loss at 1.5 (gradient 0). k3 against ref = logp: 0.
  const auto logp = torch::tensor({{0.0}, {0.0}}, torch::kFloat64).requires_grad_(true);
  const auto old = torch::tensor({{-0.5}, {-0.5}}, torch::kFloat64);
  const auto adv = torch::tensor({1.0, -1.0}, torch::kFloat64);
  auto out = grpo_token_loss(logp, old, logp.detach(), adv, torch::Tensor(), {0.2, 0.2, 0.0, 0.1, KlKind::kK3});
  out.loss.sum().backward();
  const double rho = std::exp(0.5);
  EXPECT_NEAR(out.loss[0][0].item<double>(), -1.2, 1e-12);
  EXPECT_NEAR(out.loss[1][0].item<double>(), rho, 1e-12);
  EXPECT_NEAR(logp.grad()[0][0].item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(logp.grad()[1][0].item<double>(), rho, 1e-12);  // d(ρ)/d logp = ρ; the KL term's slope is 0 here
  EXPECT_NEAR(out.kl.abs().max().item<double>(), 0.0, 1e-12);
  const auto capped = grpo_token_loss(logp.detach(), old, torch::Tensor(), adv, torch::Tensor(), {0.2, 0.2, 1.5, 0.0, KlKind::kK3});
  EXPECT_NEAR(capped.loss[1][0].item<double>(), 1.5, 1e-12);
}

TEST(GrpoTokenLoss, CallerMistakesAreErrors) {
  const auto in = make_inputs(torch::kFloat32, 1);
  EXPECT_THROW(grpo_token_loss(in.logp, in.old.narrow(1, 0, 3), {}, in.adv, {}, {}), c10::Error);
  EXPECT_THROW(grpo_token_loss(in.logp, in.old, {}, in.adv.narrow(0, 0, 2), {}, {}), c10::Error);
  EXPECT_THROW(grpo_token_loss(in.logp, in.old, {}, in.adv, {}, {0.2, 0.2, 0.0, 0.04, KlKind::kK3}), c10::Error);  // β without ref
  EXPECT_THROW(grpo_token_loss(in.logp, in.old, {}, in.adv, {}, {0.2, 0.2, 0.5, 0.0, KlKind::kK3}), c10::Error);   // dual clip ≤ 1
}

TEST(GrpoTokenLossCuda, KernelEqualsTheCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device: torch::cuda::is_available() is false, the CUDA kernel is not exercised";
  for (const auto dtype : {torch::kFloat64, torch::kFloat32}) {
    const auto cpu = make_inputs(dtype, 11);
    const auto gpu = make_inputs(dtype, 11, torch::kCUDA);
    for (const auto& params : every_setting()) {
      expect_equal(run(gpu, true, true, params, grpo_token_loss), run(cpu, true, true, params, grpo_token_loss), dtype == torch::kFloat64 ? 1e-12 : 1e-5,
                   fmt_setting(params, true, true));
    }
  }
}

}  // namespace
}  // namespace grpo::kernels
