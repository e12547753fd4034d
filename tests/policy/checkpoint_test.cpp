// Hugging Face layout checkpoints: save → load gives the same model; a bad folder is a clear error naming the path.
#include <gtest/gtest.h>

#include <fstream>

#include "policy/checkpoint.h"
#include "policy/safetensors.h"

namespace grpo::policy {
namespace {
namespace fs = std::filesystem;

fs::path temp_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("grpo_checkpoint_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir;
}

LlamaForCausalLM tiny_model(const CharTokenizer& tokenizer) {
  ModelConfig c;
  c.vocab_size = tokenizer.vocab_size();
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  c.head_dim = 8;
  c.max_position_embeddings = 32;
  c.eos_token_id = tokenizer.eos_id();
  c.pad_token_id = tokenizer.pad_id();
  LlamaForCausalLM model(c);
  initialize_weights(model, 1);
  return model;
}

std::string error_of(const fs::path& dir) {
  try {
    load_policy(dir, torch::kCPU);
  } catch (const CheckpointError& error) {
    return error.what();
  }
  return "no error";
}

TEST(Checkpoint, SaveThenLoadGivesTheSameModel) {
  const auto tokenizer = CharTokenizer::make_embedded();
  auto model = tiny_model(tokenizer);
  const auto dir = temp_dir("roundtrip");
  save_policy(dir, model, tokenizer);
  for (const char* file : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"}) {
    EXPECT_TRUE(fs::exists(dir / file)) << file;
  }
  EXPECT_FALSE(fs::exists(dir.string() + ".tmp"));
  auto loaded = load_policy(dir, torch::kCPU);
  auto original = model->named_parameters();
  for (const auto& item : loaded.model->named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), original[item.key()])) << item.key();
  }
  EXPECT_EQ(loaded.tokenizer.encode("<think>1+2</think>"), tokenizer.encode("<think>1+2</think>"));
  fs::remove_all(dir);
}

TEST(Checkpoint, CloneIsIndependent) {
  const auto tokenizer = CharTokenizer::make_embedded();
  auto model = tiny_model(tokenizer);
  auto copy = clone_model(model);
  {
    torch::NoGradGuard no_grad;
    model->parameters()[0].add_(1.0);
  }
  EXPECT_FALSE(torch::equal(model->parameters()[0], copy->parameters()[0]));
}

TEST(Checkpoint, BadFoldersAreClearErrors) {
  EXPECT_NE(error_of("/nonexistent/model").find("/nonexistent/model does not exist"), std::string::npos);

  const auto tokenizer = CharTokenizer::make_embedded();
  auto model = tiny_model(tokenizer);
  const auto dir = temp_dir("bad");
  save_policy(dir, model, tokenizer);

  // A tensor missing from the file.
  auto file = load_safetensors(dir / "model.safetensors");
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& [name, tensor] : file.tensors) {
    if (name != "model.norm.weight") tensors.emplace_back(name, tensor.clone());
  }
  file = {};
  save_safetensors(dir / "model.safetensors", tensors);
  EXPECT_NE(error_of(dir).find("'model.norm.weight' is missing"), std::string::npos) << error_of(dir);

  // A tensor whose shape does not match config.json, and an unexpected one.
  tensors.emplace_back("model.norm.weight", torch::ones({3}));
  save_safetensors(dir / "model.safetensors", tensors);
  EXPECT_NE(error_of(dir).find("model.norm.weight"), std::string::npos);
  EXPECT_NE(error_of(dir).find("shape"), std::string::npos);
  tensors.back().second = torch::ones({16});
  tensors.emplace_back("model.layers.7.mlp.up_proj.weight", torch::ones({2}));
  save_safetensors(dir / "model.safetensors", tensors);
  EXPECT_NE(error_of(dir).find("unexpected tensor 'model.layers.7.mlp.up_proj.weight'"), std::string::npos) << error_of(dir);

  // A truncated file.
  tensors.pop_back();
  save_safetensors(dir / "model.safetensors", tensors);
  fs::resize_file(dir / "model.safetensors", fs::file_size(dir / "model.safetensors") / 2);
  EXPECT_NE(error_of(dir).find("model.safetensors"), std::string::npos);

  // A missing file and a broken config.json.
  fs::remove(dir / "model.safetensors");
  EXPECT_NE(error_of(dir).find("missing model.safetensors"), std::string::npos);
  std::ofstream(dir / "config.json") << "{ not json";
  save_safetensors(dir / "model.safetensors", tensors);
  EXPECT_NE(error_of(dir).find("config.json"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace grpo::policy
