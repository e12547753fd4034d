// Conversions between the rollout engine's types and the rollout protocol's messages (rollout_service.proto), and
// the two ends of a weight update: a trainer-side snapshot cut into chunks, and the worker-side staging area that
// checks every chunk against the model before anything is applied. Everything that arrives from the network is
// checked here; a violation throws ProtocolViolation with a message that says what was wrong.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "rollout/generator.h"
#include "rollout/remote/rollout_service.pb.h"

namespace grpo::rollout {

namespace proto = grpo::wire::rollout;

class ProtocolViolation : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// ---- generate -----------------------------------------------------------------------------------------------------

// The request for `prompt_indices` of `request` (their ids and seeds), under `policy_version`.
proto::GenerateRequest to_proto(const GenerationRequest& request, const std::vector<std::int64_t>& prompt_indices,
                                std::uint64_t request_id, std::int64_t policy_version);

// The engine request a worker runs for `message` (prompts in message order). Throws ProtocolViolation for
// non-positive counts or sampling fields that are NaN.
GenerationRequest from_proto(const proto::GenerateRequest& message);

proto::GroupResult to_proto(std::uint64_t request_id, std::uint64_t prompt_index, std::int64_t policy_version,
                            std::span<const Completion> group);

// The completions of a GroupResult, checked against what was asked: `samples` of them, each with as many finite,
// non-positive log-probs as tokens, tokens inside the vocabulary, at most `max_new_tokens` of them. Throws
// ProtocolViolation naming the first problem.
std::vector<Completion> from_proto(const proto::GroupResult& message, std::int64_t samples, std::int64_t max_new_tokens,
                                   std::int64_t vocab_size);

// ---- weights ------------------------------------------------------------------------------------------------------

// The parameters of a model at one version, on the CPU and contiguous, in the model's dtype or the one asked for.
struct WeightSnapshot {
  struct Tensor {
    std::string name;
    torch::Tensor value;
  };
  std::int64_t version = 0;
  std::vector<Tensor> tensors;
  std::size_t bytes() const;
};

// `dtype`: the dtype weights travel in (bfloat16 halves the bytes; workers convert to their own); none: the model's.
WeightSnapshot snapshot_weights(policy::LlamaForCausalLM& model, std::int64_t version, std::optional<torch::ScalarType> dtype = std::nullopt);

// The messages of a weight update, one at a time (a 1 GB model is not copied into messages at once): WeightsBegin,
// chunks of at most `chunk_bytes` data bytes, WeightsEnd.
class WeightUpdateStream {
 public:
  WeightUpdateStream(const WeightSnapshot& snapshot, std::size_t chunk_bytes);
  // The next message, or nullopt after WeightsEnd.
  std::optional<proto::TrainerMessage> next();

 private:
  const WeightSnapshot* snapshot_;
  std::size_t chunk_bytes_;
  bool began_ = false;
  bool ended_ = false;
  std::size_t tensor_ = 0;
  std::size_t offset_ = 0;
};

// Collects one weight update on the worker. Every chunk is checked on arrival (a parameter the model has, the
// model's shape, a known dtype, bytes inside the tensor, no byte written twice); finish() checks that every
// parameter arrived whole, and apply() copies them into the model (converting the dtype).
using ParameterShapes = std::map<std::string, std::vector<std::int64_t>>;
ParameterShapes parameter_shapes(const policy::LlamaForCausalLM& model);

class WeightStaging {
 public:
  // `shapes`: the receiving model's parameters (parameter_shapes), which every chunk must fit.
  WeightStaging(ParameterShapes shapes, const proto::WeightsBegin& begin);
  void add(const proto::WeightChunk& chunk);
  void finish(const proto::WeightsEnd& end);
  // Copies the staged tensors into the model. Call after finish(), on the thread that owns the model.
  void apply(policy::LlamaForCausalLM& model) const;
  std::int64_t version() const { return version_; }

 private:
  struct Staged {
    torch::Tensor value;  // CPU, the sender's dtype, the model's shape
    std::uint64_t received = 0;
  };
  ParameterShapes expected_shapes_;
  std::map<std::string, Staged> staged_;
  std::int64_t version_ = 0;
  std::uint32_t announced_tensors_ = 0;
};

// ---- weights by broadcast (rollout/remote/weight_broadcast.h) -------------------------------------------------------

// The WeightsBegin of a broadcast update of `snapshot`: every tensor's name, dtype and shape in broadcast order.
proto::WeightsBegin broadcast_weights_begin(const WeightSnapshot& snapshot, std::size_t bucket_bytes);

// The worker's end of a broadcast update: the tensors it announces, checked against the model on construction
// (every parameter once, the model's shapes, known dtypes; else ProtocolViolation). allocate() makes the tensors the
// broadcast fills (one copy of the model, so that a failed update leaves the model untouched); apply() copies them
// into the model; release() frees them.
class BroadcastReceipt {
 public:
  BroadcastReceipt(const ParameterShapes& shapes, const proto::WeightsBegin& begin);
  std::int64_t version() const { return version_; }
  std::size_t bucket_bytes() const { return bucket_bytes_; }
  void allocate(torch::Device device);
  // What the broadcast fills, in order (empty before allocate()).
  std::vector<torch::Tensor>& tensors() { return tensors_; }
  // Copies the received tensors into the model (converting the dtype), on the thread that owns it.
  void apply(policy::LlamaForCausalLM& model) const;
  void release() { tensors_.clear(); }

 private:
  struct Spec {
    std::string name;
    torch::ScalarType dtype;
    std::vector<std::int64_t> shape;
  };
  std::int64_t version_;
  std::size_t bucket_bytes_;
  std::vector<Spec> specs_;
  std::vector<torch::Tensor> tensors_;
};

std::string dtype_name(torch::ScalarType dtype);  // "F32", "BF16", "F16"

}  // namespace grpo::rollout
