// Fused CPU versions of two small decoder operations that a decode step runs dozens of times: RMSNorm and the
// rotary position embedding. Unfused, each is 5 to 7 ATen operations on tensors of a few thousand elements, where
// dispatch costs more than the arithmetic; on the embedded policy they were a fifth of a decode step. Inference only
// (no autograd); each beside the reference formula it must match (Hugging Face's modeling_llama.py).
#pragma once

#include <torch/types.h>

namespace grpo::kernels {

// x [..., C] float32 CPU (last dimension contiguous), weight [C] float32 → weight · x / sqrt(mean(x²) + eps).
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);
// Hugging Face's LlamaRMSNorm: normalise in float32, then scale in the input dtype. Differentiable, any device.
torch::Tensor rms_norm_reference(const torch::Tensor& x, const torch::Tensor& weight, double eps);

// x [B, H, T, D] float32 CPU (any strides, last dimension contiguous), cos/sin [B, 1, T, D] float32 →
// x · cos + rotate_half(x) · sin, where rotate_half(x) = (−x[D/2:], x[:D/2]). Returns a contiguous tensor.
torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);
torch::Tensor apply_rotary_reference(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

// Whether the fused versions apply: CPU float32 tensors and no gradient to record.
bool fused_cpu_inference(const torch::Tensor& x);

}  // namespace grpo::kernels
