// Fused CPU RMSNorm and rotary embedding (see cpu_decode_ops.h).
#include "kernels/cpu_decode_ops.h"

#include <algorithm>
#include <cmath>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

namespace grpo::kernels {
namespace {

constexpr std::int64_t kLanes = 16;

__attribute__((target_clones("avx512f", "avx2", "default")))
void rms_norm_row(const float* x, const float* w, std::int64_t size, float eps, float* out) {
  float partial[kLanes] = {};
  std::int64_t i = 0;
  for (; i + kLanes <= size; i += kLanes) {
    for (std::int64_t l = 0; l < kLanes; ++l) partial[l] += x[i + l] * x[i + l];
  }
  float sum = 0.0f;
  for (; i < size; ++i) sum += x[i] * x[i];
  for (std::int64_t l = 0; l < kLanes; ++l) sum += partial[l];
  const float scale = 1.0f / std::sqrt(sum / static_cast<float>(size) + eps);
  for (std::int64_t j = 0; j < size; ++j) out[j] = w[j] * (x[j] * scale);
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void rotary_row(const float* x, const float* c, const float* s, std::int64_t half, float* out) {
  for (std::int64_t d = 0; d < half; ++d) {
    out[d] = x[d] * c[d] - x[d + half] * s[d];
    out[d + half] = x[d + half] * c[d + half] + x[d] * s[d + half];
  }
}

}  // namespace

bool fused_cpu_inference(const torch::Tensor& x) {
  return x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && !(torch::GradMode::is_enabled() && x.requires_grad());
}

torch::Tensor rms_norm_reference(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  const auto x32 = x.to(torch::kFloat32);
  const auto normed = x32 * torch::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * normed.to(x.scalar_type());
}

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && weight.scalar_type() == torch::kFloat32,
              "rms_norm: CPU float32 tensors only");
  const auto size = x.size(-1);
  TORCH_CHECK(weight.dim() == 1 && weight.size(0) == size, "rms_norm: weight must be [", size, "], got ", weight.sizes());
  const auto input = x.contiguous();
  const auto w = weight.contiguous();
  auto out = torch::empty_like(input);
  const auto rows = input.numel() / std::max<std::int64_t>(size, 1);
  const auto* in = input.data_ptr<float>();
  const auto* wd = w.data_ptr<float>();
  auto* o = out.data_ptr<float>();
  at::parallel_for(0, rows, std::max<std::int64_t>(1, 32768 / std::max<std::int64_t>(size, 1)), [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r) rms_norm_row(in + r * size, wd, size, static_cast<float>(eps), o + r * size);
  });
  return out;
}

torch::Tensor apply_rotary_reference(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const auto half = x.size(-1) / 2;
  const auto rotated = torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos + rotated * sin;
}

torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && cos.scalar_type() == torch::kFloat32 &&
                  sin.scalar_type() == torch::kFloat32,
              "apply_rotary: CPU float32 tensors only");
  TORCH_CHECK(x.dim() == 4 && x.size(-1) % 2 == 0, "apply_rotary: x must be [B, H, T, D] with D even, got ", x.sizes());
  const auto batch = x.size(0), heads = x.size(1), steps = x.size(2), dim = x.size(3);
  TORCH_CHECK(cos.sizes() == sin.sizes() && cos.dim() == 4 && cos.size(0) == batch && cos.size(1) == 1 && cos.size(2) == steps &&
                  cos.size(3) == dim,
              "apply_rotary: cos and sin must be [B, 1, T, D] = [", batch, ", 1, ", steps, ", ", dim, "], got ", cos.sizes(), " and ", sin.sizes());
  const auto input = x.stride(3) == 1 ? x : x.contiguous();
  const auto c = cos.contiguous(), s = sin.contiguous();
  auto out = torch::empty({batch, heads, steps, dim}, x.options());
  const auto* in = input.data_ptr<float>();
  const auto* cd = c.data_ptr<float>();
  const auto* sd = s.data_ptr<float>();
  auto* o = out.data_ptr<float>();
  const auto rows = batch * heads * steps;
  at::parallel_for(0, rows, std::max<std::int64_t>(1, 32768 / dim), [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r) {
      const auto b = r / (heads * steps), h = (r / steps) % heads, t = r % steps;
      rotary_row(in + b * input.stride(0) + h * input.stride(1) + t * input.stride(2), cd + (b * steps + t) * dim, sd + (b * steps + t) * dim,
                 dim / 2, o + r * dim);
    }
  });
  return out;
}

}  // namespace grpo::kernels
