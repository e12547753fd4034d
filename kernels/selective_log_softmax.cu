// Fused CUDA selective log-softmax: one block per row and a single pass over the row that keeps a running max and a
// running sum of exponentials (online softmax, Milakov & Gimelshein 2018, arXiv:1805.02867).
#include "kernels/selective_log_softmax.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <cmath>
#include <cstdint>
#include <limits>

namespace grpo::kernels {
namespace {

constexpr int kThreads = 512;  // threads per block, one block per row
constexpr int kWarpSize = 32;
constexpr int kWarps = kThreads / kWarpSize;
constexpr int kVectorBytes = 16;  // one 128-bit load per thread per step
constexpr unsigned kFullWarpMask = 0xffffffffu;

// kVectorBytes of T, read as one 128-bit load.
template <typename T>
struct alignas(kVectorBytes) Pack {
  static constexpr int kSize = kVectorBytes / static_cast<int>(sizeof(T));
  T value[kSize];
};

// Running max of the elements seen and the sum of exp(x − max) over them; nothing seen is (−inf, 0).
struct OnlineLse {
  float max;
  float sum;
};

// The exponent base for a running max m: while only −inf has been seen (m = −inf) it is 0, so exp(−inf − base) is 0
// rather than exp(−inf + inf) = NaN (the same guard as FlashAttention's). NaN logits still reach the sum.
__device__ __forceinline__ float exponent_base(float m) { return m == -INFINITY ? 0.f : m; }

__device__ __forceinline__ OnlineLse merge(OnlineLse a, OnlineLse b) {
  const float m = fmaxf(a.max, b.max);
  const float base = exponent_base(m);
  return {m, a.sum * expf(a.max - base) + b.sum * expf(b.max - base)};
}

// One rescale of the running sum per pack rather than one per element.
template <typename T>
__device__ __forceinline__ OnlineLse add_pack(OnlineLse state, const Pack<T>& pack) {
  float x[Pack<T>::kSize];
  float pack_max = -INFINITY;
#pragma unroll
  for (int i = 0; i < Pack<T>::kSize; ++i) {
    x[i] = static_cast<float>(pack.value[i]);
    pack_max = fmaxf(pack_max, x[i]);
  }
  const float m = fmaxf(state.max, pack_max);
  const float base = exponent_base(m);
  float sum = state.sum * expf(state.max - base);
#pragma unroll
  for (int i = 0; i < Pack<T>::kSize; ++i) {
    sum += expf(x[i] - base);
  }
  return {m, sum};
}

__device__ __forceinline__ OnlineLse warp_reduce(OnlineLse state) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    const OnlineLse other{__shfl_xor_sync(kFullWarpMask, state.max, offset),
                          __shfl_xor_sync(kFullWarpMask, state.sum, offset)};
    state = merge(state, other);
  }
  return state;
}

// The row's (max, sum) in thread 0; other threads hold partial states.
__device__ __forceinline__ OnlineLse block_reduce(OnlineLse state) {
  __shared__ float warp_max[kWarps];
  __shared__ float warp_sum[kWarps];
  const int lane = static_cast<int>(threadIdx.x) % kWarpSize;
  const int warp = static_cast<int>(threadIdx.x) / kWarpSize;
  state = warp_reduce(state);
  if (lane == 0) {
    warp_max[warp] = state.max;
    warp_sum[warp] = state.sum;
  }
  __syncthreads();
  if (warp == 0) {
    state = lane < kWarps ? OnlineLse{warp_max[lane], warp_sum[lane]} : OnlineLse{-INFINITY, 0.f};
    state = warp_reduce(state);
  }
  return state;
}

// logits rows of `vocab` contiguous elements, `row_stride` elements apart; targets [N]; out [N] float32.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    selective_log_softmax_kernel(const T* __restrict__ logits, int64_t row_stride, const int64_t* __restrict__ targets,
                                 float* __restrict__ out, int64_t vocab) {
  const int64_t row = blockIdx.x;
  const int64_t tid = threadIdx.x;
  const T* x = logits + row * row_stride;

  // Thread 0 issues the target's load first so that it overlaps the pass; a target outside [0, V) gives NaN.
  float target_logit = NAN;
  if (tid == 0) {
    const int64_t target = targets[row];
    if (target >= 0 && target < vocab) {
      target_logit = static_cast<float>(x[target]);
    }
  }

  // A row splits into the elements before its first 16-byte boundary (rows start unaligned when V·sizeof(T) is
  // not a multiple of 16 or the tensor has an offset), an aligned body read in packs, and the remainder.
  constexpr int kPackSize = Pack<T>::kSize;
  const auto misalignment = static_cast<int64_t>(reinterpret_cast<std::uintptr_t>(x) % kVectorBytes);
  const int64_t to_boundary = misalignment == 0 ? 0 : (kVectorBytes - misalignment) / static_cast<int64_t>(sizeof(T));
  const int64_t head = to_boundary < vocab ? to_boundary : vocab;
  const int64_t num_packs = (vocab - head) / kPackSize;
  const int64_t tail_begin = head + num_packs * kPackSize;

  OnlineLse state{-INFINITY, 0.f};
  for (int64_t i = tid; i < head; i += kThreads) {
    state = merge(state, OnlineLse{static_cast<float>(x[i]), 1.f});
  }
  const auto* packs = reinterpret_cast<const Pack<T>*>(x + head);
  for (int64_t p = tid; p < num_packs; p += kThreads) {
    const Pack<T> pack = packs[p];
    state = add_pack(state, pack);
  }
  for (int64_t i = tail_begin + tid; i < vocab; i += kThreads) {
    state = merge(state, OnlineLse{static_cast<float>(x[i]), 1.f});
  }

  state = block_reduce(state);
  if (tid == 0) {
    out[row] = target_logit - state.max - logf(state.sum);
  }
}

template <typename T>
void launch(const torch::Tensor& logits, const torch::Tensor& targets, torch::Tensor& out) {
  // logits [N, V] with unit stride along V, targets [N] contiguous, out [N] float32
  selective_log_softmax_kernel<T>
      <<<static_cast<unsigned>(logits.size(0)), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
          logits.const_data_ptr<T>(), logits.stride(0), targets.const_data_ptr<int64_t>(),
          out.mutable_data_ptr<float>(), logits.size(1));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

torch::Tensor selective_log_softmax_cuda(const torch::Tensor& logits, const torch::Tensor& targets) {
  // logits [N, V], targets [N] -> [N] float32
  detail::check_selective_log_softmax_inputs(logits, targets);
  TORCH_CHECK(logits.is_cuda(), "selective_log_softmax_cuda: logits must be on a CUDA device, got ", logits.device());
  TORCH_CHECK(logits.size(0) <= std::numeric_limits<int32_t>::max(), "selective_log_softmax_cuda: ", logits.size(0),
              " rows exceed the grid limit of 2^31 - 1 blocks");
  const c10::cuda::CUDAGuard device_guard(logits.device());
  // Only the vocabulary dimension must be unit-stride; a row stride (e.g. a slice of wider logits) costs nothing.
  const torch::Tensor rows = logits.stride(1) == 1 ? logits : logits.contiguous();
  const torch::Tensor row_targets = targets.contiguous();
  auto out = torch::empty({logits.size(0)}, logits.options().dtype(torch::kFloat32));
  if (logits.size(0) == 0) {
    return out;
  }
  switch (rows.scalar_type()) {
    case torch::kFloat32:
      launch<float>(rows, row_targets, out);
      break;
    case torch::kBFloat16:
      launch<c10::BFloat16>(rows, row_targets, out);
      break;
    case torch::kFloat16:
      launch<c10::Half>(rows, row_targets, out);
      break;
    default:
      TORCH_CHECK(false, "selective_log_softmax_cuda: unsupported logits dtype ", rows.scalar_type());
  }
  return out;
}

}  // namespace grpo::kernels
