// Hugging Face layout checkpoints of the policy (see checkpoint.h).
#include "policy/checkpoint.h"

#include <fstream>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "policy/checkpoint_weights.h"
#include "policy/safetensors.h"

namespace grpo::policy {
namespace fs = std::filesystem;
namespace {

void write_json(const fs::path& file, const nlohmann::json& json) {
  std::ofstream out(file);
  out << json.dump(2) << "\n";
  if (!out) throw CheckpointError(fmt::format("cannot write {}", file.string()));
}

nlohmann::json read_json(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw CheckpointError(fmt::format("cannot read {}", file.string()));
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& error) {
    throw CheckpointError(fmt::format("{}: invalid JSON: {}", file.string(), error.what()));
  }
}

// generation_config.json's eos_token_id: an id, a list of ids, or absent.
std::vector<std::int64_t> generation_eos_ids(const nlohmann::json& generation, const fs::path& file) {
  if (!generation.is_object() || !generation.contains("eos_token_id") || generation["eos_token_id"].is_null()) return {};
  const auto& value = generation["eos_token_id"];
  std::vector<std::int64_t> ids;
  if (value.is_number_integer()) ids.push_back(value.get<std::int64_t>());
  if (value.is_array()) {
    for (const auto& id : value) {
      if (id.is_number_integer()) ids.push_back(id.get<std::int64_t>());
    }
  }
  if (ids.empty()) throw CheckpointError(fmt::format("{}: eos_token_id must be an integer or a list of integers, got {}", file.string(), value.dump()));
  return ids;
}

std::string dtype_name(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat32: return "float32";
    case torch::kBFloat16: return "bfloat16";
    case torch::kFloat16: return "float16";
    default: return c10::toString(dtype);
  }
}

// Copies the checkpoint's tensors into the model's parameters (converting dtype), checking names, shapes and dtypes
// first, so that a bad checkpoint leaves nothing half-loaded.
void copy_weights(LlamaForCausalLM& model, const SafetensorsFile& file, const fs::path& dir) {
  const auto& config = model->config();
  std::vector<std::pair<std::string, torch::Tensor>> destinations;
  for (auto& item : model->named_parameters()) {
    const auto found = file.tensors.find(item.key());
    if (found != file.tensors.end()) {
      const auto dtype = found->second.scalar_type();
      if (dtype != torch::kFloat32 && dtype != torch::kBFloat16 && dtype != torch::kFloat16) {
        throw CheckpointError(fmt::format("{}: tensor '{}' has dtype {}; weights must be F32, BF16 or F16", dir.string(), item.key(),
                                          c10::toString(dtype)));
      }
    }
    destinations.emplace_back(item.key(), item.value());
  }
  std::vector<std::string> unused;
  try {
    unused = copy_weights_into(file, destinations, fmt::format("{} ({} with this config.json)", dir.string(), config.architecture));
  } catch (const SafetensorsError& error) {
    throw CheckpointError(error.what());
  }
  for (const auto& name : unused) {
    // Tied checkpoints written by transformers may still carry lm_head.weight (a copy of the embedding).
    if (!(name == "lm_head.weight" && config.tie_word_embeddings)) {
      throw CheckpointError(fmt::format("{}: unexpected tensor '{}' for {} with this config.json", dir.string(), name, config.architecture));
    }
  }
}

}  // namespace

std::vector<std::int64_t> encode_prompt(const Policy& policy, std::string_view text) {
  auto ids = policy.tokenizer->encode(text);
  if (const auto bos = policy.tokenizer->prompt_bos_id(); bos && (ids.empty() || ids.front() != *bos)) ids.insert(ids.begin(), *bos);
  return ids;
}

Policy make_policy(LlamaForCausalLM model, std::shared_ptr<const Tokenizer> tokenizer) {
  Policy policy{std::move(model), std::move(tokenizer), {}, 0, nullptr};
  const auto& config = policy.model->config();
  policy.stop_token_ids = config.eos_token_ids;
  if (policy.stop_token_ids.empty() && config.eos_token_id >= 0) policy.stop_token_ids.push_back(config.eos_token_id);
  if (const auto eos = policy.tokenizer->eos_id();
      eos && std::find(policy.stop_token_ids.begin(), policy.stop_token_ids.end(), *eos) == policy.stop_token_ids.end()) {
    policy.stop_token_ids.push_back(*eos);
  }
  if (const auto pad = policy.tokenizer->pad_id()) {
    policy.pad_token_id = *pad;
  } else if (config.pad_token_id >= 0) {
    policy.pad_token_id = config.pad_token_id;
  } else if (!policy.stop_token_ids.empty()) {
    policy.pad_token_id = policy.stop_token_ids.front();
  }
  return policy;
}

void save_policy(const fs::path& dir, const Policy& policy, const SaveOptions& options) {
  const fs::path staging = dir.string() + ".tmp";
  std::error_code ignored;
  fs::remove_all(staging, ignored);
  fs::create_directories(staging);

  auto config = policy.model->config().to_json();
  config["torch_dtype"] = dtype_name(policy.model->dtype());
  write_json(staging / "config.json", config);
  auto generation = policy.generation_config;
  if (!generation.is_object()) {
    generation = {{"do_sample", true}, {"pad_token_id", policy.pad_token_id}};
    if (policy.stop_token_ids.size() == 1) generation["eos_token_id"] = policy.stop_token_ids.front();
    if (policy.stop_token_ids.size() > 1) generation["eos_token_id"] = policy.stop_token_ids;
  }
  write_json(staging / "generation_config.json", generation);
  policy.tokenizer->save(staging);

  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& item : policy.model->named_parameters()) {
    tensors.emplace_back(item.key(), item.value().detach().to(torch::kCPU));
  }
  try {
    save_checkpoint_weights(staging, tensors, options.max_shard_bytes);
  } catch (const std::runtime_error& error) {
    throw CheckpointError(error.what());
  }
  fs::remove_all(dir, ignored);
  fs::rename(staging, dir);
}

Policy load_policy(const fs::path& dir, torch::Device device, torch::ScalarType dtype) {
  if (!fs::is_directory(dir)) {
    throw CheckpointError(fmt::format("model folder {} does not exist (make the base checkpoint with `grpo pretrain`, or point "
                                      "model.path at a Hugging Face layout folder)", dir.string()));
  }
  if (dtype != torch::kFloat32 && dtype != torch::kBFloat16 && dtype != torch::kFloat16) {
    throw CheckpointError(fmt::format("{}: cannot load weights as {}; supported: float32, bfloat16, float16", dir.string(), c10::toString(dtype)));
  }
  for (const char* name : {"config.json", "tokenizer.json"}) {
    if (!fs::exists(dir / name)) throw CheckpointError(fmt::format("{}: missing {}", dir.string(), name));
  }
  ModelConfig config;
  try {
    config = ModelConfig::from_json(read_json(dir / "config.json"), dir / "config.json");
  } catch (const std::invalid_argument& error) {
    throw CheckpointError(error.what());
  } catch (const nlohmann::json::exception& error) {
    throw CheckpointError(fmt::format("{}: {}", (dir / "config.json").string(), error.what()));
  }
  std::shared_ptr<const Tokenizer> tokenizer;
  try {
    tokenizer = load_tokenizer(dir);
  } catch (const TokenizerError& error) {
    throw CheckpointError(error.what());
  }
  // Added tokens may lie past config.json's vocab_size only if the embedding covers them; Qwen pads the embedding
  // beyond the tokenizer (151936 rows for 151665 tokens), which is fine.
  if (tokenizer->vocab_size() > config.vocab_size) {
    throw CheckpointError(fmt::format("{}: tokenizer has {} tokens but config.json says vocab_size {}", dir.string(),
                                      tokenizer->vocab_size(), config.vocab_size));
  }
  SafetensorsFile weights;
  try {
    weights = load_checkpoint_weights(dir);
  } catch (const std::runtime_error& error) {
    throw CheckpointError(error.what());
  }
  LlamaForCausalLM model(config, dtype);
  copy_weights(model, weights, dir);
  weights.tensors.clear();  // unmaps the files before the device copy allocates more memory
  model->to(device);
  auto policy = make_policy(model, std::move(tokenizer));
  if (fs::exists(dir / "generation_config.json")) {
    policy.generation_config = read_json(dir / "generation_config.json");
    if (const auto ids = generation_eos_ids(policy.generation_config, dir / "generation_config.json"); !ids.empty()) {
      for (const auto id : ids) {
        if (id < 0 || id >= config.vocab_size) {
          throw CheckpointError(fmt::format("{}: eos_token_id {} is outside the vocabulary of {}", (dir / "generation_config.json").string(), id,
                                            config.vocab_size));
        }
      }
      policy.stop_token_ids = ids;
    }
  }
  if (policy.stop_token_ids.empty()) {
    throw CheckpointError(fmt::format("{}: no end-of-sequence token: set eos_token_id in generation_config.json or config.json, or "
                                      "eos_token in tokenizer_config.json", dir.string()));
  }
  return policy;
}

LlamaForCausalLM clone_model(LlamaForCausalLM& model) {
  LlamaForCausalLM copy(model->config(), model->dtype());
  torch::NoGradGuard no_grad;
  auto source = model->named_parameters();
  for (auto& item : copy->named_parameters()) item.value().copy_(source[item.key()]);
  copy->to(model->device());
  return copy;
}

}  // namespace grpo::policy
