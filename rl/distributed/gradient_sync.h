// Summing gradients over the ranks of a data-parallel job, the step DDP's reducer does, without its hooks: the
// trainer calls it once per optimizer step, after backward and before clipping.
#pragma once

#include <string_view>
#include <vector>

#include <torch/torch.h>

#include "rl/distributed/rank_group.h"

namespace grpo::rl {

// Sums each parameter's gradient over the ranks, in place, flattened into buckets of at most `bucket_bytes` (one
// collective per bucket and dtype). A parameter without a gradient on this rank (a rank whose share of the
// minibatch was empty) takes part with zeros and ends with the others' sum. Nothing happens on one rank.
void all_reduce_gradients(RankGroup& ranks, const std::vector<torch::Tensor>& parameters, std::string_view label,
                          std::int64_t bucket_bytes = std::int64_t{64} << 20);

}  // namespace grpo::rl
