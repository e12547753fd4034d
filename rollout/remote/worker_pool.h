// The trainer's side of the rollout protocol: a pool of rollout workers (`grpo rollout-worker`) that generates a
// step's batch together and survives workers that die or stall.
//
// A batch's prompts are shared out among the live workers (whole groups: the G samples of a prompt are generated on
// one worker from one prefill). Each worker streams back a prompt's samples as soon as they are done; a worker that
// drops its connection, sends something unreadable, or says nothing for stall_timeout is given up, and the prompts
// it had not delivered go to the workers still standing. Every prompt is counted exactly once: results are keyed
// by prompt index and a given-up worker's connection is closed, so nothing it sends later can arrive. Prompts carry
// their own random seeds, so a reassigned prompt gets the samples it would have got on the first worker (up to
// float rounding of a different batch shape).
//
// Weights travel by version: publish() snapshots the policy; a worker receives a version before it generates for a
// batch that needs it (eagerly when no generation is running, so the push is timed as the sync phase). They travel
// in chunks over each worker's connection, or (weight_transport kBroadcast) as one broadcast to every worker at once
// on a c10d process group of the trainer and its workers: NCCL when every worker's model is on a CUDA device, Gloo
// otherwise (rollout/remote/weight_broadcast.h). A group serves only while all its members live: when it cannot
// form or a member fails, the pool says so on the log and sends weights over TCP, so no worker is left without
// them; once every worker is connected again, a later publish forms a new group (broadcast_retry_interval).
//
// All network work runs on one Asio thread owned by the pool; the public methods hand work to it and wait.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rollout/generator.h"

namespace grpo::rollout {

struct WeightSnapshot;

enum class WeightTransport {
  kTcp,        // WeightChunk frames over each worker's connection, one worker after another
  kBroadcast,  // one collective broadcast to every worker (c10d: NCCL between CUDA devices, else Gloo)
};

struct WorkerPoolOptions {
  std::vector<std::string> addresses;  // "host:port" of each worker
  std::string token;                   // the workers' shared secret
  std::chrono::milliseconds connect_timeout{10000};
  // A worker that is generating for us and sends nothing (no result, no progress) for this long is given up.
  std::chrono::milliseconds stall_timeout{60000};
  std::size_t max_frame_bytes = std::size_t{64} << 20;
  std::size_t weight_chunk_bytes = std::size_t{4} << 20;
  WeightTransport weight_transport = WeightTransport::kTcp;
  // kBroadcast: the address the workers reach this process's rendezvous store at, the group's timeout (rendezvous
  // and each broadcast) and the most bytes one broadcast carries.
  std::string broadcast_host = "127.0.0.1";
  std::chrono::milliseconds broadcast_timeout{30000};
  // A group given up after a failure is formed again at a later publish, once every worker is back (reconnected)
  // and at least this long after the last attempt.
  std::chrono::milliseconds broadcast_retry_interval{60000};
  // Small tensors are packed together up to this size; a larger tensor travels alone, straight from its own bytes.
  std::size_t broadcast_bucket_bytes = std::size_t{32} << 20;
  std::string client_name = "grpo trainer";
  // Where log lines go (one per call, no newline, from the pool's thread); empty: stderr.
  std::function<void(std::string_view line)> log = {};
};

// What happened during the last batch.
struct WorkerPoolBatchStats {
  int workers_used = 0;               // workers that generated part of the batch
  int workers_failed = 0;             // given up during the batch
  std::int64_t reassigned_prompts = 0;  // prompts moved from a failed worker to another
  double weight_push_seconds = 0.0;   // pushing weights to workers as part of the batch (reconnects, deferred pushes)
};

class RolloutWorkerPool {
 public:
  // vocab_size: the trainer's model's, which every worker must serve. Throws std::invalid_argument for unusable
  // options (no addresses, a malformed address, an empty token).
  RolloutWorkerPool(WorkerPoolOptions options, std::int64_t vocab_size);
  ~RolloutWorkerPool();
  RolloutWorkerPool(const RolloutWorkerPool&) = delete;
  RolloutWorkerPool& operator=(const RolloutWorkerPool&) = delete;

  // Connects to every worker and says Hello. Throws std::runtime_error naming each worker and why, when none could
  // be reached; workers that fail are retried at the start of each batch.
  void connect();
  // Number of workers currently connected.
  int live_workers() const;

  // Makes `snapshot` the weights of its version and, when no batch is being generated, pushes it to every connected
  // worker before returning (a worker that fails the push is given up). Returns the seconds spent pushing.
  double publish(std::shared_ptr<const WeightSnapshot> snapshot);

  // Generates `request` with the weights of `version` (published earlier). Throws std::runtime_error when every
  // worker failed (naming each and why), or when a worker rejects the request itself as invalid (a prompt too long,
  // a token outside the vocabulary): no other worker could serve it either.
  std::future<GenerationResult> generate_async(GenerationRequest request, std::int64_t version);
  GenerationResult generate(GenerationRequest request, std::int64_t version) { return generate_async(std::move(request), version).get(); }

  WorkerPoolBatchStats last_batch_stats() const;
  // How weights travel now: "TCP chunks" or "broadcast (Gloo, 3 members, rendezvous 127.0.0.1:41234)".
  std::string weight_transport() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace grpo::rollout
