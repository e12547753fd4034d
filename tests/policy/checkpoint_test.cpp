// Hugging Face layout checkpoints: save → load gives the same model; a bad folder is a clear error naming the path.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>

#include "policy/char_tokenizer.h"
#include "policy/checkpoint.h"
#include "policy/checkpoint_weights.h"
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
  tensors.emplace_back("model.layers.0.mlp.up_proj.bias", torch::ones({2}));
  save_safetensors(dir / "model.safetensors", tensors);
  EXPECT_NE(error_of(dir).find("model.safetensors: unexpected tensor 'model.layers.0.mlp.up_proj.bias'"),
            std::string::npos)
      << error_of(dir);
  // A layer past config.json's num_hidden_layers.
  tensors.back() = {"model.layers.7.mlp.up_proj.weight", torch::ones({2})};
  save_safetensors(dir / "model.safetensors", tensors);
  EXPECT_NE(error_of(dir).find("config.json says num_hidden_layers = 1 but model.safetensors has layers 0, 7"),
            std::string::npos)
      << error_of(dir);

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

void edit_config(const fs::path& dir, const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json json;
  {
    std::ifstream in(dir / "config.json");
    json = nlohmann::json::parse(in);
  }
  edit(json);
  std::ofstream(dir / "config.json") << json.dump(2);
}

// Rewrites one safetensors file of a checkpoint with `edit` applied to its (cloned) tensors.
void edit_weights(const fs::path& file, const std::function<void(std::map<std::string, torch::Tensor>&)>& edit) {
  std::map<std::string, torch::Tensor> tensors;
  {
    const auto loaded = load_safetensors(file);
    for (const auto& [name, tensor] : loaded.tensors) tensors[name] = tensor.clone();
  }
  edit(tensors);
  save_safetensors(file, {tensors.begin(), tensors.end()});
}

// A config.json that claims more than the tensors hold fails on the safetensors headers, before the model is
// allocated: 1e10 embedding rows or a 2^40-wide MLP would otherwise be an out-of-memory (a c10::Error, not a
// CheckpointError), 100000 layers a long allocation and then a missing tensor.
TEST(Checkpoint, ConfigClaimingMoreThanTheTensorsFailsBeforeAllocating) {
  const auto dir = temp_dir("claims");
  save_policy(dir, tiny_policy());
  const auto saved = [&] { save_policy(dir, tiny_policy()); };
  edit_config(dir, [](auto& json) { json["num_hidden_layers"] = 100000; });
  EXPECT_EQ(error_of(dir),
            dir.string() + ": config.json says num_hidden_layers = 100000 but model.safetensors has layers 0");
  saved();
  edit_config(dir, [](auto& json) { json["vocab_size"] = 10000000000LL; });
  EXPECT_NE(
      error_of(dir).find((dir / "model.safetensors").string() + ": tensor 'model.embed_tokens.weight' has shape ["),
      std::string::npos)
      << error_of(dir);
  EXPECT_NE(error_of(dir).find("config.json implies [10000000000, 16] (vocab_size 10000000000, hidden_size 16)"),
            std::string::npos)
      << error_of(dir);
  saved();
  edit_config(dir, [](auto& json) { json["intermediate_size"] = 1LL << 40; });
  EXPECT_NE(error_of(dir).find("tensor 'model.layers.0.mlp.gate_proj.weight' has shape [24, 16], config.json implies "
                               "[1099511627776, 16] (intermediate_size 1099511627776, hidden_size 16)"),
            std::string::npos)
      << error_of(dir);
  saved();
  edit_config(dir, [](auto& json) { json["num_key_value_heads"] = 2; });
  EXPECT_NE(error_of(dir).find(
                "tensor 'model.layers.0.self_attn.k_proj.weight' has shape [8, 16], config.json implies [16, 16] "
                "(num_key_value_heads 2 × head_dim 8, hidden_size 16)"),
            std::string::npos)
      << error_of(dir);
  saved();
  edit_config(dir, [](auto& json) { json["tie_word_embeddings"] = false; });
  EXPECT_NE(error_of(dir).find(
                "model.safetensors: tensor 'lm_head.weight' is missing; LlamaForCausalLM with this config.json has it "
                "(config.json's tie_word_embeddings is false)"),
            std::string::npos)
      << error_of(dir);
  fs::remove_all(dir);
}

// transformers loads a stored lm_head.weight even with tie_word_embeddings, so one that differs from the embedding
// cannot be dropped silently; an exact copy (what tied saves may carry) is fine.
TEST(Checkpoint, TiedConfigRejectsALmHeadThatDiffersFromTheEmbedding) {
  const auto dir = temp_dir("tied_head");
  save_policy(dir, tiny_policy());
  edit_weights(dir / "model.safetensors",
               [](auto& tensors) { tensors["lm_head.weight"] = tensors.at("model.embed_tokens.weight") + 1; });
  EXPECT_EQ(error_of(dir),
            (dir / "model.safetensors").string() +
                ": config.json sets tie_word_embeddings but the checkpoint's lm_head.weight differs from "
                "model.embed_tokens.weight; set tie_word_embeddings to false");
  // Untied, the same checkpoint loads with its own head.
  edit_config(dir, [](auto& json) { json["tie_word_embeddings"] = false; });
  auto untied = load_policy(dir, torch::kCPU);
  auto params = untied.model->named_parameters();
  EXPECT_TRUE(torch::equal(params["lm_head.weight"], params["model.embed_tokens.weight"] + 1));
  edit_config(dir, [](auto& json) { json["tie_word_embeddings"] = true; });
  edit_weights(dir / "model.safetensors",
               [](auto& tensors) { tensors["lm_head.weight"] = tensors.at("model.embed_tokens.weight").clone(); });
  EXPECT_NO_THROW(load_policy(dir, torch::kCPU));
  edit_weights(dir / "model.safetensors", [](auto& tensors) {
    tensors["lm_head.weight"] = tensors.at("model.embed_tokens.weight").narrow(0, 0, 3);
  });
  EXPECT_NE(error_of(dir).find("lm_head.weight differs from model.embed_tokens.weight"), std::string::npos)
      << error_of(dir);
  fs::remove_all(dir);
}

// A config.json field of the wrong type is a CheckpointError naming the file and the field, not nlohmann's
// "[json.exception.type_error.302] type must be string, but is null".
TEST(Checkpoint, ConfigTypeErrorsNameTheFileAndField) {
  const auto dir = temp_dir("config_types");
  save_policy(dir, tiny_policy());
  edit_config(dir, [](auto& json) { json["hidden_act"] = nullptr; });
  EXPECT_EQ(error_of(dir), (dir / "config.json").string() + ": field 'hidden_act' must be a string, got null");
  edit_config(dir, [](auto& json) {
    json["hidden_act"] = "silu";
    json["mlp_bias"] = nullptr;
  });
  EXPECT_EQ(error_of(dir), (dir / "config.json").string() + ": field 'mlp_bias' must be true or false, got null");
  edit_config(dir, [](auto& json) {
    json.erase("mlp_bias");
    json["rope_scaling"] = nullptr;  // transformers: no scaling
  });
  EXPECT_NO_THROW(load_policy(dir, torch::kCPU));
  edit_config(dir, [](auto& json) {
    json["architectures"] = {"Qwen3ForCausalLM"};
    json["model_type"] = "llama";
  });
  EXPECT_NE(error_of(dir).find(
                "model_type 'llama' (which is LlamaForCausalLM) does not match architectures [\"Qwen3ForCausalLM\"]"),
            std::string::npos)
      << error_of(dir);
  fs::remove_all(dir);
}

// Errors found after the headers are parsed name the shard that holds the tensor, not only the folder.
TEST(Checkpoint, TensorErrorsNameTheShardFile) {
  const auto dir = temp_dir("shard_errors");
  save_policy(dir, tiny_policy(), {.max_shard_bytes = 4096});
  const auto norm_shard = checkpoint_file_of(dir, "model.norm.weight");
  ASSERT_TRUE(norm_shard.filename().string().starts_with("model-0000")) << norm_shard;
  ASSERT_NE(norm_shard, checkpoint_file_of(dir, "model.embed_tokens.weight"));
  edit_weights(norm_shard, [](auto& tensors) { tensors["model.norm.weight"] = torch::ones({3}); });
  EXPECT_EQ(error_of(dir), norm_shard.string() +
                               ": tensor 'model.norm.weight' has shape [3], config.json implies [16] (hidden_size 16)");
  edit_weights(norm_shard, [](auto& tensors) { tensors["model.norm.weight"] = torch::ones({16}, torch::kInt32); });
  EXPECT_EQ(error_of(dir),
            norm_shard.string() + ": tensor 'model.norm.weight' has dtype Int; weights must be F32, BF16 or F16");
  edit_weights(norm_shard, [](auto& tensors) { tensors["model.norm.weight"] = torch::ones({16}); });
  EXPECT_NO_THROW(load_policy(dir, torch::kCPU));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace grpo::policy
