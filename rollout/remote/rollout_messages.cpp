// Rollout protocol conversions and weight updates (see rollout_messages.h).
#include "rollout/remote/rollout_messages.h"

#include <cmath>
#include <cstring>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace grpo::rollout {
namespace {

[[noreturn]] void violation(const std::string& message) { throw ProtocolViolation(message); }

torch::ScalarType parse_dtype_name(const std::string& name) {
  if (name == "F32") return torch::kFloat32;
  if (name == "BF16") return torch::kBFloat16;
  if (name == "F16") return torch::kFloat16;
  violation(fmt::format("unknown weight dtype '{}'; valid: F32, BF16, F16", name));
}

std::string shape_text(const std::vector<std::int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

}  // namespace

std::string dtype_name(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat32:
      return "F32";
    case torch::kBFloat16:
      return "BF16";
    case torch::kFloat16:
      return "F16";
    default:
      throw std::invalid_argument(fmt::format("weights of dtype {} cannot be sent; use float32, bfloat16 or float16", c10::toString(dtype)));
  }
}

proto::GenerateRequest to_proto(const GenerationRequest& request, const std::vector<std::int64_t>& prompt_indices,
                                std::uint64_t request_id, std::int64_t policy_version) {
  proto::GenerateRequest message;
  message.set_request_id(request_id);
  message.set_policy_version(policy_version);
  for (const auto p : prompt_indices) {
    auto* prompt = message.add_prompts();
    const auto index = static_cast<std::size_t>(p);
    prompt->set_index(static_cast<std::uint64_t>(p));
    prompt->mutable_ids()->Add(request.prompts.at(index).begin(), request.prompts.at(index).end());
    prompt->set_seed(request.prompt_seeds.empty() ? derive_seed(request.seed, index) : request.prompt_seeds.at(index));
  }
  message.set_samples_per_prompt(static_cast<std::int32_t>(request.samples_per_prompt));
  message.set_max_new_tokens(static_cast<std::int32_t>(request.max_new_tokens));
  auto* sampling = message.mutable_sampling();
  sampling->set_temperature(request.sampling.temperature);
  sampling->set_top_p(request.sampling.top_p);
  sampling->set_top_k(request.sampling.top_k);
  sampling->set_min_p(request.sampling.min_p);
  message.mutable_stop_token_ids()->Add(request.stop_token_ids.begin(), request.stop_token_ids.end());
  for (const auto& stop : request.stop_strings) message.add_stop_strings(stop);
  return message;
}

GenerationRequest from_proto(const proto::GenerateRequest& message) {
  if (message.samples_per_prompt() < 1) violation(fmt::format("samples_per_prompt is {}; it must be at least 1", message.samples_per_prompt()));
  if (message.max_new_tokens() < 1) violation(fmt::format("max_new_tokens is {}; it must be at least 1", message.max_new_tokens()));
  GenerationRequest request;
  for (const auto& prompt : message.prompts()) {
    request.prompts.emplace_back(prompt.ids().begin(), prompt.ids().end());
    request.prompt_seeds.push_back(prompt.seed());
    request.prompt_labels.push_back(static_cast<std::int64_t>(prompt.index()));
  }
  request.samples_per_prompt = message.samples_per_prompt();
  request.max_new_tokens = message.max_new_tokens();
  const auto& s = message.sampling();
  request.sampling = {s.temperature(), s.top_p(), s.top_k(), s.min_p()};
  request.stop_token_ids.assign(message.stop_token_ids().begin(), message.stop_token_ids().end());
  request.stop_strings.assign(message.stop_strings().begin(), message.stop_strings().end());
  return request;
}

proto::GroupResult to_proto(std::uint64_t request_id, std::uint64_t prompt_index, std::int64_t policy_version,
                            std::span<const Completion> group) {
  proto::GroupResult message;
  message.set_request_id(request_id);
  message.set_prompt_index(prompt_index);
  message.set_policy_version(policy_version);
  for (const auto& completion : group) {
    auto* out = message.add_completions();
    out->mutable_tokens()->Add(completion.tokens.begin(), completion.tokens.end());
    out->mutable_logprobs()->Add(completion.logprobs.begin(), completion.logprobs.end());
    out->set_finish(completion.finish == FinishReason::kStop ? proto::FINISH_REASON_STOP : proto::FINISH_REASON_LENGTH);
    out->set_stop_string(completion.stop_string);
  }
  return message;
}

std::vector<Completion> from_proto(const proto::GroupResult& message, std::int64_t samples, std::int64_t max_new_tokens,
                                   std::int64_t vocab_size) {
  if (message.completions_size() != samples) {
    violation(fmt::format("prompt {}: {} completions, expected {}", message.prompt_index(), message.completions_size(), samples));
  }
  std::vector<Completion> group;
  for (int g = 0; g < message.completions_size(); ++g) {
    const auto& in = message.completions(g);
    const auto where = fmt::format("prompt {} sample {}", message.prompt_index(), g);
    if (in.tokens_size() != in.logprobs_size()) violation(fmt::format("{}: {} tokens but {} log-probs", where, in.tokens_size(), in.logprobs_size()));
    if (in.tokens_size() < 1 || in.tokens_size() > max_new_tokens) {
      violation(fmt::format("{}: {} tokens, expected 1 to {}", where, in.tokens_size(), max_new_tokens));
    }
    if (in.finish() != proto::FINISH_REASON_STOP && in.finish() != proto::FINISH_REASON_LENGTH) violation(where + ": no finish reason");
    Completion completion;
    completion.prompt_index = static_cast<std::int64_t>(message.prompt_index());
    completion.sample_index = g;
    completion.policy_version = message.policy_version();
    for (int t = 0; t < in.tokens_size(); ++t) {
      if (in.tokens(t) < 0 || in.tokens(t) >= vocab_size) violation(fmt::format("{}: token {} is outside the vocabulary of {}", where, in.tokens(t), vocab_size));
      // A log-prob is ≤ 0; float rounding in log_softmax can leave a hair above it.
      if (!std::isfinite(in.logprobs(t)) || in.logprobs(t) > 1e-4f) violation(fmt::format("{}: log-prob {} at token {} is not a log-probability", where, in.logprobs(t), t));
    }
    completion.tokens.assign(in.tokens().begin(), in.tokens().end());
    completion.logprobs.assign(in.logprobs().begin(), in.logprobs().end());
    completion.finish = in.finish() == proto::FINISH_REASON_STOP ? FinishReason::kStop : FinishReason::kLength;
    completion.stop_string = in.stop_string();
    group.push_back(std::move(completion));
  }
  return group;
}

std::size_t WeightSnapshot::bytes() const {
  std::size_t total = 0;
  for (const auto& tensor : tensors) total += tensor.value.nbytes();
  return total;
}

WeightSnapshot snapshot_weights(policy::LlamaForCausalLM& model, std::int64_t version, std::optional<torch::ScalarType> dtype) {
  torch::NoGradGuard no_grad;
  WeightSnapshot snapshot;
  snapshot.version = version;
  for (const auto& item : model->named_parameters()) {
    const auto& value = item.value().detach();
    snapshot.tensors.push_back({item.key(), value.to(torch::kCPU, dtype.value_or(value.scalar_type())).contiguous().clone()});
  }
  return snapshot;
}

WeightUpdateStream::WeightUpdateStream(const WeightSnapshot& snapshot, std::size_t chunk_bytes)
    : snapshot_(&snapshot), chunk_bytes_(chunk_bytes) {
  if (chunk_bytes == 0) throw std::invalid_argument("weight chunks must hold at least one byte");
}

std::optional<proto::TrainerMessage> WeightUpdateStream::next() {
  proto::TrainerMessage message;
  if (!began_) {
    began_ = true;
    message.mutable_weights_begin()->set_version(snapshot_->version);
    message.mutable_weights_begin()->set_num_tensors(static_cast<std::uint32_t>(snapshot_->tensors.size()));
    return message;
  }
  if (tensor_ == snapshot_->tensors.size()) {
    if (ended_) return std::nullopt;
    ended_ = true;
    message.mutable_weights_end()->set_version(snapshot_->version);
    return message;
  }
  const auto& tensor = snapshot_->tensors[tensor_];
  const auto* data = static_cast<const char*>(tensor.value.data_ptr());
  const auto total = tensor.value.nbytes();
  const auto count = std::min(chunk_bytes_, total - offset_);
  auto* chunk = message.mutable_weight_chunk();
  chunk->set_version(snapshot_->version);
  chunk->set_name(tensor.name);
  chunk->set_dtype(dtype_name(tensor.value.scalar_type()));
  chunk->mutable_shape()->Add(tensor.value.sizes().begin(), tensor.value.sizes().end());
  chunk->set_offset(offset_);
  chunk->set_data(data + offset_, count);
  offset_ += count;
  if (offset_ >= total) {
    ++tensor_;
    offset_ = 0;
  }
  return message;
}

ParameterShapes parameter_shapes(const policy::LlamaForCausalLM& model) {
  ParameterShapes shapes;
  for (const auto& item : model->named_parameters()) {
    const auto sizes = item.value().sizes();
    shapes[item.key()] = std::vector<std::int64_t>(sizes.begin(), sizes.end());
  }
  return shapes;
}

WeightStaging::WeightStaging(ParameterShapes shapes, const proto::WeightsBegin& begin)
    : expected_shapes_(std::move(shapes)), version_(begin.version()), announced_tensors_(begin.num_tensors()) {
  if (announced_tensors_ != expected_shapes_.size()) {
    violation(fmt::format("weight update {} announces {} tensors; the model has {} parameters", version_, announced_tensors_,
                          expected_shapes_.size()));
  }
}

void WeightStaging::add(const proto::WeightChunk& chunk) {
  if (chunk.version() != version_) violation(fmt::format("a chunk of version {} inside the update to version {}", chunk.version(), version_));
  const auto expected = expected_shapes_.find(chunk.name());
  if (expected == expected_shapes_.end()) violation(fmt::format("weight update {}: the model has no parameter '{}'", version_, chunk.name()));
  const std::vector<std::int64_t> shape(chunk.shape().begin(), chunk.shape().end());
  if (shape != expected->second) {
    violation(fmt::format("weight update {}: '{}' has shape {}, the model's is {}", version_, chunk.name(), shape_text(shape),
                          shape_text(expected->second)));
  }
  const auto dtype = parse_dtype_name(chunk.dtype());
  auto [it, inserted] = staged_.try_emplace(chunk.name());
  auto& staged = it->second;
  if (inserted) {
    staged.value = torch::empty(shape, torch::TensorOptions().dtype(dtype));
  } else if (staged.value.scalar_type() != dtype) {
    violation(fmt::format("weight update {}: chunks of '{}' disagree on the dtype", version_, chunk.name()));
  }
  const auto total = static_cast<std::uint64_t>(staged.value.nbytes());
  if (chunk.offset() != staged.received) {
    violation(fmt::format("weight update {}: a chunk of '{}' starts at byte {}, the next expected byte is {}", version_, chunk.name(),
                          chunk.offset(), staged.received));
  }
  if (chunk.data().size() > total - staged.received) {
    violation(fmt::format("weight update {}: chunk of '{}' at byte {} with {} bytes runs past the tensor's {} bytes", version_, chunk.name(),
                          chunk.offset(), chunk.data().size(), total));
  }
  std::memcpy(static_cast<char*>(staged.value.data_ptr()) + staged.received, chunk.data().data(), chunk.data().size());
  staged.received += chunk.data().size();
}

void WeightStaging::finish(const proto::WeightsEnd& end) {
  if (end.version() != version_) violation(fmt::format("the update to version {} ends as version {}", version_, end.version()));
  for (const auto& [name, shape] : expected_shapes_) {
    const auto it = staged_.find(name);
    if (it == staged_.end()) violation(fmt::format("weight update {}: parameter '{}' never arrived", version_, name));
    if (it->second.received != static_cast<std::uint64_t>(it->second.value.nbytes())) {
      violation(fmt::format("weight update {}: parameter '{}' is incomplete ({} of {} bytes)", version_, name, it->second.received,
                            it->second.value.nbytes()));
    }
  }
}

void WeightStaging::apply(policy::LlamaForCausalLM& model) const {
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) item.value().copy_(staged_.at(item.key()).value);
}

proto::WeightsBegin broadcast_weights_begin(const WeightSnapshot& snapshot, std::size_t bucket_bytes) {
  proto::WeightsBegin begin;
  begin.set_version(snapshot.version);
  begin.set_num_tensors(static_cast<std::uint32_t>(snapshot.tensors.size()));
  begin.set_broadcast(true);
  begin.set_bucket_bytes(bucket_bytes);
  for (const auto& tensor : snapshot.tensors) {
    auto* spec = begin.add_tensors();
    spec->set_name(tensor.name);
    spec->set_dtype(dtype_name(tensor.value.scalar_type()));
    spec->mutable_shape()->Add(tensor.value.sizes().begin(), tensor.value.sizes().end());
  }
  return begin;
}

BroadcastReceipt::BroadcastReceipt(const ParameterShapes& shapes, const proto::WeightsBegin& begin)
    : version_(begin.version()), bucket_bytes_(begin.bucket_bytes()) {
  if (!begin.broadcast()) violation("a chunked weight update where a broadcast one was expected");
  if (bucket_bytes_ == 0) violation(fmt::format("broadcast weight update {}: bucket_bytes is 0", version_));
  if (begin.num_tensors() != static_cast<std::uint32_t>(begin.tensors_size()) || shapes.size() != static_cast<std::size_t>(begin.tensors_size())) {
    violation(fmt::format("broadcast weight update {} announces {} tensors and lists {}; the model has {} parameters", version_, begin.num_tensors(),
                          begin.tensors_size(), shapes.size()));
  }
  std::set<std::string> seen;
  for (const auto& spec : begin.tensors()) {
    const auto expected = shapes.find(spec.name());
    if (expected == shapes.end()) violation(fmt::format("broadcast weight update {}: the model has no parameter '{}'", version_, spec.name()));
    if (!seen.insert(spec.name()).second) violation(fmt::format("broadcast weight update {}: '{}' is listed twice", version_, spec.name()));
    const std::vector<std::int64_t> shape(spec.shape().begin(), spec.shape().end());
    if (shape != expected->second) {
      violation(fmt::format("broadcast weight update {}: '{}' has shape {}, the model's is {}", version_, spec.name(), shape_text(shape),
                            shape_text(expected->second)));
    }
    specs_.push_back({spec.name(), parse_dtype_name(spec.dtype()), shape});
  }
}

void BroadcastReceipt::allocate(torch::Device device) {
  tensors_.clear();
  for (const auto& spec : specs_) tensors_.push_back(torch::empty(spec.shape, torch::TensorOptions().dtype(spec.dtype).device(device)));
}

void BroadcastReceipt::apply(policy::LlamaForCausalLM& model) const {
  if (tensors_.size() != specs_.size()) throw std::logic_error("BroadcastReceipt::apply before allocate");
  torch::NoGradGuard no_grad;
  auto parameters = model->named_parameters();
  for (std::size_t i = 0; i < specs_.size(); ++i) parameters[specs_[i].name].copy_(tensors_[i]);
}

}  // namespace grpo::rollout
