// One token of the GRPO loss and its derivative with respect to the policy log-prob: the function the CPU loop and
// the CUDA kernel of grpo_token_loss share (see grpo_token_loss.h for the formula).
#pragma once

#include <cmath>

#if defined(__CUDACC__)
#define GRPO_HOST_DEVICE __host__ __device__
#else
#define GRPO_HOST_DEVICE
#endif

namespace grpo::kernels::detail {

struct TokenLossScalars {
  double clip_low;   // 1 − ε_low
  double clip_high;  // 1 + ε_high
  double dual_clip;  // 0: off
  double kl_beta;
  int kl_kind;  // 0: k1, 1: k2, 2: k3
};

template <typename T>
struct TokenLossElement {
  T loss, dloss, ratio, kl;
};

// PyTorch's max(a, b) sends the gradient to the larger argument and half to each on a tie; min likewise.
template <typename T>
GRPO_HOST_DEVICE inline TokenLossElement<T> token_loss_element(T logp, T old, T ref, bool has_ref, T adv, T weight, const TokenLossScalars& s) {
  using std::exp;
  TokenLossElement<T> e{};
  const T ratio = exp(logp - old);
  const T clipped_ratio = ratio < T(s.clip_low) ? T(s.clip_low) : (ratio > T(s.clip_high) ? T(s.clip_high) : ratio);
  const T unclipped = -adv * ratio;
  const T clipped = -adv * clipped_ratio;
  const bool clamp_passes = ratio >= T(s.clip_low) && ratio <= T(s.clip_high);
  // d/dlogp of each branch: ρ' = ρ; the clipped branch only where the clamp passes its input through.
  const T d_unclipped = -adv * ratio;
  const T d_clipped = clamp_passes ? -adv * ratio : T(0);
  T surrogate, d_surrogate;
  if (unclipped > clipped) {
    surrogate = unclipped, d_surrogate = d_unclipped;
  } else if (unclipped < clipped) {
    surrogate = clipped, d_surrogate = d_clipped;
  } else {
    surrogate = unclipped, d_surrogate = T(0.5) * (d_unclipped + d_clipped);
  }
  if (s.dual_clip > 0.0 && adv < T(0)) {
    const T cap = -adv * T(s.dual_clip);  // a constant: its gradient is nothing
    if (surrogate > cap) {
      surrogate = cap, d_surrogate = T(0);
    } else if (surrogate == cap) {
      d_surrogate = T(0.5) * d_surrogate;
    }
  }
  e.loss = weight * surrogate;
  e.dloss = weight * d_surrogate;
  e.ratio = ratio;
  if (has_ref) {
    const T log_ratio = logp - ref;  // log π_θ / π_ref
    T kl, d_kl;
    if (s.kl_kind == 0) {
      kl = log_ratio, d_kl = T(1);
    } else if (s.kl_kind == 1) {
      kl = T(0.5) * log_ratio * log_ratio, d_kl = log_ratio;
    } else {
      const T inverse = exp(-log_ratio);  // π_ref / π_θ
      kl = inverse + log_ratio - T(1), d_kl = T(1) - inverse;
    }
    e.kl = kl;
    e.loss += T(s.kl_beta) * kl;
    e.dloss += T(s.kl_beta) * d_kl;
  }
  return e;
}

}  // namespace grpo::kernels::detail
