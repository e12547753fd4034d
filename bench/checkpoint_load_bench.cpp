// How fast a checkpoint's weights reach a model's tensors, against the floor of reading the same bytes: a
// Qwen2.5-0.5B-shaped checkpoint (random BF16, 494M parameters, ~988 MB, sharded) loaded with
// load_checkpoint_weights and copied by copy_weights_into into preallocated BF16 tensors (a BF16 model) and FP32
// tensors (an FP32 model), beside read(2) of every byte into one buffer, and beside the same load done with one ATen
// copy_ per tensor (the peer). Warm page cache, medians of repeats. The target: (b)/(a) <= 2.
//   build/bin/grpo_bench_checkpoint_load [--dir DIR] [--repeats N] [--max-shard-mb M] [--threads T]
// --dir reuses the checkpoint in DIR when it has one, else writes it there (default: a temporary folder, removed).
// When DIR also holds config.json and tokenizer.json (copy a Qwen tokenizer in, and a Qwen2.5-0.5B config.json), the
// whole load_policy (config, tokenizer, model allocation, weights) is timed too, against reading all those bytes.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <torch/torch.h>

#include "policy/checkpoint.h"
#include "policy/checkpoint_weights.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Named = std::vector<std::pair<std::string, torch::Tensor>>;

// Qwen2.5-0.5B's config.json: hidden 896, 24 layers, intermediate 4864, 14 heads, 2 KV heads of 64, q/k/v biases,
// vocabulary 151936, tied embeddings (no lm_head.weight).
std::vector<std::pair<std::string, std::vector<std::int64_t>>> qwen2_5_0_5b_shapes() {
  constexpr std::int64_t kVocab = 151936, kHidden = 896, kLayers = 24, kIntermediate = 4864, kHeads = 14, kKvHeads = 2,
                         kHeadDim = 64;
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> shapes = {
      {"model.embed_tokens.weight", {kVocab, kHidden}}};
  for (std::int64_t l = 0; l < kLayers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    shapes.push_back({p + "self_attn.q_proj.weight", {kHeads * kHeadDim, kHidden}});
    shapes.push_back({p + "self_attn.q_proj.bias", {kHeads * kHeadDim}});
    shapes.push_back({p + "self_attn.k_proj.weight", {kKvHeads * kHeadDim, kHidden}});
    shapes.push_back({p + "self_attn.k_proj.bias", {kKvHeads * kHeadDim}});
    shapes.push_back({p + "self_attn.v_proj.weight", {kKvHeads * kHeadDim, kHidden}});
    shapes.push_back({p + "self_attn.v_proj.bias", {kKvHeads * kHeadDim}});
    shapes.push_back({p + "self_attn.o_proj.weight", {kHidden, kHeads * kHeadDim}});
    shapes.push_back({p + "mlp.gate_proj.weight", {kIntermediate, kHidden}});
    shapes.push_back({p + "mlp.up_proj.weight", {kIntermediate, kHidden}});
    shapes.push_back({p + "mlp.down_proj.weight", {kHidden, kIntermediate}});
    shapes.push_back({p + "input_layernorm.weight", {kHidden}});
    shapes.push_back({p + "post_attention_layernorm.weight", {kHidden}});
  }
  shapes.push_back({"model.norm.weight", {kHidden}});
  return shapes;
}

bool has_weights(const fs::path& dir) {
  return fs::exists(dir / grpo::policy::kWeightsFileName) || fs::exists(dir / grpo::policy::kWeightsIndexFileName);
}

void write_checkpoint(const fs::path& dir, std::int64_t max_shard_bytes) {
  torch::manual_seed(0);
  Named tensors;
  for (const auto& [name, shape] : qwen2_5_0_5b_shapes()) {
    tensors.emplace_back(name, (torch::randn(shape) * 0.02).to(torch::kBFloat16));
  }
  grpo::policy::save_checkpoint_weights(dir, tensors, max_shard_bytes);
}

std::vector<fs::path> weight_files(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".safetensors") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// (a) The floor: every byte of every weights file read(2) into one buffer as large as all of them (each file in its
// own part, as a model's memory would be: rereading into one file-sized region measured ~1.6x slower here).
std::uint64_t read_all(const std::vector<fs::path>& files, std::vector<char>& buffer) {
  std::uint64_t total = 0;
  for (const fs::path& path : files) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("cannot open " + path.string());
    for (;;) {
      if (total == buffer.size()) buffer.resize(buffer.size() * 2 + (1 << 20));
      const ssize_t n = ::read(fd, buffer.data() + total, buffer.size() - total);
      if (n < 0) throw std::runtime_error("cannot read " + path.string());
      if (n == 0) break;
      total += static_cast<std::uint64_t>(n);
    }
    ::close(fd);
  }
  return total;
}

// (b), (c): what loading a model does, from opening the folder to releasing the mapping.
void load_into(const fs::path& dir, const Named& destinations) {
  const grpo::policy::SafetensorsFile weights = grpo::policy::load_checkpoint_weights(dir);
  grpo::policy::copy_weights_into(weights, destinations, dir.string());
}

// The peer: the same with one ATen copy_ per tensor (as load_policy did), for the record.
void load_into_with_copy_(const fs::path& dir, const Named& destinations) {
  const grpo::policy::SafetensorsFile weights = grpo::policy::load_checkpoint_weights(dir);
  torch::NoGradGuard no_grad;
  for (const auto& [name, destination] : destinations) torch::Tensor(destination).copy_(weights.tensors.at(name));
}

Named allocate(torch::ScalarType dtype) {
  Named destinations;
  for (const auto& [name, shape] : qwen2_5_0_5b_shapes()) {
    destinations.emplace_back(name, torch::zeros(shape, dtype));  // zeros: resident before the clock starts
  }
  return destinations;
}

long minor_faults() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

template <typename F>
double seconds_of(F&& f) {
  const auto start = Clock::now();
  f();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// Files only, so no fs::remove_all: LibTorch wheels export a broken copy of it (pytorch/pytorch#133437).
void remove_folder(const fs::path& dir) {
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) fs::remove(entry.path());
  fs::remove(dir);
}

}  // namespace

int main(int argc, char** argv) {
  fs::path dir;
  int repeats = 5;
  std::int64_t max_shard_mb = 400;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (arg == "--repeats" && i + 1 < argc) {
      repeats = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--max-shard-mb" && i + 1 < argc) {
      max_shard_mb = std::max<std::int64_t>(1, std::atoll(argv[++i]));
    } else if (arg == "--threads" && i + 1 < argc) {
      torch::set_num_threads(std::max(1, std::atoi(argv[++i])));
    } else {
      fmt::print(stderr, "usage: {} [--dir DIR] [--repeats N] [--max-shard-mb M] [--threads T]\n", argv[0]);
      return 2;
    }
  }
  const bool temporary = dir.empty();
  if (temporary) dir = fs::temp_directory_path() / fmt::format("grpo_checkpoint_load_bench_{}", ::getpid());
  if (!has_weights(dir)) {
    fmt::print(stderr, "writing a Qwen2.5-0.5B-shaped BF16 checkpoint to {} ...\n", dir.string());
    write_checkpoint(dir, max_shard_mb << 20);
  }
  const std::vector<fs::path> files = weight_files(dir);

  std::vector<char> buffer;
  const std::uint64_t bytes = read_all(files, buffer);  // warms the page cache and sizes the buffer
  buffer.resize(bytes + 1);                             // + 1: the final read() that returns 0 has room
  Named bf16 = allocate(torch::kBFloat16);
  Named f32 = allocate(torch::kFloat32);
  load_into(dir, bf16);

  std::vector<double> read_s, bf16_s, f32_s, bf16_copy_s, f32_copy_s;
  long faults = 0;  // minor page faults of the (b) loads: the cost of mapping the files
  for (int r = 0; r < repeats; ++r) {
    read_s.push_back(seconds_of([&] { read_all(files, buffer); }));
    const long before = minor_faults();
    bf16_s.push_back(seconds_of([&] { load_into(dir, bf16); }));
    faults += minor_faults() - before;
    f32_s.push_back(seconds_of([&] { load_into(dir, f32); }));
    bf16_copy_s.push_back(seconds_of([&] { load_into_with_copy_(dir, bf16); }));
    f32_copy_s.push_back(seconds_of([&] { load_into_with_copy_(dir, f32); }));
  }
  // Spot check that the copies happened: the FP32 copy of the embedding equals the BF16 one widened.
  if (!torch::equal(f32[0].second, bf16[0].second.to(torch::kFloat32))) throw std::runtime_error("copies differ");

  const double a = median(read_s), b = median(bf16_s), c = median(f32_s);
  const double b_peer = median(bf16_copy_s), c_peer = median(f32_copy_s);
  fmt::print(
      "{{\"bench\": \"checkpoint_load\", \"bytes\": {}, \"files\": {}, \"repeats\": {}, \"threads\": {}, "
      "\"read_s\": {:.4f}, \"load_copy_bf16_s\": {:.4f}, \"load_copy_f32_s\": {:.4f}, "
      "\"bf16_over_read\": {:.2f}, \"f32_over_read\": {:.2f}, \"read_gb_per_s\": {:.2f}, "
      "\"bf16_minor_faults\": {}, \"per_tensor_copy__bf16_s\": {:.4f}, \"per_tensor_copy__f32_s\": {:.4f}}}\n",
      bytes, files.size(), repeats, torch::get_num_threads(), a, b, c, b / a, c / a, bytes / a / 1e9, faults / repeats,
      b_peer, c_peer);
  if (fs::exists(dir / "config.json") && fs::exists(dir / "tokenizer.json")) {
    auto all_files = files;
    for (const char* name : {"config.json", "tokenizer.json", "tokenizer_config.json"}) {
      if (fs::exists(dir / name)) all_files.push_back(dir / name);
    }
    std::vector<char> all_buffer;
    const std::uint64_t all_bytes = read_all(all_files, all_buffer);
    all_buffer.resize(all_bytes + 1);
    std::vector<double> all_read_s, policy_s;
    for (int r = 0; r < repeats; ++r) {
      all_read_s.push_back(seconds_of([&] { read_all(all_files, all_buffer); }));
      policy_s.push_back(seconds_of([&] { grpo::policy::load_policy(dir, torch::kCPU, torch::kBFloat16); }));
    }
    fmt::print("{{\"bench\": \"load_policy\", \"bytes\": {}, \"read_s\": {:.4f}, \"load_policy_bf16_s\": {:.4f}, \"ratio\": {:.2f}}}\n",
               all_bytes, median(all_read_s), median(policy_s), median(policy_s) / median(all_read_s));
  }
  if (temporary) remove_folder(dir);
  return 0;
}
