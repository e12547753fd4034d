// Tests of selective log-softmax: the ATen reference against hand-computed and double-precision values and its
// analytic gradient, the input checks, and the fused CUDA kernel against the reference (skipped without a GPU).
#include "kernels/selective_log_softmax.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace grpo::kernels {
namespace {

// log p(target) per row in double precision by plain loops: logits [N, V], targets [N] -> N values.
std::vector<double> log_probs_by_loop(const torch::Tensor& logits, const torch::Tensor& targets) {
  const auto values = logits.to(torch::kFloat64).contiguous();  // exact for float32, bfloat16 and float16
  const auto x = values.accessor<double, 2>();
  const auto t = targets.accessor<int64_t, 1>();
  std::vector<double> result;
  for (int64_t n = 0; n < values.size(0); ++n) {
    double max = -INFINITY;
    for (int64_t v = 0; v < values.size(1); ++v) {
      max = std::max(max, x[n][v]);
    }
    double sum = 0.0;
    for (int64_t v = 0; v < values.size(1); ++v) {
      sum += std::exp(x[n][v] - max);
    }
    result.push_back(x[n][t[n]] - max - std::log(sum));
  }
  return result;
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64).cpu() - b.to(torch::kFloat64).cpu()).abs().max().item<double>();
}

TEST(SelectiveLogSoftmaxReference, MatchesHandComputedCase) {
  // Each row has softmax (1/6, 2/6, 3/6).
  const auto logits =
      torch::tensor({0.0, std::log(2.0), std::log(3.0), 0.0, std::log(2.0), std::log(3.0)}, torch::kFloat32)
          .reshape({2, 3});
  const auto targets = torch::tensor({2, 0}, torch::kInt64);
  const auto out = selective_log_softmax_reference(logits, targets);
  ASSERT_EQ(out.scalar_type(), torch::kFloat32);
  ASSERT_EQ(out.sizes(), torch::IntArrayRef({2}));
  EXPECT_NEAR(out[0].item<float>(), std::log(3.0 / 6.0), 1e-6);
  EXPECT_NEAR(out[1].item<float>(), std::log(1.0 / 6.0), 1e-6);
}

TEST(SelectiveLogSoftmaxReference, MatchesDoublePrecisionLoop) {
  torch::manual_seed(0);
  struct Case {
    int64_t rows;
    int64_t vocab;
    torch::ScalarType dtype;
  };
  for (const auto& c : {Case{5, 17, torch::kFloat32}, Case{3, 1, torch::kFloat32}, Case{8, 1000, torch::kFloat32},
                        Case{6, 333, torch::kBFloat16}, Case{6, 333, torch::kFloat16}}) {
    SCOPED_TRACE(testing::Message() << "N=" << c.rows << " V=" << c.vocab << " dtype=" << c.dtype);
    const auto logits = (3.0 * torch::randn({c.rows, c.vocab})).to(c.dtype);
    const auto targets = torch::randint(c.vocab, {c.rows}, torch::kInt64);
    const auto out = selective_log_softmax_reference(logits, targets);
    const auto expected = log_probs_by_loop(logits, targets);
    ASSERT_EQ(out.scalar_type(), torch::kFloat32);
    for (int64_t n = 0; n < c.rows; ++n) {
      // float32 log-softmax against double: a few float32 ulps of |logp| (≲ 20 here) and of the logsumexp.
      EXPECT_NEAR(out[n].item<float>(), expected[static_cast<std::size_t>(n)], 1e-5) << "row " << n;
    }
  }
}

TEST(SelectiveLogSoftmaxReference, GradientIsOneHotMinusSoftmax) {
  torch::manual_seed(1);
  const int64_t rows = 3;
  const int64_t vocab = 5;
  const auto logits = torch::randn({rows, vocab}).requires_grad_(true);
  const auto targets = torch::tensor({4, 0, 2}, torch::kInt64);
  const auto weights = torch::tensor({1.0F, -2.0F, 0.5F});
  (weights * selective_log_softmax_reference(logits, targets)).sum().backward();

  // d(Σ w_n logp_n) / d logits[n, v] = w_n (1[v = target_n] − softmax(logits[n])_v), softmax in double.
  const auto exps = logits.detach().to(torch::kFloat64).exp();
  const auto softmax = exps / exps.sum(/*dim=*/1, /*keepdim=*/true);
  const auto one_hot = torch::one_hot(targets, vocab).to(torch::kFloat64);
  const auto expected = weights.to(torch::kFloat64).unsqueeze(1) * (one_hot - softmax);
  ASSERT_TRUE(logits.grad().defined());
  EXPECT_LT(max_abs_diff(logits.grad(), expected), 1e-6);
}

TEST(SelectiveLogSoftmax, OnCpuIsTheDifferentiableReference) {
  torch::manual_seed(2);
  const auto logits = torch::randn({4, 9}).requires_grad_(true);
  const auto targets = torch::randint(9, {4}, torch::kInt64);
  const auto out = selective_log_softmax(logits, targets);
  EXPECT_TRUE(torch::equal(out, selective_log_softmax_reference(logits, targets)));
  out.sum().backward();
  ASSERT_TRUE(logits.grad().defined());
  EXPECT_GT(logits.grad().abs().sum().item<float>(), 0.0F);
}

TEST(SelectiveLogSoftmax, EmptyBatchGivesEmptyResult) {
  const auto out = selective_log_softmax(torch::zeros({0, 7}), torch::zeros({0}, torch::kInt64));
  EXPECT_EQ(out.sizes(), torch::IntArrayRef({0}));
  EXPECT_EQ(out.scalar_type(), torch::kFloat32);
}

TEST(SelectiveLogSoftmax, RejectsBadInputs) {
  const auto logits = torch::zeros({2, 5});
  const auto targets = torch::tensor({1, 4}, torch::kInt64);
  EXPECT_THROW(selective_log_softmax(torch::zeros({5}), torch::tensor({1}, torch::kInt64)), c10::Error);
  EXPECT_THROW(selective_log_softmax(torch::zeros({2, 1, 5}), targets), c10::Error);
  EXPECT_THROW(selective_log_softmax(logits.to(torch::kFloat64), targets), c10::Error);
  EXPECT_THROW(selective_log_softmax(logits.to(torch::kInt64), targets), c10::Error);
  EXPECT_THROW(selective_log_softmax(torch::zeros({2, 0}), torch::zeros({2}, torch::kInt64)), c10::Error);
  EXPECT_THROW(selective_log_softmax(logits, targets.unsqueeze(0)), c10::Error);
  EXPECT_THROW(selective_log_softmax(logits, targets.to(torch::kInt32)), c10::Error);
  EXPECT_THROW(selective_log_softmax(logits, torch::tensor({1, 2, 3}, torch::kInt64)), c10::Error);
  EXPECT_THROW(selective_log_softmax(logits, torch::tensor({1, -1}, torch::kInt64)), c10::Error);
  EXPECT_THROW(selective_log_softmax(logits, torch::tensor({5, 0}, torch::kInt64)), c10::Error);
  EXPECT_THROW(selective_log_softmax(logits, torch::tensor({-100, 0}, torch::kInt64)), c10::Error);
  EXPECT_NO_THROW(selective_log_softmax(logits, targets));
  try {
    selective_log_softmax(logits, torch::tensor({0, 7}, torch::kInt64));
    FAIL() << "an out-of-range target was accepted";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("targets must lie in [0, 5), got values in [0, 7]"), std::string::npos)
        << e.what();
  }
}

#ifdef GRPO_HAVE_CUDA

std::optional<std::string> cuda_unavailable() {
  if (!torch::cuda::is_available()) {
    return "no CUDA device: torch::cuda::is_available() is false, the fused kernel is not exercised";
  }
  return std::nullopt;
}

// Both sides compute the same float32 function of the same values (upcasting bfloat16 and float16 to float32 is
// exact), so bfloat16 and float16 need no looser tolerance than float32: the results differ only by float32 rounding
// in another summation order, ~1e-6 relative in the sum of exponentials (≲ 100 terms per thread, then a tree; so
// ~1e-6 absolute in its log) plus the rounding of |logp| ≈ 13 (ulp ~1e-6). Used as both rtol and atol in allclose.
constexpr double kCudaTolerance = 1e-5;

void expect_cuda_matches_reference(const torch::Tensor& logits, const torch::Tensor& targets) {
  const auto out = selective_log_softmax_cuda(logits, targets);
  const auto expected = selective_log_softmax_reference(logits.cpu(), targets.cpu());
  ASSERT_TRUE(out.is_cuda());
  ASSERT_EQ(out.scalar_type(), torch::kFloat32);
  ASSERT_EQ(out.sizes(), expected.sizes());
  EXPECT_TRUE(torch::allclose(out.cpu(), expected, /*rtol=*/kCudaTolerance, /*atol=*/kCudaTolerance))
      << "max |cuda - reference| = " << max_abs_diff(out, expected);
}

TEST(SelectiveLogSoftmaxCuda, MatchesReferenceForEachDtype) {
  if (const auto why = cuda_unavailable()) {
    GTEST_SKIP() << *why;
  }
  torch::manual_seed(3);
  const int64_t rows = 257;
  // 50'000 is a multiple of both vector widths (4 float32, 8 bfloat16/float16); 50'003 is neither, so every row
  // after the first starts unaligned and has a scalar head and tail.
  for (const int64_t vocab : {50'000, 50'003}) {
    for (const auto dtype : {torch::kFloat32, torch::kBFloat16, torch::kFloat16}) {
      SCOPED_TRACE(testing::Message() << "V=" << vocab << " dtype=" << dtype);
      const auto logits = (2.0 * torch::randn({rows, vocab}, torch::kCUDA)).to(dtype);
      const auto targets = torch::randint(vocab, {rows}, torch::TensorOptions(torch::kCUDA).dtype(torch::kInt64));
      expect_cuda_matches_reference(logits, targets);
    }
  }
}

TEST(SelectiveLogSoftmaxCuda, HandlesRowStrideOffsetAndMaskedVocabulary) {
  if (const auto why = cuda_unavailable()) {
    GTEST_SKIP() << *why;
  }
  torch::manual_seed(4);
  const int64_t rows = 33;
  const int64_t vocab = 4099;
  for (const auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    SCOPED_TRACE(testing::Message() << "dtype=" << dtype);
    // A slice of wider logits: row stride V + 3 and a one-element storage offset, so no row starts aligned.
    const auto wide = (4.0 * torch::randn({rows, vocab + 3}, torch::kCUDA)).to(dtype);
    auto logits = wide.slice(/*dim=*/1, /*start=*/1, /*end=*/vocab + 1);
    expect_cuda_matches_reference(logits, torch::randint(vocab, {rows}, wide.options().dtype(torch::kInt64)));

    // Padded vocabulary entries at −inf and large-magnitude logits; targets inside the real vocabulary, and one
    // row whose target is itself masked (log p = −inf on both sides).
    auto masked = (30.0 * torch::randn({rows, vocab}, torch::kCUDA)).to(dtype);
    masked.slice(/*dim=*/1, /*start=*/vocab - 100).fill_(-INFINITY);
    auto targets = torch::randint(vocab - 100, {rows}, masked.options().dtype(torch::kInt64));
    targets[0] = vocab - 1;
    expect_cuda_matches_reference(masked, targets);
  }
}

TEST(SelectiveLogSoftmaxCuda, OutOfRangeTargetGivesNan) {
  if (const auto why = cuda_unavailable()) {
    GTEST_SKIP() << *why;
  }
  const auto logits = torch::zeros({3, 10}, torch::kCUDA);
  const auto out =
      selective_log_softmax_cuda(logits, torch::tensor({-1, 3, 10}, logits.options().dtype(torch::kInt64))).cpu();
  EXPECT_TRUE(std::isnan(out[0].item<float>()));
  EXPECT_NEAR(out[1].item<float>(), -std::log(10.0), 1e-6);
  EXPECT_TRUE(std::isnan(out[2].item<float>()));
}

TEST(SelectiveLogSoftmaxCuda, DispatcherStaysDifferentiableAndChecksDevices) {
  if (const auto why = cuda_unavailable()) {
    GTEST_SKIP() << *why;
  }
  torch::manual_seed(5);
  const auto logits = torch::randn({4, 300}, torch::kCUDA).requires_grad_(true);
  const auto targets = torch::randint(300, {4}, logits.options().dtype(torch::kInt64));
  const auto out = selective_log_softmax(logits, targets);
  EXPECT_TRUE(out.requires_grad());
  out.sum().backward();
  ASSERT_TRUE(logits.grad().defined());
  {
    const torch::NoGradGuard no_grad;
    EXPECT_FALSE(selective_log_softmax(logits, targets).requires_grad());
    EXPECT_LT(max_abs_diff(selective_log_softmax(logits, targets), out.detach()), kCudaTolerance);
  }
  EXPECT_THROW(selective_log_softmax(logits.detach(), targets.cpu()), c10::Error);
  EXPECT_EQ(selective_log_softmax_cuda(torch::zeros({0, 5}, torch::kCUDA),
                                       torch::zeros({0}, torch::TensorOptions(torch::kCUDA).dtype(torch::kInt64)))
                .numel(),
            0);
}

#else

TEST(SelectiveLogSoftmaxCuda, NotBuilt) {
  GTEST_SKIP() << "no CUDA device: this build has no CUDA kernels (GRPO_HAVE_CUDA undefined), so the fused kernel "
                  "is not exercised";
}

#endif

}  // namespace
}  // namespace grpo::kernels
