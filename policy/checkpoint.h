// Policy checkpoints in the Hugging Face layout: config.json, model.safetensors (or shards with
// model.safetensors.index.json), tokenizer.json, tokenizer_config.json and generation_config.json in one folder,
// so that a base checkpoint from the Hub trains here and a trained policy loads back in transformers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "policy/llama_model.h"
#include "policy/tokenizer.h"

namespace grpo::policy {

class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Policy {
  LlamaForCausalLM model{nullptr};
  std::shared_ptr<const Tokenizer> tokenizer;
  // Ids that end a completion: generation_config.json's eos_token_id (an id or a list: Llama 3 and Qwen list
  // several), else config.json's, else the tokenizer's eos_token.
  std::vector<std::int64_t> stop_token_ids;
  // Filler for left padding: the tokenizer's pad_token, else config.json's pad_token_id, else the first stop id.
  std::int64_t pad_token_id = 0;
  // generation_config.json as the checkpoint had it (written back unchanged on save); null when it had none.
  nlohmann::json generation_config;
};

// The ids of a prompt as the model was trained to see it: the tokenizer's prompt BOS (if any) and the text, without
// doubling a BOS the text already starts with (a chat template that writes it).
std::vector<std::int64_t> encode_prompt(const Policy& policy, std::string_view text);

// A policy around a new model: stop and pad ids from the model's config and the tokenizer as load_policy would.
Policy make_policy(LlamaForCausalLM model, std::shared_ptr<const Tokenizer> tokenizer);

struct SaveOptions {
  // Shards of at most this many bytes, as transformers' save_pretrained(max_shard_size=...) writes them.
  std::int64_t max_shard_bytes = 5LL << 30;
};

// Writes into "<dir>.tmp" and renames it over <dir>, so a reader never sees half a checkpoint. Weights are saved
// in the model's dtype.
void save_policy(const std::filesystem::path& dir, const Policy& policy, const SaveOptions& options = {});

// Throws CheckpointError naming the folder/file and what is wrong (missing folder or file, an architecture or
// config setting we do not implement, a config that does not match the tensors, missing or unexpected tensors,
// wrong shapes, an unreadable tokenizer). Tensor names, shapes and dtypes are checked against config.json from the
// safetensors headers before the model is allocated, and errors name the shard and the config field. With
// tie_word_embeddings a stored lm_head.weight must equal the embedding (transformers would use it). The weights
// are converted to `dtype` (float32, bfloat16 or float16).
Policy load_policy(const std::filesystem::path& dir, torch::Device device, torch::ScalarType dtype = torch::kFloat32);

// A deep copy of the model (same config, parameters cloned), e.g. the frozen reference policy.
LlamaForCausalLM clone_model(LlamaForCausalLM& model);

}  // namespace grpo::policy
