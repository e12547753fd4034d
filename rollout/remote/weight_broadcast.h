// Weight updates by collective broadcast: a c10d process group of the trainer (rank 0) and its rollout workers
// (ranks 1..N) over which each update travels as a few large broadcasts, instead of as WeightChunk frames to each
// worker in turn. NCCL when every member holds its tensors on a CUDA device (and LibTorch has NCCL), Gloo otherwise.
//
// The rollout protocol does the bookkeeping (rollout_service.proto): JoinWeightGroup tells a worker where the
// trainer's rendezvous store is and which rank it is; each update's WeightsBegin lists the tensors (name, dtype,
// shape) in the order they are broadcast, so what travels on the collective is nothing but tensor bytes. Small
// tensors are packed into buckets of at most bucket_bytes; a larger tensor travels alone, straight from and into its
// own bytes. The worker receives into one staging copy of the model and applies it only once every byte is there.
//
// A group is only as good as its slowest member: every collective waits for all of them, up to the group's timeout.
// The trainer's pool therefore uses the group only while every member is alive and idle, and falls back to TCP
// for good once any member fails (rollout/remote/worker_pool.cpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <torch/torch.h>

namespace grpo::rollout {

enum class BroadcastBackend { kGloo, kNccl };
std::string_view backend_name(BroadcastBackend backend);  // "gloo", "nccl"
std::optional<BroadcastBackend> parse_backend_name(std::string_view name);
// Whether this LibTorch build and machine can run NCCL (compiled with it, and a CUDA device present).
bool nccl_available();

// Where a group meets and how it talks.
struct WeightGroupAddress {
  std::string host;         // the trainer's rendezvous store
  std::uint16_t port = 0;
  int world_size = 0;       // the trainer and its workers
  BroadcastBackend backend = BroadcastBackend::kGloo;
  std::chrono::milliseconds timeout{30000};  // the rendezvous and every broadcast
  std::string group_id;     // keys of this group in the store; a fresh one per group
};

// [begin, end) ranges of `tensor_bytes` that travel together: consecutive tensors, at most `bucket_bytes` each, a
// tensor larger than that alone.
std::vector<std::pair<std::size_t, std::size_t>> broadcast_buckets(const std::vector<std::size_t>& tensor_bytes, std::size_t bucket_bytes);

class WeightBroadcastGroup {
 public:
  // The trainer's end: serves the rendezvous store on `host` (any free port: address().port says which). form()
  // then waits for the workers to join.
  static std::unique_ptr<WeightBroadcastGroup> serve(const std::string& host, int world_size, BroadcastBackend backend,
                                                     std::chrono::milliseconds timeout);
  // A worker's end: joins the group at `address` as `rank` (1..world_size-1); blocks until every member is there.
  // `device` is where received tensors land (a CUDA device for NCCL). Throws std::runtime_error saying what failed.
  static std::unique_ptr<WeightBroadcastGroup> join(const WeightGroupAddress& address, int rank, torch::Device device);

  ~WeightBroadcastGroup();
  WeightBroadcastGroup(const WeightBroadcastGroup&) = delete;
  WeightBroadcastGroup& operator=(const WeightBroadcastGroup&) = delete;

  // The trainer's end only: creates the process group, which returns once every worker has joined (or throws
  // std::runtime_error after the timeout, naming the ranks that did not come).
  void form();

  const WeightGroupAddress& address() const { return address_; }
  int rank() const { return rank_; }
  // "Gloo, 3 members, rendezvous 127.0.0.1:41234".
  std::string describe() const;

  // Rank 0 sends `tensors` (any dtypes and devices); every other rank receives into its own `tensors`, which must
  // have the same dtypes and shapes in the same order (the protocol's WeightsBegin guarantees it). Throws
  // std::runtime_error when a member fails or the timeout passes; the group is unusable afterwards.
  void broadcast(std::vector<torch::Tensor>& tensors, std::size_t bucket_bytes);

 private:
  struct Backend;
  WeightBroadcastGroup(WeightGroupAddress address, int rank, torch::Device device);
  WeightGroupAddress address_;
  int rank_;
  torch::Device device_;  // where buckets are assembled: CPU for Gloo, a CUDA device for NCCL
  std::unique_ptr<Backend> backend_;
};

}  // namespace grpo::rollout
