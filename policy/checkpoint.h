// Policy checkpoints in the Hugging Face layout: config.json, model.safetensors, tokenizer.json,
// tokenizer_config.json and generation_config.json in one folder, so a trained policy loads in transformers.
#pragma once

#include <filesystem>
#include <stdexcept>

#include <torch/torch.h>

#include "policy/char_tokenizer.h"
#include "policy/llama_model.h"

namespace grpo::policy {

class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Policy {
  LlamaForCausalLM model{nullptr};
  CharTokenizer tokenizer;
};

// Writes into "<dir>.tmp" and renames it over <dir>, so a reader never sees half a checkpoint.
void save_policy(const std::filesystem::path& dir, LlamaForCausalLM& model, const CharTokenizer& tokenizer);

// Throws CheckpointError naming the folder/file and what is wrong (missing folder or file, config that does not
// match the tensors, missing or unexpected tensors, wrong shapes).
Policy load_policy(const std::filesystem::path& dir, torch::Device device);

// A deep copy of the model (same config, parameters cloned), e.g. the frozen reference policy.
LlamaForCausalLM clone_model(LlamaForCausalLM& model);

}  // namespace grpo::policy
