// Log-probabilities of chosen tokens straight from the final hidden states and the output projection, in chunks of
// rows, forward and backward: the [N, V] float32 logits (N = batch × completion tokens, V up to 152k) never exist at
// once. Peak extra memory is one chunk's [rows, V] logits, against N × V × 4 bytes (plus as much again for the
// log-softmax and its gradient) for the naive path: for 16k tokens and Qwen's 151,936-word vocabulary, 10 GB of
// logits naive against 0.27 GB for one chunk of the default 256 MiB budget (441 rows).
//
// The same idea as Liger-Kernel's fused linear cross-entropy, written as chunked ATen operators so that one code
// runs on the CPU and on CUDA (where the matmuls dominate and are cuBLAS's).
//
// Shapes: N rows, C hidden size, V vocabulary.
#pragma once

#include <cstdint>

#include <torch/types.h>

namespace grpo::kernels {

struct ChunkedLogprobs {
  torch::Tensor logprobs;  // [N] float32 (float64 for float64 inputs), differentiable in hidden and weight
  torch::Tensor entropy;   // [N] the same dtype, detached; undefined unless asked for
};

// hidden [N, C] and weight [V, C] of one floating dtype (any device, the same for both); targets [N] int64 in [0, V).
// logprobs[n] = log softmax(hidden[n] · weightᵀ / temperature)[targets[n]], computed in float32 (in float64 for
// float64 inputs); the gradient is
// computed chunk by chunk again in backward (recomputing each chunk's logits: one extra matmul per chunk).
// chunk_bytes bounds one chunk's float32 logits (rows = max(1, chunk_bytes / (4 V))).
// Throws c10::Error for mismatched shapes, dtypes or devices, a non-positive temperature or a target outside [0, V).
ChunkedLogprobs chunked_token_logprobs(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
                                       double temperature = 1.0, bool with_entropy = false,
                                       std::int64_t chunk_bytes = std::int64_t{256} << 20);

// The definition: (hidden · weightᵀ).float() / temperature, log_softmax, gather. Materialises [N, V].
ChunkedLogprobs chunked_token_logprobs_reference(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
                                                 double temperature = 1.0, bool with_entropy = false);

}  // namespace grpo::kernels
