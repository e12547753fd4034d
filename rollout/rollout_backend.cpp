// The rollout backends (see rollout_backend.h).
#include "rollout/rollout_backend.h"

#include <chrono>
#include <mutex>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "rollout/remote/rollout_messages.h"

namespace grpo::rollout {
namespace {

void stamp(GenerationResult& result, std::int64_t version) {
  for (auto& completion : result.completions) completion.policy_version = version;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

class InlineRollout final : public RolloutBackend {
 public:
  explicit InlineRollout(policy::Policy& policy) : policy_(policy) {}
  std::future<GenerationResult> start(GenerationRequest request, std::int64_t version) override {
    std::promise<GenerationResult> promise;
    try {
      GenerationHooks hooks;
      hooks.tokenizer = policy_.tokenizer.get();
      auto result = generate(policy_.model, request, hooks);
      stamp(result, version);
      promise.set_value(std::move(result));
    } catch (...) {
      promise.set_exception(std::current_exception());
    }
    return promise.get_future();
  }
  double publish(policy::LlamaForCausalLM&, std::int64_t) override { return 0.0; }  // it generates on the model itself
  std::string describe() const override { return "in-process generation on the trainer's model"; }

 private:
  policy::Policy& policy_;
};

class ThreadedRollout final : public RolloutBackend {
 public:
  explicit ThreadedRollout(policy::Policy& policy) : tokenizer_(policy.tokenizer), model_(policy::clone_model(policy.model)) {
    model_->eval();
  }
  ~ThreadedRollout() override {
    if (running_.valid()) running_.wait();
  }
  std::future<GenerationResult> start(GenerationRequest request, std::int64_t version) override {
    if (running_.valid()) running_.wait();  // one batch at a time on the copy
    std::shared_ptr<const WeightSnapshot> pending;
    {
      const std::lock_guard lock(mutex_);
      pending = std::move(pending_);
    }
    auto task = std::packaged_task<GenerationResult()>([this, request = std::move(request), version, pending] {
      if (pending) {
        torch::NoGradGuard no_grad;
        auto params = model_->named_parameters();
        for (const auto& tensor : pending->tensors) params[tensor.name].copy_(tensor.value);
        held_version_ = pending->version;
      }
      if (held_version_ != version) {
        throw std::logic_error(fmt::format("threaded rollout: asked for policy version {}, the copy holds {}", version, held_version_));
      }
      GenerationHooks hooks;
      hooks.tokenizer = tokenizer_.get();
      auto result = generate(model_, request, hooks);
      stamp(result, version);
      return result;
    });
    auto future = task.get_future();
    running_ = std::async(std::launch::async, std::move(task));
    return future;
  }
  double publish(policy::LlamaForCausalLM& model, std::int64_t version) override {
    const auto start = std::chrono::steady_clock::now();
    auto snapshot = std::make_shared<const WeightSnapshot>(snapshot_weights(model, version));
    const std::lock_guard lock(mutex_);
    pending_ = std::move(snapshot);
    return seconds_since(start);
  }
  std::string describe() const override { return "in-process generation on a copy of the model in a background thread (overlap)"; }

 private:
  std::shared_ptr<const policy::Tokenizer> tokenizer_;
  policy::LlamaForCausalLM model_;
  std::int64_t held_version_ = 0;  // the copy starts as the trainer's initial weights
  std::mutex mutex_;
  std::shared_ptr<const WeightSnapshot> pending_;
  std::future<void> running_;
};

class RemoteRollout final : public RolloutBackend {
 public:
  RemoteRollout(WorkerPoolOptions options, const policy::Policy& policy, std::unique_ptr<LocalWorkerProcesses> processes,
                std::optional<torch::ScalarType> weight_dtype)
      : processes_(std::move(processes)),
        addresses_(options.addresses),
        weight_dtype_(weight_dtype),
        pool_(std::move(options), policy.model->config().vocab_size) {
    pool_.connect();
  }
  std::future<GenerationResult> start(GenerationRequest request, std::int64_t version) override {
    return pool_.generate_async(std::move(request), version);
  }
  double publish(policy::LlamaForCausalLM& model, std::int64_t version) override {
    const auto start = std::chrono::steady_clock::now();
    pool_.publish(std::make_shared<const WeightSnapshot>(snapshot_weights(model, version, weight_dtype_)));
    return seconds_since(start);
  }
  std::string describe() const override {
    return fmt::format("{} {}rollout worker{} ({}); weights by {}{}", addresses_.size(), processes_ ? "local " : "", addresses_.size() == 1 ? "" : "s",
                       fmt::join(addresses_, ", "), pool_.weight_transport(),
                       weight_dtype_ ? fmt::format(" in {}", c10::toString(*weight_dtype_)) : std::string());
  }
  WorkerPoolBatchStats last_batch_stats() const override { return pool_.last_batch_stats(); }

 private:
  std::unique_ptr<LocalWorkerProcesses> processes_;  // declared first: destroyed after the pool's connections close
  std::vector<std::string> addresses_;
  std::optional<torch::ScalarType> weight_dtype_;
  RolloutWorkerPool pool_;
};

}  // namespace

std::unique_ptr<RolloutBackend> make_inline_rollout(policy::Policy& policy) { return std::make_unique<InlineRollout>(policy); }

std::unique_ptr<RolloutBackend> make_threaded_rollout(policy::Policy& policy) { return std::make_unique<ThreadedRollout>(policy); }

std::unique_ptr<RolloutBackend> make_remote_rollout(WorkerPoolOptions options, const policy::Policy& policy,
                                                    std::unique_ptr<LocalWorkerProcesses> processes, std::optional<torch::ScalarType> weight_dtype) {
  return std::make_unique<RemoteRollout>(std::move(options), policy, std::move(processes), weight_dtype);
}

}  // namespace grpo::rollout
