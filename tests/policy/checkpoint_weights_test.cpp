// Tests of policy/checkpoint_weights: single-file and sharded round trips (bit-exact, mixed dtypes), the shard plan,
// one broken folder per rejection rule (each message naming the file and the tensor), the copy into model tensors,
// and both directions against the Python reference (safetensors and huggingface_hub, as transformers uses them).
#include "policy/checkpoint_weights.h"

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

namespace grpo::policy {
namespace {

namespace fs = std::filesystem;
using Named = std::vector<std::pair<std::string, torch::Tensor>>;

// Removes a folder tree with fs::remove only: LibTorch wheels export a broken fs::remove_all that can shadow
// libstdc++'s (pytorch/pytorch#133437).
void remove_tree(const fs::path& path) {
  if (fs::is_directory(fs::symlink_status(path))) {
    for (const fs::directory_entry& entry : fs::directory_iterator(path)) remove_tree(entry.path());
  }
  fs::remove(path);
}

class CheckpointWeightsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device seed;
    dir_ = fs::temp_directory_path() / fmt::format("grpo_checkpoint_weights_test_{}", seed());
    fs::create_directories(dir_);
  }
  void TearDown() override { remove_tree(dir_); }

  fs::path dir_;
};

std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

// Ordered: the test checks the order the writer chose.
nlohmann::ordered_json read_json(const fs::path& path) {
  std::ifstream in(path);
  return nlohmann::ordered_json::parse(in);
}

void write_text(const fs::path& path, std::string_view text) { std::ofstream(path) << text; }

// A tensor's bytes as lowercase hex: bit-exact comparison, also with what Python prints.
std::string hex_of(const torch::Tensor& tensor) {
  const torch::Tensor bytes = tensor.contiguous();
  const auto* data = static_cast<const std::uint8_t*>(bytes.data_ptr());
  std::string hex;
  for (std::size_t i = 0; i < bytes.nbytes(); ++i) hex += fmt::format("{:02x}", data[i]);
  return hex;
}

bool same_bits(const torch::Tensor& a, const torch::Tensor& b) {
  return a.scalar_type() == b.scalar_type() && a.sizes() == b.sizes() &&
         std::memcmp(a.contiguous().data_ptr(), b.contiguous().data_ptr(), a.nbytes()) == 0;
}

void expect_same_tensors(const Named& expected, const SafetensorsFile& actual) {
  ASSERT_EQ(actual.tensors.size(), expected.size());
  for (const auto& [name, tensor] : expected) {
    ASSERT_TRUE(actual.tensors.contains(name)) << name;
    const torch::Tensor& loaded = actual.tensors.at(name);
    EXPECT_EQ(loaded.scalar_type(), tensor.scalar_type()) << name;
    EXPECT_EQ(loaded.sizes(), tensor.sizes()) << name;
    EXPECT_EQ(hex_of(loaded), hex_of(tensor)) << name;
  }
}

// A Qwen-like mix of dtypes and sizes: 2-byte weights, f32 norms and biases, one int tensor.
Named mixed_tensors() {
  torch::manual_seed(7);
  return {
      {"model.embed_tokens.weight", torch::randn({32, 8}).to(torch::kBFloat16)},               // 512 B
      {"model.layers.0.self_attn.q_proj.weight", torch::randn({8, 8}).to(torch::kFloat16)},    // 128 B
      {"model.layers.0.self_attn.q_proj.bias", torch::randn({8})},                             // 32 B
      {"model.layers.0.mlp.up_proj.weight", torch::randn({16, 8}).to(torch::kBFloat16)},       // 256 B
      {"model.layers.0.input_layernorm.weight", torch::tensor({1.0F, -0.0F, INFINITY, NAN})},  // 16 B
      {"model.layers.1.mlp.up_proj.weight", torch::randn({16, 8}).to(torch::kBFloat16)},       // 256 B
      {"model.layers.1.self_attn.k_proj.weight", torch::randn({4, 8}).to(torch::kFloat16)},    // 64 B
      {"model.norm.weight", torch::randn({8})},                                                // 32 B
      {"step", torch::tensor({std::int64_t{1} << 40}, torch::kInt64)},                         // 8 B
  };
}

struct PythonRun {
  int status = -1;     // pclose's status: 0 when the script exited with 0
  std::string output;  // its standard output and standard error
};

// Runs GRPO_PYTHON with `args`, each single-quoted for the shell.
PythonRun run_python(const std::vector<std::string>& args) {
  std::string command = fmt::format("'{}'", GRPO_PYTHON);
  for (const std::string& arg : args) command += fmt::format(" '{}'", arg);
  command += " 2>&1";
  PythonRun run;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  std::array<char, 4096> chunk{};
  std::size_t read = 0;
  while ((read = std::fread(chunk.data(), 1, chunk.size(), pipe)) > 0) run.output.append(chunk.data(), read);
  run.status = ::pclose(pipe);
  return run;
}

// Runs `body`, expecting a SafetensorsError whose message contains every fragment.
template <typename Body>
void expect_error(Body&& body, std::initializer_list<std::string> fragments) {
  try {
    body();
    ADD_FAILURE() << "succeeded; expected an error containing '" << *fragments.begin() << "'";
  } catch (const SafetensorsError& e) {
    const std::string message = e.what();
    for (const std::string& fragment : fragments) {
      EXPECT_NE(message.find(fragment), std::string::npos) << "missing '" << fragment << "' in: " << message;
    }
  }
}

void expect_load_error(const fs::path& dir, std::initializer_list<std::string> fragments) {
  expect_error([&] { load_checkpoint_weights(dir); }, fragments);
}

TEST_F(CheckpointWeightsTest, WritesOneFileWhenEverythingFits) {
  const Named tensors = mixed_tensors();
  save_checkpoint_weights(dir_, tensors, /*max_shard_bytes=*/1304);  // exactly the total
  EXPECT_EQ(files_in(dir_), std::vector<std::string>{"model.safetensors"});
  const SafetensorsFile file = load_checkpoint_weights(dir_);
  expect_same_tensors(tensors, file);
  EXPECT_EQ(file.metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
}

TEST_F(CheckpointWeightsTest, ShardsRoundTripBitExactly) {
  const Named tensors = mixed_tensors();
  save_checkpoint_weights(dir_, tensors, /*max_shard_bytes=*/600);
  EXPECT_EQ(files_in(dir_),
            (std::vector<std::string>{"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                                      "model-00003-of-00003.safetensors", "model.safetensors.index.json"}));
  const nlohmann::ordered_json index = read_json(dir_ / "model.safetensors.index.json");
  EXPECT_EQ(index["metadata"]["total_size"], 1304);
  // 512 | 128+32+256+16 (=432; +256 would pass 600) | 256+64+32+8.
  const std::vector<int> expected_shard = {1, 2, 2, 2, 2, 3, 3, 3, 3};
  std::vector<std::string> order;
  for (const auto& [name, shard] : index["weight_map"].items()) order.push_back(name);
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(order.at(i), tensors[i].first) << "weight_map is not in tensor order";
    EXPECT_EQ(index["weight_map"][tensors[i].first],
              fmt::format("model-{:05d}-of-00003.safetensors", expected_shard[i]))
        << tensors[i].first;
  }
  for (const std::string shard : {"model-00001-of-00003.safetensors", "model-00003-of-00003.safetensors"}) {
    EXPECT_EQ(load_safetensors(dir_ / shard).metadata.at("format"), "pt") << shard;
  }
  const SafetensorsFile file = load_checkpoint_weights(dir_);
  expect_same_tensors(tensors, file);
  EXPECT_EQ(file.metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
}

TEST_F(CheckpointWeightsTest, GivesOversizedTensorsAShardOfTheirOwnInOrder) {
  const Named tensors = {{"a", torch::zeros({10}, torch::kUInt8)},   {"b", torch::zeros({10}, torch::kUInt8)},
                         {"big", torch::zeros({50}, torch::kUInt8)}, {"c", torch::zeros({20}, torch::kUInt8)},
                         {"d", torch::zeros({1}, torch::kUInt8)},    {"huge", torch::zeros({30}, torch::kUInt8)}};
  save_checkpoint_weights(dir_, tensors, /*max_shard_bytes=*/20);
  const nlohmann::ordered_json weight_map = read_json(dir_ / "model.safetensors.index.json")["weight_map"];
  const std::map<std::string, int> expected = {{"a", 1}, {"b", 1}, {"big", 2}, {"c", 3}, {"d", 4}, {"huge", 5}};
  for (const auto& [name, shard] : expected) {
    EXPECT_EQ(weight_map[name], fmt::format("model-{:05d}-of-00005.safetensors", shard)) << name;
  }
  expect_same_tensors(tensors, load_checkpoint_weights(dir_));
}

TEST_F(CheckpointWeightsTest, ASaveReplacesTheOtherLayoutAndStaleShards) {
  const Named tensors = mixed_tensors();
  write_text(dir_ / "config.json", "{}");
  save_checkpoint_weights(dir_, tensors, /*max_shard_bytes=*/300);
  EXPECT_EQ(files_in(dir_).size(), 7U);  // 5 shards, the index, config.json
  save_checkpoint_weights(dir_, tensors, /*max_shard_bytes=*/600);
  EXPECT_EQ(files_in(dir_).size(), 5U) << "shards of the 5-shard save are left";
  expect_same_tensors(tensors, load_checkpoint_weights(dir_));
  save_checkpoint_weights(dir_, tensors);
  EXPECT_EQ(files_in(dir_), (std::vector<std::string>{"config.json", "model.safetensors"}));
  save_checkpoint_weights(dir_, tensors, /*max_shard_bytes=*/600);
  EXPECT_FALSE(fs::exists(dir_ / "model.safetensors"));
  expect_same_tensors(tensors, load_checkpoint_weights(dir_));
  // A folder that does not exist yet is created.
  save_checkpoint_weights(dir_ / "new" / "folder", tensors, /*max_shard_bytes=*/600);
  expect_same_tensors(tensors, load_checkpoint_weights(dir_ / "new" / "folder"));
}

TEST_F(CheckpointWeightsTest, SaveRejectsBadInputBeforeWritingAnything) {
  const std::string dir = dir_.string();
  const auto one = torch::ones({1});
  expect_error(
      [&] {
        save_checkpoint_weights(dir_, {{"a", one}, {"b", one}, {"a", one}}, 1);
      },
      {dir, "tensor 'a': the name is given twice"});
  expect_error([&] { save_checkpoint_weights(dir_, {{"a", one}, {"", one}}, 1); }, {dir, "empty name"});
  expect_error(
      [&] {
        save_checkpoint_weights(dir_, {{"a", one}, {"__metadata__", one}}, 1);
      },
      {dir, "tensor '__metadata__': the name is reserved"});
  expect_error(
      [&] {
        save_checkpoint_weights(dir_, {{"a", one}, {"u", torch::Tensor()}}, 1);
      },
      {dir, "tensor 'u': the tensor is undefined"});
  expect_error(
      [&] {
        save_checkpoint_weights(dir_, {{"a", one}, {"c", torch::ones({1}, torch::kComplexFloat)}}, 1);
      },
      {dir, "tensor 'c': dtype ComplexFloat cannot be stored"});
  expect_error([&] { save_checkpoint_weights(dir_, {{"a", one}}, 0); }, {dir, "max_shard_bytes is 0"});
  EXPECT_TRUE(files_in(dir_).empty());
}

TEST_F(CheckpointWeightsTest, RejectsFoldersWithoutOrWithTwoKindsOfWeights) {
  expect_load_error(dir_ / "absent", {(dir_ / "absent").string(), "does not exist or is not a folder"});
  expect_load_error(dir_, {dir_.string(), "no weights: neither model.safetensors nor model.safetensors.index.json"});
  save_checkpoint_weights(dir_, mixed_tensors(), /*max_shard_bytes=*/600);
  save_safetensors(dir_ / "model.safetensors", {{"x", torch::ones({1})}});
  expect_load_error(dir_, {dir_.string(), "holds both model.safetensors and model.safetensors.index.json"});
}

// A two-shard folder, a.safetensors {x, y} and b.safetensors {z}, whose index the test then writes.
class BrokenIndexTest : public CheckpointWeightsTest {
 protected:
  void SetUp() override {
    CheckpointWeightsTest::SetUp();
    save_safetensors(dir_ / "a.safetensors", {{"x", torch::ones({2})}, {"y", torch::zeros({3}, torch::kBFloat16)}});
    save_safetensors(dir_ / "b.safetensors", {{"z", torch::ones({1}, torch::kFloat16)}});
    index_ = dir_ / "model.safetensors.index.json";
  }
  void write_index(std::string_view text) { write_text(index_, text); }
  std::string path(std::string_view file) const { return (dir_ / file).string(); }

  fs::path index_;
};

TEST_F(BrokenIndexTest, LoadsAValidIndex) {
  write_index(R"({"metadata": {"total_size": 16},
                  "weight_map": {"x": "a.safetensors", "y": "./a.safetensors", "z": "b.safetensors"}})");
  const SafetensorsFile file = load_checkpoint_weights(dir_);
  EXPECT_EQ(file.tensors.size(), 3U);
  EXPECT_TRUE(torch::equal(file.tensors.at("x"), torch::ones({2})));
  EXPECT_EQ(file.tensors.at("z").scalar_type(), torch::kFloat16);
}

TEST_F(BrokenIndexTest, RejectsIndexesThatAreNotValidJsonOrMistyped) {
  write_index(R"({"weight_map": {"x": "a.safetensors",)");
  expect_load_error(dir_, {index_.string(), "not valid JSON"});
  write_index(R"(["a.safetensors"])");
  expect_load_error(dir_, {index_.string(), "is a JSON array, not an object"});
  write_index(R"({"metadata": {}})");
  expect_load_error(dir_, {index_.string(), "'weight_map' (tensor name -> shard file) is missing or not an object"});
  write_index(R"({"weight_map": ["a.safetensors"]})");
  expect_load_error(dir_, {index_.string(), "'weight_map' (tensor name -> shard file) is missing or not an object"});
  write_index(R"({"weight_map": {"x": "a.safetensors", "y": 1, "z": "b.safetensors"}})");
  expect_load_error(dir_, {index_.string(), "tensor 'y': its shard is a JSON number, not a file name"});
  write_index(R"({"metadata": {"total_size": -5}, "weight_map": {"x": "a.safetensors"}})");
  expect_load_error(dir_, {index_.string(), "'metadata.total_size' -5 is not a non-negative integer"});
  write_index(R"({"metadata": "big", "weight_map": {"x": "a.safetensors"}})");
  expect_load_error(dir_, {index_.string(), "'metadata' is a JSON string, not an object"});
}

TEST_F(BrokenIndexTest, RejectsATensorListedTwice) {
  write_index(R"({"weight_map": {"x": "a.safetensors", "y": "a.safetensors", "x": "b.safetensors"}})");
  expect_load_error(dir_, {index_.string(), "tensor 'x': listed twice in the index"});
  write_index(R"({"weight_map": {"x": "a.safetensors"}, "weight_map": {"z": "b.safetensors"}})");
  expect_load_error(dir_, {index_.string(), "key 'weight_map' is repeated"});
  write_index(R"({"metadata": {"total_size": 1, "total_size": 2}, "weight_map": {"x": "a.safetensors"}})");
  expect_load_error(dir_, {index_.string(), "key 'total_size' is repeated in 'metadata'"});
}

TEST_F(BrokenIndexTest, RejectsShardsOutsideTheFolder) {
  write_index(R"({"weight_map": {"x": "../a.safetensors", "y": "a.safetensors", "z": "b.safetensors"}})");
  expect_load_error(dir_, {index_.string(), "tensor 'x': shard '../a.safetensors' escapes the folder"});
  write_index(R"({"weight_map": {"x": "a.safetensors", "y": "sub/../../a.safetensors", "z": "b.safetensors"}})");
  expect_load_error(dir_, {index_.string(), "tensor 'y': shard 'sub/../../a.safetensors' escapes the folder"});
  write_index(fmt::format(R"({{"weight_map": {{"x": "a.safetensors", "y": "a.safetensors", "z": "{}"}}}})",
                          path("b.safetensors")));
  expect_load_error(dir_, {index_.string(), "tensor 'z': shard '" + path("b.safetensors") + "' is an absolute path"});
  write_index(R"({"weight_map": {"x": "a.safetensors", "y": "a.safetensors", "z": ""}})");
  expect_load_error(dir_, {index_.string(), "tensor 'z': the shard name is empty"});
}

TEST_F(BrokenIndexTest, RejectsMissingAndMalformedShards) {
  write_index(R"({"weight_map": {"x": "a.safetensors", "y": "a.safetensors", "z": "c.safetensors"}})");
  expect_load_error(dir_, {index_.string(), "tensor 'z': its shard " + path("c.safetensors") + " does not exist"});
  write_text(dir_ / "c.safetensors", "short");
  expect_load_error(dir_, {path("c.safetensors"), "file is 5 bytes, shorter than the 8-byte header length"});
}

TEST_F(BrokenIndexTest, RejectsIndexesThatDisagreeWithTheShards) {
  write_index(R"({"weight_map": {"x": "a.safetensors", "y": "a.safetensors", "w": "b.safetensors",
                                 "z": "b.safetensors"}})");
  expect_load_error(dir_, {index_.string(), "tensor 'w': listed for shard 'b.safetensors', but",
                           path("b.safetensors") + " does not contain it"});
  write_index(R"({"weight_map": {"x": "a.safetensors", "z": "b.safetensors"}})");
  expect_load_error(dir_,
                    {path("a.safetensors"), "tensor 'y': stored in this shard but not listed in " + index_.string()});
  write_index(R"({"weight_map": {"x": "a.safetensors", "y": "b.safetensors", "z": "b.safetensors"}})");
  expect_load_error(dir_,
                    {path("a.safetensors"), "tensor 'y': stored in this shard but listed for shard 'b.safetensors'"});
  save_safetensors(dir_ / "b.safetensors", {{"z", torch::ones({1})}, {"x", torch::ones({2})}});
  write_index(R"({"weight_map": {"x": "a.safetensors", "y": "a.safetensors", "z": "b.safetensors"}})");
  expect_load_error(dir_, {path("b.safetensors"), "tensor 'x': also stored in " + path("a.safetensors")});
}

TEST_F(BrokenIndexTest, FollowsSymbolicLinksAndSubfoldersLikeTheHubCache) {
  // Hub snapshots link each file to a blob outside the snapshot folder; that is not an escape.
  const fs::path blobs = dir_ / "blobs";
  const fs::path snapshot = dir_ / "snapshot";
  fs::create_directories(blobs);
  fs::create_directories(snapshot / "weights");
  fs::rename(dir_ / "a.safetensors", blobs / "1234abcd");
  fs::create_symlink("../blobs/1234abcd", snapshot / "a.safetensors");
  fs::rename(dir_ / "b.safetensors", snapshot / "weights" / "b.safetensors");
  write_text(snapshot / "model.safetensors.index.json",
             R"({"weight_map": {"x": "a.safetensors", "y": "a.safetensors", "z": "weights/b.safetensors"}})");
  EXPECT_EQ(load_checkpoint_weights(snapshot).tensors.size(), 3U);
}

TEST_F(CheckpointWeightsTest, CopiesWeightsIntoModelTensors) {
  const Named tensors = mixed_tensors();
  save_checkpoint_weights(dir_, tensors, /*max_shard_bytes=*/600);
  const SafetensorsFile weights = load_checkpoint_weights(dir_);
  torch::Tensor bf16 = torch::empty({32, 8}, torch::kBFloat16);
  torch::Tensor f32 = torch::empty({16, 8}, torch::kFloat32).requires_grad_();
  torch::Tensor norm = torch::empty({4}, torch::kFloat32);
  const std::vector<std::string> unused = copy_weights_into(weights,
                                                            {{"model.embed_tokens.weight", bf16},
                                                             {"model.layers.0.mlp.up_proj.weight", f32},
                                                             {"model.layers.0.input_layernorm.weight", norm}},
                                                            dir_.string());
  EXPECT_EQ(hex_of(bf16), hex_of(tensors[0].second));
  EXPECT_EQ(hex_of(f32), hex_of(tensors[3].second.to(torch::kFloat32)));
  EXPECT_EQ(hex_of(norm), hex_of(tensors[4].second));
  EXPECT_EQ(unused,
            (std::vector<std::string>{"model.layers.0.self_attn.q_proj.bias", "model.layers.0.self_attn.q_proj.weight",
                                      "model.layers.1.mlp.up_proj.weight", "model.layers.1.self_attn.k_proj.weight",
                                      "model.norm.weight", "step"}));

  // F16 -> F32 (the other hand-written conversion), F32 -> BF16 and a strided destination (through copy_).
  torch::Tensor from_f16 = torch::empty({8, 8}, torch::kFloat32);
  torch::Tensor to_bf16 = torch::empty({8}, torch::kBFloat16);
  torch::Tensor strided = torch::empty({8, 16}, torch::kFloat32).t();
  copy_weights_into(weights,
                    {{"model.layers.0.self_attn.q_proj.weight", from_f16},
                     {"model.norm.weight", to_bf16},
                     {"model.layers.1.mlp.up_proj.weight", strided}},
                    dir_.string());
  EXPECT_EQ(hex_of(from_f16), hex_of(tensors[1].second.to(torch::kFloat32)));
  EXPECT_EQ(hex_of(to_bf16), hex_of(tensors[7].second.to(torch::kBFloat16)));
  EXPECT_TRUE(torch::equal(strided, tensors[5].second.to(torch::kFloat32)));

  torch::Tensor untouched = torch::full({8}, 3.0F);
  expect_error(
      [&] {
        copy_weights_into(weights, {{"model.norm.weight", untouched}, {"lm_head.weight", f32}}, "ckpt");
      },
      {"ckpt: tensor 'lm_head.weight' is missing"});
  expect_error(
      [&] {
        copy_weights_into(weights, {{"model.norm.weight", untouched}, {"model.embed_tokens.weight", f32}}, "ckpt");
      },
      {"ckpt: tensor 'model.embed_tokens.weight' has shape [32, 8] but the model expects [16, 8]"});
  EXPECT_TRUE(torch::equal(untouched, torch::full({8}, 3.0F))) << "a failed copy changed a destination";
}

TEST(CopyWeightsInto, CopiesTensorsLargerThanOneChunk) {
  // 3,000,001 elements: 6 MB as BF16, 12 MB as F32, so several 4 MiB chunks with a ragged last one.
  SafetensorsFile weights;
  weights.tensors["big"] = torch::randn({3'000'001}).to(torch::kBFloat16);
  weights.tensors["half"] = torch::randn({1000, 3001}).to(torch::kFloat16);
  torch::Tensor bf16 = torch::zeros({3'000'001}, torch::kBFloat16);
  torch::Tensor f32 = torch::zeros({3'000'001}, torch::kFloat32);
  torch::Tensor from_half = torch::zeros({1000, 3001}, torch::kFloat32);
  copy_weights_into(weights, {{"big", bf16}, {"half", from_half}}, "mem");
  copy_weights_into(weights, {{"big", f32}}, "mem");
  EXPECT_TRUE(same_bits(bf16, weights.tensors["big"]));
  EXPECT_TRUE(same_bits(f32, weights.tensors["big"].to(torch::kFloat32)));
  EXPECT_TRUE(same_bits(from_half, weights.tensors["half"].to(torch::kFloat32)));
}

// Our sharded output read by safetensors.torch.load_file and huggingface_hub.load_torch_model; files written by
// safetensors.torch.save_file and huggingface_hub.save_torch_state_dict read by us. Values compared byte for byte.
TEST_F(CheckpointWeightsTest, AgreesWithThePythonReference) {
  if (std::string_view(GRPO_PYTHON).empty() || !fs::exists(GRPO_PYTHON)) {
    GTEST_SKIP() << "no Python interpreter at GRPO_PYTHON='" << GRPO_PYTHON
                 << "' (configure with -DGRPO_PYTHON=/path/to/.venv/bin/python, safetensors and huggingface_hub)";
  }
  const fs::path script = fs::path(GRPO_SOURCE_DIR) / "scripts" / "safetensors_crosscheck.py";

  const Named tensors = mixed_tensors();
  save_checkpoint_weights(dir_ / "ours", tensors, /*max_shard_bytes=*/600);
  const PythonRun run = run_python({script.string(), "read", (dir_ / "ours").string(), "write",
                                    (dir_ / "theirs").string(), /*max_shard_bytes=*/"700"});
  ASSERT_EQ(run.status, 0) << run.output;
  const nlohmann::json result = nlohmann::json::parse(run.output);

  const nlohmann::json& python_read = result["read"];
  ASSERT_EQ(python_read["tensors"].size(), tensors.size());
  for (const auto& [name, tensor] : tensors) {
    const nlohmann::json& entry = python_read["tensors"][name];
    EXPECT_EQ(entry["dtype"], std::string(*safetensors_dtype_name(tensor.scalar_type()))) << name;
    EXPECT_EQ(entry["shape"].get<std::vector<std::int64_t>>(), tensor.sizes().vec()) << name;
    EXPECT_EQ(entry["hex"], hex_of(tensor)) << name;
  }
  EXPECT_EQ(python_read["metadata"].size(), 3U);
  for (const auto& [shard, metadata] : python_read["metadata"].items()) EXPECT_EQ(metadata["format"], "pt") << shard;

  const nlohmann::json& python_wrote = result["write"]["tensors"];
  EXPECT_GE(files_in(dir_ / "theirs" / "sharded").size(), 4U) << "expected at least 3 shards and an index";
  for (const char* layout : {"single", "sharded"}) {
    const SafetensorsFile file = load_checkpoint_weights(dir_ / "theirs" / layout);
    ASSERT_EQ(file.tensors.size(), python_wrote.size()) << layout;
    for (const auto& [name, entry] : python_wrote.items()) {
      ASSERT_TRUE(file.tensors.contains(name)) << layout << " " << name;
      const torch::Tensor& tensor = file.tensors.at(name);
      EXPECT_EQ(entry["dtype"], std::string(*safetensors_dtype_name(tensor.scalar_type()))) << layout << " " << name;
      EXPECT_EQ(entry["shape"].get<std::vector<std::int64_t>>(), tensor.sizes().vec()) << layout << " " << name;
      EXPECT_EQ(entry["hex"], hex_of(tensor)) << layout << " " << name;
    }
    EXPECT_EQ(file.metadata.at("format"), "pt") << layout;
  }
  EXPECT_EQ(load_checkpoint_weights(dir_ / "theirs" / "single").metadata.at("origin"), "python");
}

}  // namespace
}  // namespace grpo::policy
