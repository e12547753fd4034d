// Hugging Face layout checkpoints of the policy (see checkpoint.h).
#include "policy/checkpoint.h"

#include <fstream>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

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

}  // namespace

void save_policy(const fs::path& dir, LlamaForCausalLM& model, const CharTokenizer& tokenizer) {
  const fs::path staging = dir.string() + ".tmp";
  std::error_code ignored;
  fs::remove_all(staging, ignored);
  fs::create_directories(staging);

  auto config = model->config().to_json();
  write_json(staging / "config.json", config);
  nlohmann::json generation = {{"eos_token_id", tokenizer.eos_id()}, {"pad_token_id", tokenizer.pad_id()}, {"do_sample", true}};
  write_json(staging / "generation_config.json", generation);
  tokenizer.save(staging);

  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& item : model->named_parameters()) {
    tensors.emplace_back(item.key(), item.value().detach().to(torch::kCPU));
  }
  save_safetensors(staging / "model.safetensors", tensors);

  fs::remove_all(dir, ignored);
  fs::rename(staging, dir);
}

Policy load_policy(const fs::path& dir, torch::Device device) {
  if (!fs::is_directory(dir)) {
    throw CheckpointError(fmt::format("model folder {} does not exist (make the base checkpoint with `grpo pretrain`, or point "
                                      "model.path at a Hugging Face layout folder)", dir.string()));
  }
  for (const char* name : {"config.json", "model.safetensors", "tokenizer.json"}) {
    if (!fs::exists(dir / name)) throw CheckpointError(fmt::format("{}: missing {}", dir.string(), name));
  }
  ModelConfig config;
  try {
    config = ModelConfig::from_json(read_json(dir / "config.json"), dir / "config.json");
  } catch (const std::invalid_argument& error) {
    throw CheckpointError(error.what());
  }
  Policy policy{LlamaForCausalLM(config), CharTokenizer::load(dir)};
  if (policy.tokenizer.vocab_size() > config.vocab_size) {
    throw CheckpointError(fmt::format("{}: tokenizer has {} tokens but config.json says vocab_size {}", dir.string(),
                                      policy.tokenizer.vocab_size(), config.vocab_size));
  }
  SafetensorsFile file;
  try {
    file = load_safetensors(dir / "model.safetensors");
  } catch (const SafetensorsError& error) {
    throw CheckpointError(error.what());
  }
  torch::NoGradGuard no_grad;
  std::set<std::string> expected;
  for (auto& item : policy.model->named_parameters()) {
    expected.insert(item.key());
    const auto found = file.tensors.find(item.key());
    if (found == file.tensors.end()) {
      throw CheckpointError(fmt::format("{}: tensor '{}' is missing", (dir / "model.safetensors").string(), item.key()));
    }
    if (found->second.sizes() != item.value().sizes()) {
      throw CheckpointError(fmt::format("{}: tensor '{}' has shape {} but config.json implies {}", (dir / "model.safetensors").string(),
                                        item.key(), fmt::join(found->second.sizes(), "x"), fmt::join(item.value().sizes(), "x")));
    }
    item.value().copy_(found->second.to(item.value().scalar_type()));
  }
  for (const auto& [name, tensor] : file.tensors) {
    // Tied checkpoints written by transformers may still carry lm_head.weight; it must then equal the embedding.
    if (expected.count(name) == 0 && !(name == "lm_head.weight" && config.tie_word_embeddings)) {
      throw CheckpointError(fmt::format("{}: unexpected tensor '{}' for {}", (dir / "model.safetensors").string(), name, config.architecture));
    }
  }
  policy.model->to(device);
  return policy;
}

LlamaForCausalLM clone_model(LlamaForCausalLM& model) {
  LlamaForCausalLM copy(model->config());
  torch::NoGradGuard no_grad;
  auto source = model->named_parameters();
  for (auto& item : copy->named_parameters()) item.value().copy_(source[item.key()]);
  copy->to(model->device());
  return copy;
}

}  // namespace grpo::policy
