// The gradients of one GRPO minibatch (this rank's rows of it), the inner loop of the update. The rows run in
// micro-batches of similar length (grpo.micro_batch_rows, trimmed); each one's loss is normalised over the whole
// minibatch (the params' global token and sequence counts), so their gradients add up to the minibatch's. A small
// model on the CPU runs the micro-batches side by side, one core each (kernels/cpu_workers.h): each worker sums its
// own gradients and the sums are added in worker order, so a run gives the same gradients every time.
#pragma once

#include <array>
#include <cstdint>

#include <torch/torch.h>

#include "policy/llama_model.h"
#include "rl/grpo_math.h"
#include "rl/policy_ops.h"

namespace grpo::rl {

// The log-probs of a step's completions that the objective needs, each [B, T] on the trainer's device.
struct StepLogprobs {
  torch::Tensor old_logprobs;      // π_old: the sampler's, or recomputed (grpo.old_logprobs)
  torch::Tensor rollout_logprobs;  // what the rollout engine recorded
  torch::Tensor ref_logprobs;      // π_ref; undefined without a reference model
};

// Sums over a minibatch's micro-batches: the loss as is, the token-mean metrics weighted by each micro-batch's share
// of the minibatch's tokens (so that ranks' sums add up to the minibatch's means).
struct MinibatchMetrics {
  enum Metric { kLoss, kKl, kClipLow, kClipHigh, kDual, kTis, kRatio, kEntropy, kCount };
  std::array<double, kCount> sums{};
};

struct MinibatchSettings {
  double temperature = 1.0;        // of the sampler: log-probs are of logits / temperature
  bool bfloat16_autocast = false;  // model.autocast
  std::int64_t micro_batch_rows = 0;
};

// Sets every parameter's .grad to the gradient of `rows`' (int64 indices into batch, non-empty) share of the
// minibatch loss, and returns the minibatch's metric sums.
MinibatchMetrics minibatch_gradients(policy::LlamaForCausalLM& model, const SequenceBatch& batch, const torch::Tensor& rows,
                                     const StepLogprobs& logprobs, const torch::Tensor& advantages, const PolicyLossParams& params,
                                     const MinibatchSettings& settings);

}  // namespace grpo::rl
