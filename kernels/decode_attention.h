// Decode attention: one new query per sequence against its KV cache, the hot spot of generation on the CPU once the
// batch is large. SDPA's CPU kernels and a batched matmul both spend most of a decode step here on many tiny
// matrix products (one per sequence and head); this kernel walks each sequence's cache once per key/value head and
// serves all the query heads that share it (grouped-query attention) from that one read.
#pragma once

#include <torch/types.h>

namespace grpo::kernels {

// Shapes: B sequences, H query heads, K key/value heads (H a multiple of K; query head h uses key/value head
// h / (H / K), as transformers' repeat_kv), S key positions, D head size.
//   q     [B, H, 1, D]  float32
//   k, v  [B, K, S, D]  float32; any strides with the last dimension contiguous (a view into a preallocated cache)
//   mask  [B, 1, 1, S]  bool, true = may attend; every row must allow at least one key
//   result [B, H, 1, D] float32: softmax(q kᵀ / sqrt(D) masked) v
// CPU only. Throws c10::Error for other dtypes, devices or shapes.
torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& mask);

// Defines the meaning: ATen's scaled_dot_product_attention with enable_gqa (any device and dtype).
torch::Tensor decode_attention_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& mask);

}  // namespace grpo::kernels
