// One minibatch's gradients (see minibatch_gradients.h).
#include "rl/minibatch_gradients.h"

#include <optional>
#include <vector>

#include "kernels/autocast.h"
#include "kernels/cpu_workers.h"

namespace grpo::rl {

MinibatchMetrics minibatch_gradients(policy::LlamaForCausalLM& model, const SequenceBatch& batch, const torch::Tensor& rows,
                                     const StepLogprobs& logprobs, const torch::Tensor& advantages, const PolicyLossParams& params,
                                     const MinibatchSettings& settings) {
  using M = MinibatchMetrics;
  const auto device = batch.input_ids.device();
  const auto parameters = model->parameters();
  const auto groups = length_sorted_groups(batch, rows, settings.micro_batch_rows);
  const auto items = static_cast<std::int64_t>(groups.size());
  const int workers = kernels::independent_cpu_workers(device, model->config().hidden_size, items);
  std::vector<std::vector<torch::Tensor>> worker_grads(static_cast<std::size_t>(workers));
  std::vector<std::array<double, M::kCount>> item_sums(groups.size());
  kernels::run_on_cpu_workers(items, workers, [&](std::int64_t item, int worker) {
    const auto& group = groups[static_cast<std::size_t>(item)];
    const auto mb = batch.rows(group).trimmed();
    const auto width = mb.completion_ids.size(1);
    const auto rows_d = group.to(device);
    auto pick = [&](const torch::Tensor& t) { return t.defined() ? t.index_select(0, rows_d).narrow(1, 0, width) : torch::Tensor(); };
    std::optional<kernels::AutocastGuard> autocast;
    autocast.emplace(device.type(), settings.bfloat16_autocast);  // forward and loss; backward as recorded
    const auto current = completion_logprobs(model, mb, settings.temperature, /*with_entropy=*/true);
    const PolicyLossInputs inputs{current.logprobs,
                                  pick(logprobs.old_logprobs),
                                  pick(logprobs.ref_logprobs),
                                  pick(logprobs.rollout_logprobs),
                                  advantages.index_select(0, rows_d),
                                  mb.completion_mask};
    const auto out = policy_loss(inputs, params);
    autocast.reset();
    if (workers == 1) {
      out.loss.backward();
    } else {
      const auto grads = torch::autograd::grad({out.loss}, parameters, {}, /*retain_graph=*/false, /*create_graph=*/false,
                                               /*allow_unused=*/true);
      auto& sum = worker_grads[static_cast<std::size_t>(worker)];
      if (sum.empty()) sum.resize(parameters.size());
      for (std::size_t k = 0; k < grads.size(); ++k) {
        if (grads[k].defined()) sum[k] = sum[k].defined() ? sum[k] + grads[k] : grads[k];
      }
    }
    const double share = mb.completion_mask.sum().item<double>() / std::max(params.global_tokens, 1.0);
    auto& m = item_sums[static_cast<std::size_t>(item)];
    m[M::kLoss] = out.loss.item<double>();
    m[M::kKl] = out.kl_mean * share;
    m[M::kClipLow] = out.clip_low_fraction * share;
    m[M::kClipHigh] = out.clip_high_fraction * share;
    m[M::kDual] = out.dual_clip_fraction * share;
    m[M::kTis] = out.tis_capped_fraction * share;
    m[M::kRatio] = out.ratio_mean * share;
    m[M::kEntropy] = (current.entropy * mb.completion_mask).sum().item<double>() / std::max(params.global_tokens, 1.0);
  });
  if (workers > 1) {
    // The workers' sums, added in worker order: the same gradients every run.
    for (std::size_t k = 0; k < parameters.size(); ++k) {
      torch::Tensor total;
      for (const auto& sum : worker_grads) {
        if (!sum.empty() && sum[k].defined()) total = total.defined() ? total + sum[k] : sum[k];
      }
      if (!total.defined()) continue;
      auto& grad = parameters[k].mutable_grad();
      grad = grad.defined() ? grad + total : total;
    }
  }
  MinibatchMetrics metrics;
  for (const auto& m : item_sums) {
    for (std::size_t k = 0; k < M::kCount; ++k) metrics.sums[k] += m[k];
  }
  return metrics;
}

}  // namespace grpo::rl
