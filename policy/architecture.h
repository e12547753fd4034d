// The registry of supported architectures, keyed by config.json's "architectures" entry. Each architecture lives in
// its own file under policy/architectures/ and says how its config.json differs from the common fields: which
// biases and norms the decoder has and which settings it must reject. The decoder itself (policy/llama_model.h)
// is shared: the three families differ only in those flags.
#pragma once

#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/model_config.h"

namespace grpo::policy {

struct Architecture {
  std::string_view name;        // config.json "architectures": "Qwen2ForCausalLM"
  std::string_view model_type;  // config.json "model_type": "qwen2"
  // Sets the architecture's flags on `config` (common fields already read) from `json`; throws
  // std::invalid_argument naming `source` and the field for settings that change the math and are not implemented.
  void (*read)(const nlohmann::json& json, const std::filesystem::path& source, ModelConfig& config);
  // Adds the architecture's own fields to a config.json being written.
  void (*write)(const ModelConfig& config, nlohmann::json& json);
};

// Throws std::invalid_argument listing the supported names.
const Architecture& find_architecture(std::string_view name);
std::span<const Architecture> architectures();
std::vector<std::string> architecture_names();

namespace architectures_detail {
// Defined one per file in policy/architectures/.
extern const Architecture kLlama;
extern const Architecture kQwen2;
extern const Architecture kQwen3;
// Shared by Qwen2 and Qwen3: rejects use_sliding_window and sliding layer_types, which we do not implement.
void reject_sliding_window(const nlohmann::json& json, const std::filesystem::path& source);
}  // namespace architectures_detail

}  // namespace grpo::policy
