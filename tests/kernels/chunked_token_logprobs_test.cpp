// The chunked log-prob op against its definition (the full log-softmax): values, entropy and both gradients, with
// chunks that do not divide the rows, a temperature, float64 (exact to round-off), float32 and bfloat16.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "kernels/chunked_token_logprobs.h"

namespace grpo::kernels {
namespace {

struct Case {
  torch::Tensor hidden, weight, targets, upstream;
};

Case make_case(std::int64_t N, std::int64_t C, std::int64_t V, torch::Dtype dtype, std::uint64_t seed) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  Case c;
  c.hidden = torch::randn({N, C}, generator, torch::TensorOptions().dtype(torch::kFloat64)).to(dtype);
  c.weight = (torch::randn({V, C}, generator, torch::TensorOptions().dtype(torch::kFloat64)) * 0.5).to(dtype);
  c.targets = torch::randint(V, {N}, generator, torch::TensorOptions().dtype(torch::kInt64));
  c.upstream = torch::randn({N}, generator, torch::TensorOptions().dtype(torch::kFloat32));
  return c;
}

// Value, entropy and the gradients of Σ upstream · logp with respect to hidden and weight.
struct Outcome {
  torch::Tensor logprobs, entropy, grad_hidden, grad_weight;
};

template <typename Op>
Outcome run(const Case& c, Op op) {
  auto hidden = c.hidden.clone().requires_grad_(true);
  auto weight = c.weight.clone().requires_grad_(true);
  const auto out = op(hidden, weight);
  (out.logprobs * c.upstream).sum().backward();
  return {out.logprobs.detach(), out.entropy, hidden.grad(), weight.grad()};
}

void expect_close(const Outcome& a, const Outcome& b, double tolerance) {
  EXPECT_TRUE(torch::allclose(a.logprobs.to(torch::kFloat64), b.logprobs.to(torch::kFloat64), tolerance, tolerance))
      << (a.logprobs - b.logprobs).abs().max();
  EXPECT_TRUE(torch::allclose(a.entropy.to(torch::kFloat64), b.entropy.to(torch::kFloat64), tolerance, tolerance));
  EXPECT_TRUE(torch::allclose(a.grad_hidden.to(torch::kFloat64), b.grad_hidden.to(torch::kFloat64), tolerance, tolerance))
      << (a.grad_hidden - b.grad_hidden).abs().max();
  EXPECT_TRUE(torch::allclose(a.grad_weight.to(torch::kFloat64), b.grad_weight.to(torch::kFloat64), tolerance, tolerance))
      << (a.grad_weight - b.grad_weight).abs().max();
}

TEST(ChunkedTokenLogprobs, MatchesTheFullLogSoftmaxInValueEntropyAndGradients) {
  for (const double temperature : {1.0, 0.7}) {
    const auto c = make_case(37, 16, 53, torch::kFloat64, 1);
    const auto reference = run(c, [&](auto& h, auto& w) { return chunked_token_logprobs_reference(h, w, c.targets, temperature, true); });
    // 5 rows per chunk (4 · 53 · 5 bytes): 8 chunks, the last one of 2 rows; and one chunk holding everything.
    for (const std::int64_t chunk_bytes : {std::int64_t{4 * 53 * 5}, std::int64_t{1} << 30}) {
      const auto chunked = run(c, [&](auto& h, auto& w) { return chunked_token_logprobs(h, w, c.targets, temperature, true, chunk_bytes); });
      expect_close(chunked, reference, 1e-10);  // float64 throughout
    }
  }
}

TEST(ChunkedTokenLogprobs, HandComputedCase) {
  // One row, C = 1, V = 2: logits (2h, −h) with h = ln 2 / 3 → logits (2 ln 2 / 3, −ln 2 / 3); the target 0's
  // log-prob is −log(1 + e^{−ln 2}) = −log(1.5), and d/dh = 2 − (2 p0 − p1) = 2 − (4/3 − 1/3) = 1.
  auto hidden = torch::full({1, 1}, std::log(2.0) / 3.0, torch::kFloat64).requires_grad_(true);
  auto weight = torch::tensor({{2.0}, {-1.0}}, torch::kFloat64);
  const auto out = chunked_token_logprobs(hidden, weight, torch::tensor({std::int64_t{0}}));
  EXPECT_NEAR(out.logprobs.item<double>(), -std::log(1.5), 1e-12);
  out.logprobs.sum().backward();
  EXPECT_NEAR(hidden.grad().item<double>(), 1.0, 1e-12);
}

TEST(ChunkedTokenLogprobs, Float32AndBfloat16AgreeWithTheReferenceInTheirDtype) {
  const auto f32 = make_case(64, 32, 97, torch::kFloat32, 2);
  expect_close(run(f32, [&](auto& h, auto& w) { return chunked_token_logprobs(h, w, f32.targets, 1.0, true, 4 * 97 * 7); }),
               run(f32, [&](auto& h, auto& w) { return chunked_token_logprobs_reference(h, w, f32.targets, 1.0, true); }), 1e-4);
  const auto bf16 = make_case(64, 32, 97, torch::kBFloat16, 3);
  const auto chunked = run(bf16, [&](auto& h, auto& w) { return chunked_token_logprobs(h, w, bf16.targets, 1.0, true, 4 * 97 * 7); });
  const auto reference = run(bf16, [&](auto& h, auto& w) { return chunked_token_logprobs_reference(h, w, bf16.targets, 1.0, true); });
  EXPECT_EQ(chunked.grad_hidden.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(chunked.grad_weight.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::allclose(chunked.logprobs, reference.logprobs, 1e-5, 1e-5));  // float32 logits of the same bf16 matmul
  // The weight gradient sums over rows in float32 here and in bf16 in the reference: bf16 tolerance.
  EXPECT_TRUE(torch::allclose(chunked.grad_weight.to(torch::kFloat32), reference.grad_weight.to(torch::kFloat32), 2e-2, 2e-2));
  EXPECT_TRUE(torch::allclose(chunked.grad_hidden.to(torch::kFloat32), reference.grad_hidden.to(torch::kFloat32), 2e-2, 2e-2));
}

TEST(ChunkedTokenLogprobs, CallerMistakesAreErrors) {
  const auto c = make_case(4, 8, 10, torch::kFloat32, 4);
  EXPECT_THROW(chunked_token_logprobs(c.hidden, c.weight, torch::tensor({0, 1, 2, 10}, torch::kInt64)), c10::Error);   // past V
  EXPECT_THROW(chunked_token_logprobs(c.hidden, c.weight, torch::tensor({0, 1, -1, 2}, torch::kInt64)), c10::Error);   // negative
  EXPECT_THROW(chunked_token_logprobs(c.hidden, c.weight.t(), c.targets), c10::Error);                                // [C, V]
  EXPECT_THROW(chunked_token_logprobs(c.hidden, c.weight.to(torch::kFloat64), c.targets), c10::Error);                // dtypes
  EXPECT_THROW(chunked_token_logprobs(c.hidden, c.weight, c.targets.narrow(0, 0, 3)), c10::Error);                    // N
  EXPECT_THROW(chunked_token_logprobs(c.hidden, c.weight, c.targets, 0.0), c10::Error);                                // temperature
}

}  // namespace
}  // namespace grpo::kernels
