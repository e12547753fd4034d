// Chunked log-probs from hidden states (see chunked_token_logprobs.h).
#include "kernels/chunked_token_logprobs.h"

#include <algorithm>

#include <torch/torch.h>

#include "kernels/autocast.h"

namespace grpo::kernels {
namespace {

void check_inputs(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets, double temperature) {
  TORCH_CHECK(hidden.dim() == 2 && weight.dim() == 2 && hidden.size(1) == weight.size(1), "chunked_token_logprobs: hidden [N, C] and weight [V, C] expected, got ",
              hidden.sizes(), " and ", weight.sizes());
  TORCH_CHECK(hidden.scalar_type() == weight.scalar_type() && at::isFloatingType(hidden.scalar_type()),
              "chunked_token_logprobs: hidden and weight must share one floating dtype, got ", hidden.scalar_type(), " and ", weight.scalar_type());
  TORCH_CHECK(hidden.device() == weight.device() && targets.device() == hidden.device(), "chunked_token_logprobs: tensors on different devices");
  TORCH_CHECK(targets.dim() == 1 && targets.scalar_type() == torch::kInt64 && targets.size(0) == hidden.size(0),
              "chunked_token_logprobs: targets must be [N] int64 with N = ", hidden.size(0), ", got ", targets.sizes(), " ", targets.scalar_type());
  TORCH_CHECK(weight.size(0) > 0, "chunked_token_logprobs: empty vocabulary");
  TORCH_CHECK(temperature > 0.0, "chunked_token_logprobs: temperature must be positive, got ", temperature);
  if (targets.numel() > 0) {
    const auto low = targets.min().item<std::int64_t>(), high = targets.max().item<std::int64_t>();
    TORCH_CHECK(low >= 0 && high < weight.size(0), "chunked_token_logprobs: target ", low < 0 ? low : high, " outside the vocabulary [0, ", weight.size(0), ")");
  }
}

std::int64_t rows_per_chunk(std::int64_t vocab, std::int64_t chunk_bytes) {
  return std::max<std::int64_t>(1, chunk_bytes / (4 * vocab));
}

// float32, or float64 for float64 inputs (nothing is gained by rounding those).
torch::ScalarType compute_dtype(const torch::Tensor& hidden) {
  return hidden.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
}

// One chunk's logits in the compute dtype, already divided by the temperature.
torch::Tensor chunk_logits(const torch::Tensor& hidden, const torch::Tensor& weight, double temperature) {
  auto logits = torch::matmul(hidden, weight.t()).to(compute_dtype(hidden));
  if (temperature != 1.0) logits.div_(temperature);
  return logits;
}

class ChunkedLogprobsFunction : public torch::autograd::Function<ChunkedLogprobsFunction> {
 public:
  // Returns {logprobs, entropy (empty unless asked for)}; saves the logsumexp of every row for backward.
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& hidden, const torch::Tensor& weight,
                                                const torch::Tensor& targets, double temperature, bool with_entropy, std::int64_t chunk_bytes) {
    const auto N = hidden.size(0);
    const auto rows = rows_per_chunk(weight.size(0), chunk_bytes);
    const auto options = hidden.options().dtype(compute_dtype(hidden));
    auto logprobs = torch::empty({N}, options);
    auto lse = torch::empty({N}, options);
    auto entropy = with_entropy ? torch::empty({N}, options) : torch::empty({0}, options);
    for (std::int64_t begin = 0; begin < N; begin += rows) {
      const auto n = std::min(rows, N - begin);
      const auto logits = chunk_logits(hidden.narrow(0, begin, n), weight, temperature);  // [n, V]
      const auto row_lse = logits.logsumexp(-1);
      lse.narrow(0, begin, n).copy_(row_lse);
      logprobs.narrow(0, begin, n).copy_(logits.gather(1, targets.narrow(0, begin, n).unsqueeze(1)).squeeze(1) - row_lse);
      if (with_entropy) {
        // H = lse − Σ p · logit, with p = exp(logit − lse).
        entropy.narrow(0, begin, n).copy_(row_lse - ((logits - row_lse.unsqueeze(1)).exp() * logits).sum(-1));
      }
    }
    ctx->save_for_backward({hidden, weight, targets, lse});
    const auto autocast = AutocastState::capture(hidden.device().type());
    ctx->saved_data["autocast"] = autocast.enabled;
    ctx->saved_data["autocast_dtype"] = static_cast<std::int64_t>(autocast.dtype);
    ctx->saved_data["temperature"] = temperature;
    ctx->saved_data["chunk_bytes"] = chunk_bytes;
    ctx->mark_non_differentiable({entropy});
    return {logprobs, entropy};
  }

  // d logp[n] / d logits[n] = (onehot(target) − softmax) / temperature; then through the projection:
  // d hidden = g · W, d W = gᵀ · hidden, chunk by chunk (d W accumulated in float32).
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto& hidden = saved[0];
    const auto& weight = saved[1];
    const auto& targets = saved[2];
    const auto& lse = saved[3];
    const double temperature = ctx->saved_data["temperature"].toDouble();
    const auto rows = rows_per_chunk(weight.size(0), ctx->saved_data["chunk_bytes"].toInt());
    const auto grad_logprobs = grad_outputs[0].defined() ? grad_outputs[0].to(lse.scalar_type()) : torch::zeros_like(lse);
    const auto N = hidden.size(0);
    // Recompute the logits as the forward computed them (under its autocast state), or p would not match lse.
    const AutocastGuard autocast(hidden.device().type(), ctx->saved_data["autocast"].toBool(),
                                 static_cast<c10::ScalarType>(ctx->saved_data["autocast_dtype"].toInt()));
    auto grad_hidden = torch::empty_like(hidden);
    auto grad_weight = torch::zeros(weight.sizes(), weight.options().dtype(lse.scalar_type()));
    for (std::int64_t begin = 0; begin < N; begin += rows) {
      const auto n = std::min(rows, N - begin);
      const auto h = hidden.narrow(0, begin, n);
      auto grad_logits = (chunk_logits(h, weight, temperature) - lse.narrow(0, begin, n).unsqueeze(1)).exp_().neg_();  // −softmax
      grad_logits.scatter_add_(1, targets.narrow(0, begin, n).unsqueeze(1), torch::ones({n, 1}, grad_logits.options()));
      grad_logits.mul_(grad_logprobs.narrow(0, begin, n).unsqueeze(1) / temperature);
      const auto g = grad_logits.to(hidden.scalar_type());
      grad_hidden.narrow(0, begin, n).copy_(torch::matmul(g, weight));
      grad_weight.add_(torch::matmul(g.t(), h).to(lse.scalar_type()));
    }
    return {grad_hidden, grad_weight.to(weight.scalar_type()), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

ChunkedLogprobs chunked_token_logprobs(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets, double temperature,
                                       bool with_entropy, std::int64_t chunk_bytes) {
  check_inputs(hidden, weight, targets, temperature);
  TORCH_CHECK(chunk_bytes > 0, "chunked_token_logprobs: chunk_bytes must be positive");
  const auto outputs = ChunkedLogprobsFunction::apply(hidden, weight, targets, temperature, with_entropy, chunk_bytes);
  ChunkedLogprobs out;
  out.logprobs = outputs[0];
  if (with_entropy) out.entropy = outputs[1];
  return out;
}

ChunkedLogprobs chunked_token_logprobs_reference(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
                                                 double temperature, bool with_entropy) {
  check_inputs(hidden, weight, targets, temperature);
  const auto logp = (torch::matmul(hidden, weight.t()).to(compute_dtype(hidden)) / temperature).log_softmax(-1);
  ChunkedLogprobs out;
  out.logprobs = logp.gather(1, targets.unsqueeze(1)).squeeze(1);
  if (with_entropy) {
    torch::NoGradGuard no_grad;
    out.entropy = -(logp.exp() * logp).sum(-1);
  }
  return out;
}

}  // namespace grpo::kernels
