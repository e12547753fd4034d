// The fused CPU RMSNorm and rotary embedding against Hugging Face's formulas (their references), on random inputs
// with strided views and sizes off the vector width; and when they may be used.
#include <gtest/gtest.h>

#include "kernels/cpu_decode_ops.h"

namespace grpo::kernels {
namespace {

TEST(CpuDecodeOps, RmsNormMatchesTheReference) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(1);
  for (const std::int64_t size : {1, 7, 16, 128, 133, 896}) {
    const auto x = at::normal(0.0, 3.0, {5, 3, size}, generator, torch::TensorOptions());
    const auto w = at::normal(1.0, 0.5, {size}, generator, torch::TensorOptions());
    for (const double eps : {1e-6, 1e-5}) {
      const auto expected = rms_norm_reference(x, w, eps);
      EXPECT_LT((rms_norm(x, w, eps) - expected).abs().max().item<double>(), 2e-6 * expected.abs().max().item<double>()) << size;
    }
  }
  // A transposed (non-contiguous) input.
  const auto x = at::normal(0.0, 1.0, {64, 8}, generator, torch::TensorOptions()).t();
  const auto w = torch::ones({64});
  EXPECT_TRUE(torch::allclose(rms_norm(x, w, 1e-6), rms_norm_reference(x, w, 1e-6), 1e-5, 1e-6));
}

TEST(CpuDecodeOps, RotaryMatchesTheReference) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(2);
  for (const std::int64_t dim : {2, 24, 32, 64, 128}) {
    // x as the model has it: a [B, T, H, D] projection seen as [B, H, T, D].
    const auto x = at::normal(0.0, 1.0, {3, 5, 4, dim}, generator, torch::TensorOptions()).transpose(1, 2);
    const auto angles = at::normal(0.0, 2.0, {3, 1, 5, dim}, generator, torch::TensorOptions());
    const auto cos = angles.cos(), sin = angles.sin();
    EXPECT_LT((apply_rotary(x, cos, sin) - apply_rotary_reference(x, cos, sin)).abs().max().item<double>(), 1e-6) << dim;
  }
}

TEST(CpuDecodeOps, UsedOnlyWhereNoGradientIsRecorded) {
  const auto x = torch::ones({2, 4});
  EXPECT_TRUE(fused_cpu_inference(x));
  EXPECT_FALSE(fused_cpu_inference(x.to(torch::kBFloat16)));
  const auto tracked = torch::ones({2, 4}, torch::TensorOptions().requires_grad(true));
  EXPECT_FALSE(fused_cpu_inference(tracked));
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(fused_cpu_inference(tracked));
}

TEST(CpuDecodeOps, RejectsWhatTheyDoNotHandle) {
  EXPECT_THROW(rms_norm(torch::ones({2, 4}), torch::ones({3}), 1e-6), c10::Error);
  EXPECT_THROW(rms_norm(torch::ones({2, 4}, torch::kBFloat16), torch::ones({4}), 1e-6), c10::Error);
  EXPECT_THROW(apply_rotary(torch::ones({1, 2, 3, 5}), torch::ones({1, 1, 3, 5}), torch::ones({1, 1, 3, 5})), c10::Error);  // odd D
  EXPECT_THROW(apply_rotary(torch::ones({1, 2, 3, 4}), torch::ones({1, 1, 2, 4}), torch::ones({1, 1, 2, 4})), c10::Error);
}

}  // namespace
}  // namespace grpo::kernels
