// Gradient all-reduce in flat buckets (see gradient_sync.h).
#include "rl/distributed/gradient_sync.h"

#include <fmt/format.h>

namespace grpo::rl {

void all_reduce_gradients(RankGroup& ranks, const std::vector<torch::Tensor>& parameters, std::string_view label, std::int64_t bucket_bytes) {
  if (ranks.world_size() == 1) return;
  std::vector<torch::Tensor> grads;
  for (auto parameter : parameters) {
    if (!parameter.requires_grad()) continue;
    if (!parameter.grad().defined()) parameter.mutable_grad() = torch::zeros_like(parameter);
    grads.push_back(parameter.grad());
  }
  // Buckets in parameter order (the same on every rank), a new one whenever the dtype or device changes.
  std::size_t begin = 0;
  int bucket = 0;
  while (begin < grads.size()) {
    std::size_t end = begin;
    std::int64_t bytes = 0;
    while (end < grads.size() && grads[end].scalar_type() == grads[begin].scalar_type() && grads[end].device() == grads[begin].device() &&
           (end == begin || bytes + grads[end].nbytes() <= static_cast<std::size_t>(bucket_bytes))) {
      bytes += static_cast<std::int64_t>(grads[end].nbytes());
      ++end;
    }
    std::vector<torch::Tensor> flat_parts;
    for (std::size_t i = begin; i < end; ++i) flat_parts.push_back(grads[i].reshape({-1}));
    auto flat = torch::cat(flat_parts);
    ranks.all_reduce_sum(flat, fmt::format("{}, bucket {}", label, bucket));
    std::int64_t offset = 0;
    for (std::size_t i = begin; i < end; ++i) {
      const auto n = grads[i].numel();
      grads[i].copy_(flat.narrow(0, offset, n).view_as(grads[i]));
      offset += n;
    }
    begin = end;
    ++bucket;
  }
}

}  // namespace grpo::rl
