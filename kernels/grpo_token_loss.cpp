// The fused GRPO token loss: input checks, the autograd wrapper, the CPU loop and the reference (see grpo_token_loss.h).
#include "kernels/grpo_token_loss.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "kernels/grpo_token_loss_element.h"

namespace grpo::kernels {
namespace {

detail::TokenLossScalars scalars_of(const TokenLossParams& p) {
  return {1.0 - p.clip_eps_low, 1.0 + p.clip_eps_high, p.dual_clip, p.kl_beta, p.kl == KlKind::kK1 ? 0 : (p.kl == KlKind::kK2 ? 1 : 2)};
}

void check_inputs(const torch::Tensor& logp, const torch::Tensor& old, const torch::Tensor& ref, const torch::Tensor& adv, const torch::Tensor& weight,
                  const TokenLossParams& params) {
  TORCH_CHECK(logp.dim() == 2 && logp.sizes() == old.sizes(), "grpo_token_loss: logprobs ", logp.sizes(), " and old_logprobs ", old.sizes(),
              " must be the same [B, T]");
  TORCH_CHECK(at::isFloatingType(logp.scalar_type()) && old.scalar_type() == logp.scalar_type(), "grpo_token_loss: logprobs and old_logprobs must share a floating dtype");
  TORCH_CHECK(adv.dim() == 1 && adv.size(0) == logp.size(0), "grpo_token_loss: advantages must be [B] with B = ", logp.size(0), ", got ", adv.sizes());
  TORCH_CHECK(!ref.defined() || ref.sizes() == logp.sizes(), "grpo_token_loss: ref_logprobs must be [B, T] like logprobs");
  TORCH_CHECK(!weight.defined() || weight.sizes() == logp.sizes(), "grpo_token_loss: tis_weight must be [B, T] like logprobs");
  TORCH_CHECK(params.kl_beta == 0.0 || ref.defined(), "grpo_token_loss: kl_beta != 0 needs ref_logprobs");
  TORCH_CHECK(params.dual_clip == 0.0 || params.dual_clip > 1.0, "grpo_token_loss: dual_clip must exceed 1 (verl uses 3), got ", params.dual_clip);
  for (const auto* t : {&old, &ref, &adv, &weight}) {
    TORCH_CHECK(!t->defined() || t->device() == logp.device(), "grpo_token_loss: tensors on different devices");
  }
}

class TokenLossFunction : public torch::autograd::Function<TokenLossFunction> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& logp, const torch::Tensor& old,
                                                const torch::Tensor& ref, const torch::Tensor& adv, const torch::Tensor& weight, bool has_ref,
                                                bool has_weight, const TokenLossParams& params) {
    // Absent inputs arrive as empty tensors with their flag false (autograd wants every tensor argument defined).
    const auto dtype = logp.scalar_type();
    auto contiguous = [&](const torch::Tensor& t) { return t.detach().to(dtype).contiguous(); };
    const auto logp_c = contiguous(logp), old_c = contiguous(old), adv_c = contiguous(adv);
    const auto ref_c = has_ref ? contiguous(ref) : torch::Tensor(), weight_c = has_weight ? contiguous(weight) : torch::Tensor();
    detail::TokenLossOutputs out;
    out.loss = torch::empty_like(logp_c);
    out.dloss = torch::empty_like(logp_c);
    out.ratio = torch::empty_like(logp_c);
    out.kl = has_ref ? torch::empty_like(logp_c) : torch::empty({0}, logp_c.options());
#ifdef GRPO_HAVE_CUDA
    if (logp_c.is_cuda()) {
      detail::grpo_token_loss_cuda(logp_c, old_c, ref_c, adv_c, weight_c, params, out);
    } else
#endif
    {
      TORCH_CHECK(logp_c.is_cpu(), "grpo_token_loss: no kernel for ", logp_c.device(), " in this build");
      detail::grpo_token_loss_cpu(logp_c, old_c, ref_c, adv_c, weight_c, params, out);
    }
    ctx->save_for_backward({out.dloss});
    ctx->mark_non_differentiable({out.ratio, out.kl});
    return {out.loss, out.ratio, out.kl};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    const auto dloss = ctx->get_saved_variables()[0];
    auto grad = grads[0].defined() ? grads[0] * dloss : torch::Tensor();
    return {grad, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

namespace detail {

void grpo_token_loss_cpu(const torch::Tensor& logp, const torch::Tensor& old, const torch::Tensor& ref, const torch::Tensor& adv,
                         const torch::Tensor& weight, const TokenLossParams& params, TokenLossOutputs& out) {
  const auto s = scalars_of(params);
  const auto T = logp.size(1);
  const bool has_ref = ref.defined(), has_weight = weight.defined();
  AT_DISPATCH_FLOATING_TYPES(logp.scalar_type(), "grpo_token_loss_cpu", [&] {
    const auto* lp = logp.data_ptr<scalar_t>();
    const auto* op = old.data_ptr<scalar_t>();
    const auto* rp = has_ref ? ref.data_ptr<scalar_t>() : nullptr;
    const auto* ap = adv.data_ptr<scalar_t>();
    const auto* wp = has_weight ? weight.data_ptr<scalar_t>() : nullptr;
    auto* loss = out.loss.data_ptr<scalar_t>();
    auto* dloss = out.dloss.data_ptr<scalar_t>();
    auto* ratio = out.ratio.data_ptr<scalar_t>();
    auto* kl = has_ref ? out.kl.data_ptr<scalar_t>() : nullptr;
    at::parallel_for(0, logp.numel(), 4096, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i) {
        const auto e = token_loss_element<scalar_t>(lp[i], op[i], has_ref ? rp[i] : scalar_t(0), has_ref, ap[i / T],
                                                    has_weight ? wp[i] : scalar_t(1), s);
        loss[i] = e.loss;
        dloss[i] = e.dloss;
        ratio[i] = e.ratio;
        if (has_ref) kl[i] = e.kl;
      }
    });
  });
}

}  // namespace detail

TokenLoss grpo_token_loss(const torch::Tensor& logprobs, const torch::Tensor& old_logprobs, const torch::Tensor& ref_logprobs,
                          const torch::Tensor& advantages, const torch::Tensor& tis_weight, const TokenLossParams& params) {
  check_inputs(logprobs, old_logprobs, ref_logprobs, advantages, tis_weight, params);
  const auto absent = torch::empty({0}, logprobs.options().requires_grad(false));
  const auto outputs = TokenLossFunction::apply(logprobs, old_logprobs, ref_logprobs.defined() ? ref_logprobs : absent, advantages,
                                                tis_weight.defined() ? tis_weight : absent, ref_logprobs.defined(), tis_weight.defined(), params);
  TokenLoss result;
  result.loss = outputs[0];
  result.ratio = outputs[1];
  if (ref_logprobs.defined()) result.kl = outputs[2];
  return result;
}

TokenLoss grpo_token_loss_reference(const torch::Tensor& logprobs, const torch::Tensor& old_logprobs, const torch::Tensor& ref_logprobs,
                                    const torch::Tensor& advantages, const torch::Tensor& tis_weight, const TokenLossParams& params) {
  check_inputs(logprobs, old_logprobs, ref_logprobs, advantages, tis_weight, params);
  const auto adv = advantages.to(logprobs.scalar_type()).unsqueeze(1);
  const auto ratio = (logprobs - old_logprobs).exp();
  auto surrogate = torch::max(-adv * ratio, -adv * ratio.clamp(1.0 - params.clip_eps_low, 1.0 + params.clip_eps_high));
  if (params.dual_clip > 0.0) surrogate = torch::where(adv < 0, torch::min(-adv * params.dual_clip, surrogate), surrogate);
  if (tis_weight.defined()) surrogate = surrogate * tis_weight.detach();
  TokenLoss out;
  out.loss = surrogate;
  out.ratio = ratio.detach();
  if (ref_logprobs.defined()) {
    const auto log_ratio = logprobs - ref_logprobs;
    torch::Tensor kl;
    switch (params.kl) {
      case KlKind::kK1: kl = log_ratio; break;
      case KlKind::kK2: kl = 0.5 * log_ratio * log_ratio; break;
      case KlKind::kK3: kl = (-log_ratio).exp() + log_ratio - 1.0; break;
    }
    out.loss = out.loss + params.kl_beta * kl;
    out.kl = kl.detach();
  }
  return out;
}

}  // namespace grpo::kernels
