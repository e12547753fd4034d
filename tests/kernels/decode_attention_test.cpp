// The CPU decode-attention kernel against its reference (ATen's SDPA with grouped-query heads) on random inputs:
// head ratios 1, 2 and 7, head sizes off the vector width, strided cache views, masked keys, and bad inputs.
#include <gtest/gtest.h>

#include "kernels/decode_attention.h"

namespace grpo::kernels {
namespace {

struct Case {
  std::int64_t batch, heads, kv_heads, keys, dim;
};

TEST(DecodeAttention, MatchesTheReference) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(3);
  const auto options = torch::TensorOptions().dtype(torch::kFloat32);
  for (const auto& c : {Case{3, 4, 2, 17, 32}, Case{2, 7, 1, 40, 24}, Case{5, 4, 4, 1, 16}, Case{1, 14, 2, 300, 64}, Case{2, 8, 2, 50, 128}, Case{2, 2, 1, 9, 130}}) {
    const auto q = at::normal(0.0, 1.0, {c.batch, c.heads, 1, c.dim}, generator, options);
    // The cache is a view into a longer buffer, as in generation.
    const auto k_buffer = at::normal(0.0, 1.0, {c.batch, c.kv_heads, c.keys + 11, c.dim}, generator, options);
    const auto v_buffer = at::normal(0.0, 1.0, {c.batch, c.kv_heads, c.keys + 11, c.dim}, generator, options);
    const auto k = k_buffer.narrow(2, 0, c.keys), v = v_buffer.narrow(2, 0, c.keys);
    auto mask = at::rand({c.batch, c.keys}, generator) > 0.3;
    mask.select(1, c.keys - 1).fill_(true);  // each row sees at least its own key
    const auto mask4 = mask.unsqueeze(1).unsqueeze(1);
    const auto expected = decode_attention_reference(q, k, v, mask4);
    const auto actual = decode_attention(q, k, v, mask4);
    ASSERT_EQ(actual.sizes(), expected.sizes());
    EXPECT_LT((actual - expected).abs().max().item<double>(), 1e-5) << c.batch << "x" << c.heads << "/" << c.kv_heads << " S=" << c.keys << " D=" << c.dim;
  }
}

TEST(DecodeAttention, MaskedKeysDoNotMatterWhateverTheyHold) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(4);
  const auto q = at::normal(0.0, 1.0, {2, 4, 1, 8}, generator, torch::TensorOptions());
  auto k = at::normal(0.0, 1.0, {2, 2, 6, 8}, generator, torch::TensorOptions());
  auto v = at::normal(0.0, 1.0, {2, 2, 6, 8}, generator, torch::TensorOptions());
  auto mask = torch::ones({2, 1, 1, 6}, torch::kBool);
  mask.narrow(3, 0, 2).fill_(false);
  const auto before = decode_attention(q, k, v, mask);
  k.narrow(2, 0, 2).fill_(1e30);
  v.narrow(2, 0, 2).fill_(std::nanf(""));
  EXPECT_TRUE(torch::allclose(decode_attention(q, k, v, mask), before));
}

TEST(DecodeAttention, RejectsWhatItDoesNotHandle) {
  const auto q = torch::zeros({2, 4, 1, 8});
  const auto k = torch::zeros({2, 2, 5, 8});
  const auto mask = torch::ones({2, 1, 1, 5}, torch::kBool);
  EXPECT_THROW(decode_attention(q.to(torch::kBFloat16), k, k, mask), c10::Error);
  EXPECT_THROW(decode_attention(torch::zeros({2, 4, 2, 8}), k, k, mask), c10::Error);  // two queries
  EXPECT_THROW(decode_attention(torch::zeros({2, 3, 1, 8}), k, k, mask), c10::Error);  // 3 heads over 2 kv heads
  EXPECT_THROW(decode_attention(q, k, k, torch::ones({2, 1, 1, 4}, torch::kBool)), c10::Error);
  EXPECT_THROW(decode_attention(q, k, k, mask.to(torch::kFloat32)), c10::Error);
}

}  // namespace
}  // namespace grpo::kernels
