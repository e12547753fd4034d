// Where the trainer's rollouts are generated, behind one interface: on its own model in its own thread (the
// default), on a copy of the model in a background thread (overlap mode, so that generating step k+1 overlaps the
// update of step k), or on rollout workers over TCP (remote or started locally). The trainer asks for a batch under
// a policy version and publishes each new version after its update; the backend gets the weights where they are
// needed and stamps every completion with the version that sampled it.
#pragma once

#include <cstdint>
#include <future>
#include <memory>
#include <string>

#include "policy/checkpoint.h"
#include "rollout/generator.h"
#include "rollout/remote/worker_pool.h"
#include "rollout/remote/worker_processes.h"

namespace grpo::rollout {

class RolloutBackend {
 public:
  virtual ~RolloutBackend() = default;
  // Starts generating `request` with the weights of `version` (published before); the future gives the batch.
  virtual std::future<GenerationResult> start(GenerationRequest request, std::int64_t version) = 0;
  // The trainer's model now holds the weights of `version`: later start() calls may use them. Returns the seconds
  // spent making them available (copying, pushing to workers) before returning.
  virtual double publish(policy::LlamaForCausalLM& model, std::int64_t version) = 0;
  // One line for the log, e.g. "3 rollout workers (127.0.0.1:4001, ...)".
  virtual std::string describe() const = 0;
  // Failures and reassignments of the last batch (zero for in-process backends).
  virtual WorkerPoolBatchStats last_batch_stats() const { return {}; }
};

// Generates on the trainer's own model, in the caller's thread: start() returns a finished future.
std::unique_ptr<RolloutBackend> make_inline_rollout(policy::Policy& policy);

// Generates on a copy of the model in a background thread; publish() snapshots the weights, which the copy takes
// before its next batch. The policy must outlive the backend.
std::unique_ptr<RolloutBackend> make_threaded_rollout(policy::Policy& policy);

// Generates on rollout workers (`grpo rollout-worker`) through a RolloutWorkerPool; `processes` (when given) are
// local workers the backend owns and stops with it. Connects before returning (throws when no worker answers).
// `weight_dtype`: the dtype weights travel in (none: the model's).
std::unique_ptr<RolloutBackend> make_remote_rollout(WorkerPoolOptions options, const policy::Policy& policy,
                                                    std::unique_ptr<LocalWorkerProcesses> processes = nullptr,
                                                    std::optional<torch::ScalarType> weight_dtype = std::nullopt);

}  // namespace grpo::rollout
