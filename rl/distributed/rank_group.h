// The ranks of a data-parallel job and the collectives the trainer needs, on a c10d process group: Gloo for CPU
// tensors, NCCL for CUDA ones where LibTorch has it. A one-rank group does no communication at all, so the trainer
// runs the same code with or without a launcher.
//
// Every collective carries a label ("gather rewards (step 3)"). When one fails (a peer died: its connection reset; or
// it hung past the timeout), the group works out which rank is to blame from heartbeats and progress markers the
// ranks keep in the rendezvous store, and throws RankFailure with a message that names it:
//   rank 0: collective #41 "all-reduce gradients (step 5, minibatch 2)" failed: ... Rank 1 stopped: no heartbeat
//   for 3 s, last at collective #40 "all-reduce update metrics (step 5)"; it died, was killed or is hung.
#pragma once

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <torch/torch.h>

#include "rl/distributed/launch_env.h"

namespace grpo::rl {

// A collective that failed or timed out, or a rendezvous that never completed.
class RankFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The exit status of a rank that stopped because another rank failed (or the rendezvous did).
inline constexpr int kRankFailureExitCode = 3;

class RankGroup {
 public:
  virtual ~RankGroup() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  bool is_main() const { return rank() == 0; }

  // Sums `tensor` over the ranks, in place.
  virtual void all_reduce_sum(torch::Tensor& tensor, std::string_view label) = 0;
  // Every rank's `tensor` (the same shape on each), concatenated along dim 0 in rank order.
  virtual torch::Tensor all_gather(const torch::Tensor& tensor, std::string_view label) = 0;
  // Every rank's `tensor` (the same shape on each but for dim 0, which may be 0), concatenated along dim 0 in rank
  // order.
  torch::Tensor all_gather_rows(const torch::Tensor& tensor, std::string_view label);
  // Every rank's string, in rank order (any lengths).
  std::vector<std::string> all_gather_strings(const std::string& text, std::string_view label);
  // True on every rank when `flag` is true on any.
  bool any(bool flag, std::string_view label);
  // Returns once every rank has called it.
  virtual void barrier(std::string_view label) = 0;
  // "1 rank" or "2 ranks over Gloo (torchrun), rendezvous 127.0.0.1:29500".
  virtual std::string describe() const = 0;
};

// One rank, no communication.
std::unique_ptr<RankGroup> single_rank_group();

// Joins the job `launch` describes: rank 0 hosts the rendezvous store (unless torchrun's agent does), every rank
// connects, and the backend for `device` is created. `timeout` bounds the rendezvous and every collective.
// Throws RankFailure when the rendezvous does not complete in time, naming the ranks that did not arrive.
std::unique_ptr<RankGroup> join_rank_group(const LaunchInfo& launch, torch::Device device, std::chrono::milliseconds timeout);

}  // namespace grpo::rl
