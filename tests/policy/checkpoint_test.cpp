// Hugging Face layout checkpoints: save → load gives the same model; a bad folder is a clear error naming the path.
#include <gtest/gtest.h>

#include <fstream>

#include "policy/char_tokenizer.h"
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
  c.eos_token_id = tokenizer.eos_id().value();
  c.pad_token_id = tokenizer.pad_id().value();
  LlamaForCausalLM model(c);
  initialize_weights(model, 1);
  return model;
}

Policy tiny_policy() {
  const auto tokenizer = std::make_shared<const CharTokenizer>(CharTokenizer::make_embedded());
  return make_policy(tiny_model(*tokenizer), tokenizer);
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
  const auto policy = tiny_policy();
  auto model = policy.model;
  const auto dir = temp_dir("roundtrip");
  save_policy(dir, policy);
  for (const char* file : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"}) {
    EXPECT_TRUE(fs::exists(dir / file)) << file;
  }
  EXPECT_FALSE(fs::exists(dir.string() + ".tmp"));
  auto loaded = load_policy(dir, torch::kCPU);
  auto original = model->named_parameters();
  for (const auto& item : loaded.model->named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), original[item.key()])) << item.key();
  }
  EXPECT_EQ(loaded.tokenizer->encode("<think>1+2</think>"), policy.tokenizer->encode("<think>1+2</think>"));
  EXPECT_EQ(loaded.stop_token_ids, policy.stop_token_ids);
  EXPECT_EQ(loaded.pad_token_id, policy.pad_token_id);
  fs::remove_all(dir);
}

TEST(Checkpoint, ShardedSaveLoadsBackAndConvertsDtype) {
  const auto policy = tiny_policy();
  const auto dir = temp_dir("sharded");
  save_policy(dir, policy, {.max_shard_bytes = 4096});
  EXPECT_TRUE(fs::exists(dir / "model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(dir / "model.safetensors"));
  auto loaded = load_policy(dir, torch::kCPU, torch::kBFloat16);
  EXPECT_EQ(loaded.model->dtype(), torch::kBFloat16);
  auto original = policy.model->named_parameters();
  for (const auto& item : loaded.model->named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), original[item.key()].to(torch::kBFloat16))) << item.key();
  }
  // Saved in bfloat16, loaded back as float32: the config says so and the values survive.
  save_policy(dir, loaded);
  std::ifstream config(dir / "config.json");
  EXPECT_NE(std::string(std::istreambuf_iterator<char>(config), {}).find("\"torch_dtype\": \"bfloat16\""), std::string::npos);
  auto again = load_policy(dir, torch::kCPU);
  EXPECT_EQ(again.model->dtype(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(again.model->parameters()[0], loaded.model->parameters()[0].to(torch::kFloat32)));
  fs::remove_all(dir);
}

TEST(Checkpoint, StopIdsComeFromGenerationConfig) {
  const auto policy = tiny_policy();
  const auto dir = temp_dir("generation");
  save_policy(dir, policy);
  std::ofstream(dir / "generation_config.json") << R"({"eos_token_id": [1, 5], "temperature": 0.7})";
  auto loaded = load_policy(dir, torch::kCPU);
  EXPECT_EQ(loaded.stop_token_ids, (std::vector<std::int64_t>{1, 5}));
  // Written back unchanged, sampling settings included.
  save_policy(dir, loaded);
  std::ifstream saved(dir / "generation_config.json");
  EXPECT_NE(std::string(std::istreambuf_iterator<char>(saved), {}).find("0.7"), std::string::npos);
  std::ofstream(dir / "generation_config.json") << R"({"eos_token_id": [1, 5000]})";
  EXPECT_NE(error_of(dir).find("eos_token_id 5000 is outside the vocabulary"), std::string::npos) << error_of(dir);
  fs::remove_all(dir);
}

TEST(Checkpoint, CloneIsIndependent) {
  auto model = tiny_policy().model;
  auto copy = clone_model(model);
  {
    torch::NoGradGuard no_grad;
    model->parameters()[0].add_(1.0);
  }
  EXPECT_FALSE(torch::equal(model->parameters()[0], copy->parameters()[0]));
}

TEST(Checkpoint, BadFoldersAreClearErrors) {
  EXPECT_NE(error_of("/nonexistent/model").find("/nonexistent/model does not exist"), std::string::npos);

  const auto dir = temp_dir("bad");
  save_policy(dir, tiny_policy());

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
  EXPECT_NE(error_of(dir).find("no weights: neither model.safetensors nor model.safetensors.index.json exists"), std::string::npos)
      << error_of(dir);
  std::ofstream(dir / "config.json") << "{ not json";
  save_safetensors(dir / "model.safetensors", tensors);
  EXPECT_NE(error_of(dir).find("config.json"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace grpo::policy
