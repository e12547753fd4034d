// The fused GRPO token loss on CUDA: one thread per token, the per-token function shared with the CPU loop.
#include "kernels/grpo_token_loss.h"

#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include "kernels/grpo_token_loss_element.h"

namespace grpo::kernels::detail {
namespace {

template <typename T>
__global__ void token_loss_kernel(const T* __restrict__ logp, const T* __restrict__ old, const T* __restrict__ ref, const T* __restrict__ adv,
                                  const T* __restrict__ weight, T* __restrict__ loss, T* __restrict__ dloss, T* __restrict__ ratio,
                                  T* __restrict__ kl, std::int64_t n, std::int64_t T_width, TokenLossScalars s) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<std::int64_t>(blockDim.x) * gridDim.x) {
    const bool has_ref = ref != nullptr;
    const auto e = token_loss_element<T>(logp[i], old[i], has_ref ? ref[i] : T(0), has_ref, adv[i / T_width], weight != nullptr ? weight[i] : T(1), s);
    loss[i] = e.loss;
    dloss[i] = e.dloss;
    ratio[i] = e.ratio;
    if (has_ref) kl[i] = e.kl;
  }
}

}  // namespace

void grpo_token_loss_cuda(const torch::Tensor& logp, const torch::Tensor& old, const torch::Tensor& ref, const torch::Tensor& adv,
                          const torch::Tensor& weight, const TokenLossParams& params, TokenLossOutputs& out) {
  const c10::cuda::CUDAGuard guard(logp.device());
  const TokenLossScalars s{1.0 - params.clip_eps_low, 1.0 + params.clip_eps_high, params.dual_clip, params.kl_beta,
                           params.kl == KlKind::kK1 ? 0 : (params.kl == KlKind::kK2 ? 1 : 2)};
  const auto n = logp.numel();
  if (n == 0) return;
  constexpr int kThreads = 256;
  const auto blocks = static_cast<unsigned>(std::min<std::int64_t>((n + kThreads - 1) / kThreads, 65535));
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(logp.scalar_type(), "grpo_token_loss_cuda", [&] {
    token_loss_kernel<scalar_t><<<blocks, kThreads, 0, stream>>>(
        logp.data_ptr<scalar_t>(), old.data_ptr<scalar_t>(), ref.defined() ? ref.data_ptr<scalar_t>() : nullptr, adv.data_ptr<scalar_t>(),
        weight.defined() ? weight.data_ptr<scalar_t>() : nullptr, out.loss.data_ptr<scalar_t>(), out.dloss.data_ptr<scalar_t>(),
        out.ratio.data_ptr<scalar_t>(), ref.defined() ? out.kl.data_ptr<scalar_t>() : nullptr, n, logp.size(1), s);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace grpo::kernels::detail
