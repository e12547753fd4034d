// Model parity with Hugging Face transformers: for small random Llama (with llama3 RoPE scaling), Qwen2 (q/k/v
// biases, tied embeddings) and Qwen3 (q/k norms, explicit head_dim) checkpoints written by transformers
// (scripts/hf_parity.py), our per-token log-probs on a left-padded batch agree within 1e-4 in float32, our KV-cache
// greedy decoding gives the same 64 tokens, and the checkpoint we save (sharded) loads in transformers with the same
// log-probs. One test visits every registered architecture; another checks that a config.json without head_dim or
// num_key_value_heads (or with them null) resolves to the sizes transformers' config class gives.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "policy/architecture.h"
#include "policy/checkpoint.h"
#include "rollout/generator.h"
#include "tests/testing/python.h"

namespace grpo::policy {
namespace {
namespace fs = std::filesystem;

// float32 log-probs of a 2-layer model: transformers and we sum in different orders, so agreement is to rounding.
constexpr double kLogprobTolerance = 1e-4;

const std::map<std::string, std::string>& folder_of_architecture() {
  static const std::map<std::string, std::string> folders = {
      {"LlamaForCausalLM", "llama"}, {"Qwen2ForCausalLM", "qwen2"}, {"Qwen3ForCausalLM", "qwen3"}};
  return folders;
}

class HfParity : public ::testing::Test {
 protected:
  // The checkpoints are made once for the suite: importing transformers takes most of the time.
  static void SetUpTestSuite() {
    if (testing::reference_python().empty()) return;
    root_ = fs::temp_directory_path() / ("grpo_hf_parity_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    const auto run = testing::run_python(fs::path(GRPO_SOURCE_DIR) / "scripts/hf_parity.py", {"make", root_.string()});
    made_ = run.exit_code == 0;
  }
  static void TearDownTestSuite() {
    if (!root_.empty()) fs::remove_all(root_);
  }
  void SetUp() override {
    if (testing::reference_python().empty()) GTEST_SKIP() << "no reference Python (GRPO_PYTHON); run scripts/setup for transformers";
    ASSERT_TRUE(made_) << "scripts/hf_parity.py make failed (is transformers installed in " << GRPO_PYTHON << "?)";
  }

  static nlohmann::json read_json(const fs::path& file) {
    std::ifstream in(file);
    return nlohmann::json::parse(in);
  }

  // Our float32 log-probs of each prompt's tokens given the ones before, on one left-padded batch.
  static std::vector<std::vector<double>> our_logprobs(LlamaForCausalLM& model, const std::vector<std::vector<std::int64_t>>& prompts) {
    torch::NoGradGuard no_grad;
    std::int64_t width = 0;
    for (const auto& p : prompts) width = std::max<std::int64_t>(width, static_cast<std::int64_t>(p.size()));
    const auto rows = static_cast<std::int64_t>(prompts.size());
    auto ids = torch::zeros({rows, width}, torch::kInt64);
    auto valid = torch::zeros({rows, width}, torch::kBool);
    for (std::int64_t r = 0; r < rows; ++r) {
      const auto& p = prompts[static_cast<std::size_t>(r)];
      const auto start = width - static_cast<std::int64_t>(p.size());
      ids[r].narrow(0, start, static_cast<std::int64_t>(p.size())).copy_(torch::tensor(p));
      valid[r].narrow(0, start, static_cast<std::int64_t>(p.size())).fill_(true);
    }
    const auto logits = model->forward(ids, positions_from_valid(valid), causal_padding_mask(valid, width));
    const auto logprobs = torch::log_softmax(logits.to(torch::kFloat32), -1);
    std::vector<std::vector<double>> out;
    for (std::int64_t r = 0; r < rows; ++r) {
      const auto& p = prompts[static_cast<std::size_t>(r)];
      const auto start = width - static_cast<std::int64_t>(p.size());
      std::vector<double> row;
      for (auto t = start; t + 1 < width; ++t) row.push_back(logprobs[r][t][ids[r][t + 1].item<std::int64_t>()].item<double>());
      out.push_back(row);
    }
    return out;
  }

  static double max_difference(const std::vector<std::vector<double>>& ours, const nlohmann::json& theirs) {
    double worst = 0.0;
    EXPECT_EQ(ours.size(), theirs.size());
    for (std::size_t r = 0; r < std::min(ours.size(), theirs.size()); ++r) {
      EXPECT_EQ(ours[r].size(), theirs[r].size()) << "row " << r;
      for (std::size_t t = 0; t < std::min(ours[r].size(), theirs[r].size()); ++t) {
        worst = std::max(worst, std::abs(ours[r][t] - theirs[r][t].get<double>()));
      }
    }
    return worst;
  }

  static inline fs::path root_;
  static inline bool made_ = false;
};

TEST_F(HfParity, EveryArchitectureMatchesTransformers) {
  std::vector<std::string> saved_folders;
  std::map<std::string, std::vector<std::vector<double>>> ours_by_folder;
  for (const auto& arch : architectures()) {
    SCOPED_TRACE(std::string(arch.name));
    const auto folder = folder_of_architecture().find(std::string(arch.name));
    ASSERT_NE(folder, folder_of_architecture().end()) << "a new architecture needs a checkpoint in scripts/hf_parity.py";
    const auto dir = root_ / folder->second;
    auto policy = load_policy(dir, torch::kCPU);
    EXPECT_EQ(policy.model->config().architecture, arch.name);
    const auto reference = read_json(dir / "reference.json");
    const auto prompts = reference["prompts"].get<std::vector<std::vector<std::int64_t>>>();

    const auto ours = our_logprobs(policy.model, prompts);
    const auto difference = max_difference(ours, reference["logprobs"]);
    EXPECT_LT(difference, kLogprobTolerance);
    std::cout << arch.name << ": max |log-prob difference| " << difference << "\n";

    rollout::GenerationRequest request;
    request.prompts = prompts;
    request.max_new_tokens = 64;
    request.sampling.temperature = 0.0;  // greedy; no stop ids, so every row runs its 64 tokens
    auto model = policy.model;
    const auto generated = rollout::generate(model, request);
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      EXPECT_EQ(generated.completions[i].tokens, reference["greedy"][i].get<std::vector<std::int64_t>>()) << "prompt " << i;
    }

    // What we save (sharded, to exercise the index) must load in transformers with the same log-probs.
    const auto saved = root_ / (folder->second + "_saved");
    save_policy(saved, policy, {.max_shard_bytes = 64 * 1024});
    EXPECT_TRUE(fs::exists(saved / "model.safetensors.index.json"));
    saved_folders.push_back(saved.string());
    ours_by_folder[saved.string()] = ours;
  }
  // One Python run for every saved checkpoint: importing transformers is most of its cost.
  auto args = saved_folders;
  args.insert(args.begin(), (root_ / "llama/reference.json").string());
  args.insert(args.begin(), "score");
  const auto run = testing::run_python(fs::path(GRPO_SOURCE_DIR) / "scripts/hf_parity.py", args);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto theirs = nlohmann::json::parse(run.output);
  for (const auto& folder : saved_folders) {
    EXPECT_LT(max_difference(ours_by_folder[folder], theirs[folder]), kLogprobTolerance) << folder;
  }
}

// scripts/hf_parity.py's defaults.json: what transformers builds from a config.json of 64 heads, hidden 128, with
// head_dim and num_key_value_heads missing or null (null where it fails to build).
TEST_F(HfParity, MissingAndNullHeadSizesResolveAsInTransformers) {
  const auto reference = read_json(root_ / "defaults.json");
  for (const auto& arch : architectures()) {
    SCOPED_TRACE(std::string(arch.name));
    const auto& folder = folder_of_architecture().at(std::string(arch.name));
    ModelConfig tiny;
    tiny.architecture = std::string(arch.name);
    tiny.vocab_size = 8;
    tiny.hidden_size = 128;
    tiny.intermediate_size = 8;
    tiny.num_hidden_layers = 1;
    tiny.num_attention_heads = 64;
    tiny.num_key_value_heads = 64;
    tiny.head_dim = 2;
    tiny.max_position_embeddings = 16;
    auto base = tiny.to_json();
    base.erase("head_dim");
    base.erase("num_key_value_heads");
    for (const std::string name : {"missing", "null_kv", "null_head_dim"}) {
      SCOPED_TRACE(name);
      auto json = base;
      if (name == "null_kv") json["num_key_value_heads"] = nullptr;
      if (name == "null_head_dim") json["head_dim"] = nullptr;
      const auto& theirs = reference.at(folder).at(name);
      if (theirs.is_null()) {
        EXPECT_THROW(ModelConfig::from_json(json, "config.json"), std::invalid_argument);
        continue;
      }
      const auto ours = ModelConfig::from_json(json, "config.json");
      EXPECT_EQ(ours.head_dim, theirs.at("head_dim").get<std::int64_t>());
      EXPECT_EQ(ours.num_key_value_heads, theirs.at("num_key_value_heads").get<std::int64_t>());
    }
  }
}

}  // namespace
}  // namespace grpo::policy
