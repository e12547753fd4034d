// Decode attention on the CPU (see decode_attention.h): scores q·k for every (sequence, key/value head) group in one
// pass over its keys, ATen's vectorised softmax, then the probability-weighted sum of values in one pass over them.
#include "kernels/decode_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

namespace grpo::kernels {
namespace {

// Dot products in 16-wide vectors (GCC vector extensions: each target clone below compiles them to its own
// instructions), the lanes then added as a fixed tree of shuffles: the same association every run, and no chain of
// 16 dependent scalar additions per key.
constexpr std::int64_t kLanes = 16;
typedef float Vec16 __attribute__((vector_size(64)));
typedef float Vec8 __attribute__((vector_size(32)));
typedef float Vec4 __attribute__((vector_size(16)));

// ((p[l] + p[l+8]) + (p[l+4] + p[l+12])) …: lanes l and l + w added for w = 8, 4, 2, 1.
// (Vectors pass by reference: by value, a 64-byte vector's calling convention differs between the clones.)
[[gnu::always_inline]] inline float sum_lanes(const Vec16& p) {
  const Vec8 a = __builtin_shufflevector(p, p, 0, 1, 2, 3, 4, 5, 6, 7) + __builtin_shufflevector(p, p, 8, 9, 10, 11, 12, 13, 14, 15);
  const Vec4 b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
  return (b[0] + b[2]) + (b[1] + b[3]);
}

// Head size D known at compile time (Dim > 0) lets the loops unroll fully and keep a head's output in registers;
// Dim = 0 reads it from `dim`.
template <std::int64_t Dim>
[[gnu::always_inline]] inline void scores_impl(const float* q, std::int64_t q_head_stride, int group, const float* k, std::int64_t k_stride,
                                               const bool* mask, std::int64_t mask_stride, std::int64_t keys, std::int64_t dim, float scale,
                                               float* scores /* [group, keys] */) {
  const std::int64_t D = Dim > 0 ? Dim : dim;
  for (std::int64_t s = 0; s < keys; ++s) {
    if (!mask[s * mask_stride]) {
      for (int j = 0; j < group; ++j) scores[j * keys + s] = -std::numeric_limits<float>::infinity();
      continue;
    }
    const float* key = k + s * k_stride;
    for (int j = 0; j < group; ++j) {
      const float* query = q + j * q_head_stride;
      Vec16 partial = {};
      std::int64_t d = 0;
      for (; d + kLanes <= D; d += kLanes) {
        Vec16 a, b;
        __builtin_memcpy(&a, query + d, sizeof a);  // unaligned loads
        __builtin_memcpy(&b, key + d, sizeof b);
        partial += a * b;
      }
      float tail = 0.0f;
      for (; d < D; ++d) tail += query[d] * key[d];
      scores[j * keys + s] = (sum_lanes(partial) + tail) * scale;
    }
  }
}

template <std::int64_t Dim>
[[gnu::always_inline]] inline void values_impl(const float* probs /* [group, keys] */, int group, const float* v, std::int64_t v_stride,
                                               std::int64_t keys, std::int64_t dim, float* out, std::int64_t out_head_stride) {
  if constexpr (Dim > 0) {
    // One head at a time, its D sums in a local array (registers), the keys streamed past it.
    for (int j = 0; j < group; ++j) {
      float acc[Dim] = {};
      const float* p = probs + j * keys;
      for (std::int64_t s = 0; s < keys; ++s) {
        if (p[s] == 0.0f) continue;  // masked keys (and negligible ones) cost nothing
        const float* value = v + s * v_stride;
        for (std::int64_t d = 0; d < Dim; ++d) acc[d] += p[s] * value[d];
      }
      std::copy(acc, acc + Dim, out + j * out_head_stride);
    }
  } else {
    for (int j = 0; j < group; ++j) std::fill(out + j * out_head_stride, out + j * out_head_stride + dim, 0.0f);
    for (std::int64_t s = 0; s < keys; ++s) {
      const float* value = v + s * v_stride;
      for (int j = 0; j < group; ++j) {
        const float p = probs[j * keys + s];
        if (p == 0.0f) continue;
        float* o = out + j * out_head_stride;
        for (std::int64_t d = 0; d < dim; ++d) o[d] += p * value[d];
      }
    }
  }
}

// Built for AVX-512, AVX2 and baseline x86-64; the loader picks the best the CPU has. The common head sizes get
// their own unrolled bodies.
__attribute__((target_clones("avx512f", "avx2", "default")))
void group_scores(const float* q, std::int64_t q_head_stride, int group, const float* k, std::int64_t k_stride, const bool* mask,
                  std::int64_t mask_stride, std::int64_t keys, std::int64_t dim, float scale, float* scores) {
  switch (dim) {
    case 32: return scores_impl<32>(q, q_head_stride, group, k, k_stride, mask, mask_stride, keys, dim, scale, scores);
    case 64: return scores_impl<64>(q, q_head_stride, group, k, k_stride, mask, mask_stride, keys, dim, scale, scores);
    case 128: return scores_impl<128>(q, q_head_stride, group, k, k_stride, mask, mask_stride, keys, dim, scale, scores);
    default: return scores_impl<0>(q, q_head_stride, group, k, k_stride, mask, mask_stride, keys, dim, scale, scores);
  }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void group_values(const float* probs, int group, const float* v, std::int64_t v_stride, std::int64_t keys, std::int64_t dim, float* out,
                  std::int64_t out_head_stride) {
  switch (dim) {
    case 32: return values_impl<32>(probs, group, v, v_stride, keys, dim, out, out_head_stride);
    case 64: return values_impl<64>(probs, group, v, v_stride, keys, dim, out, out_head_stride);
    case 128: return values_impl<128>(probs, group, v, v_stride, keys, dim, out, out_head_stride);
    default: return values_impl<0>(probs, group, v, v_stride, keys, dim, out, out_head_stride);
  }
}

}  // namespace

torch::Tensor decode_attention_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& mask) {
  return at::scaled_dot_product_attention(q, k, v, mask, /*dropout_p=*/0.0, /*is_causal=*/false, /*scale=*/std::nullopt,
                                          /*enable_gqa=*/q.size(1) != k.size(1));
}

torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& mask) {
  TORCH_CHECK(q.device().is_cpu() && k.device().is_cpu() && v.device().is_cpu() && mask.device().is_cpu(), "decode_attention: CPU tensors only");
  TORCH_CHECK(q.scalar_type() == torch::kFloat32 && k.scalar_type() == torch::kFloat32 && v.scalar_type() == torch::kFloat32,
              "decode_attention: float32 only");
  TORCH_CHECK(mask.scalar_type() == torch::kBool, "decode_attention: mask must be bool");
  TORCH_CHECK(q.dim() == 4 && q.size(2) == 1, "decode_attention: q must be [B, H, 1, D], got ", q.sizes());
  TORCH_CHECK(k.dim() == 4 && v.sizes() == k.sizes(), "decode_attention: k and v must be [B, K, S, D] alike, got ", k.sizes(), " and ", v.sizes());
  const auto batch = q.size(0), heads = q.size(1), dim = q.size(3);
  const auto kv_heads = k.size(1), keys = k.size(2);
  TORCH_CHECK(k.size(0) == batch && k.size(3) == dim && heads % kv_heads == 0, "decode_attention: q ", q.sizes(), " does not fit k ", k.sizes());
  TORCH_CHECK(mask.dim() == 4 && mask.size(0) == batch && mask.size(1) == 1 && mask.size(2) == 1 && mask.size(3) == keys,
              "decode_attention: mask must be [B, 1, 1, S] = [", batch, ", 1, 1, ", keys, "], got ", mask.sizes());
  const auto qc = q.stride(3) == 1 ? q : q.contiguous();
  const auto kc = k.stride(3) == 1 ? k : k.contiguous();
  const auto vc = v.stride(3) == 1 ? v : v.contiguous();
  const int group = static_cast<int>(heads / kv_heads);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(dim)));

  // Pass 1: scores [B, H, S] (query heads of a group adjacent), then ATen's softmax over S.
  auto scores = torch::empty({batch, heads, keys}, q.options());
  const auto* q_data = qc.data_ptr<float>();
  const auto* k_data = kc.data_ptr<float>();
  const auto* m_data = mask.data_ptr<bool>();
  auto* s_data = scores.data_ptr<float>();
  const auto groups = batch * kv_heads;
  const auto grain = std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(1, keys * dim));
  at::parallel_for(0, groups, grain, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t g = begin; g < end; ++g) {
      const auto b = g / kv_heads, kh = g % kv_heads;
      group_scores(q_data + b * qc.stride(0) + kh * group * qc.stride(1), qc.stride(1), group, k_data + b * kc.stride(0) + kh * kc.stride(1),
                   kc.stride(2), m_data + b * mask.stride(0), mask.stride(3), keys, dim, scale, s_data + (b * heads + kh * group) * keys);
    }
  });
  const auto probs = scores.softmax(-1);
  // Pass 2: out [B, H, 1, D] = probs · v.
  auto out = torch::empty({batch, heads, 1, dim}, q.options());
  const auto* p_data = probs.data_ptr<float>();
  const auto* v_data = vc.data_ptr<float>();
  auto* o_data = out.data_ptr<float>();
  at::parallel_for(0, groups, grain, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t g = begin; g < end; ++g) {
      const auto b = g / kv_heads, kh = g % kv_heads;
      group_values(p_data + (b * heads + kh * group) * keys, group, v_data + b * vc.stride(0) + kh * vc.stride(1), vc.stride(2), keys, dim,
                   o_data + (b * heads + kh * group) * dim, dim);
    }
  });
  return out;
}

}  // namespace grpo::kernels
