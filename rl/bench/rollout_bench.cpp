// The rollout benchmarks (see rollout_bench.h).
#include "rl/bench/rollout_bench.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include "policy/checkpoint.h"
#include "rl/runtime.h"
#include "rollout/generator.h"
#include "rollout/remote/rollout_messages.h"
#include "rollout/remote/worker_pool.h"
#include "rollout/remote/worker_processes.h"

namespace grpo::rl {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// `count` `grpo rollout-worker` processes of `grpo_binary` on loopback, serving `model` with one thread each.
std::unique_ptr<rollout::LocalWorkerProcesses> start_local_workers(const std::filesystem::path& grpo_binary, const std::filesystem::path& model,
                                                                   int count) {
  rollout::LocalWorkerOptions local;
  local.count = count;
  local.grpo_binary = grpo_binary;
  local.model = model;
  local.threads = 1;
  return std::make_unique<rollout::LocalWorkerProcesses>(local);
}

double median(std::vector<double> values) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const auto n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

void synchronize(torch::Device device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

// The checkpoint folder both sides load: the given one, or a temporary copy whose config.json allows the benchmark's
// length when its max_position_embeddings is shorter (rotary positions have no table, so only the check changes).
struct BenchModelDir {
  std::filesystem::path path;
  std::filesystem::path temporary;
  ~BenchModelDir() {
    if (!temporary.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(temporary, ignored);
    }
  }
};

void prepare_model_dir(const std::filesystem::path& model, std::int64_t length, BenchModelDir& out) {
  std::ifstream in(model / "config.json");
  if (!in) throw std::runtime_error(fmt::format("--model: cannot read {}", (model / "config.json").string()));
  auto config = nlohmann::json::parse(in);
  const auto max_positions = config.value("max_position_embeddings", std::int64_t{0});
  out.path = model;
  if (max_positions >= length) return;
  char pattern[] = "/tmp/grpo-bench-model-XXXXXX";
  if (::mkdtemp(pattern) == nullptr) throw std::runtime_error("cannot make a temporary folder");
  out.temporary = pattern;
  for (const auto& entry : std::filesystem::directory_iterator(model)) {
    if (entry.path().filename() == "config.json") continue;
    std::filesystem::create_symlink(std::filesystem::absolute(entry.path()), out.temporary / entry.path().filename());
  }
  config["max_position_embeddings"] = length;
  std::ofstream(out.temporary / "config.json") << config.dump(2);
  out.path = out.temporary;
  std::cerr << fmt::format("grpo bench rollout: {} has max_position_embeddings = {}; both sides load a copy that allows {}\n", model.string(),
                           max_positions, length);
}

// FLOPs of generating: every token costs 2 × (the weights it multiplies) plus attention over the positions before
// it (QKᵀ and AV: 4 · layers · heads · head_dim per key).
double generation_flops(const policy::ModelConfig& c, std::int64_t batch, std::int64_t prompt, std::int64_t new_tokens) {
  const double d = static_cast<double>(c.hidden_size);
  const double attention_weights = d * static_cast<double>(c.head_dim) * static_cast<double>(2 * c.num_attention_heads + 2 * c.num_key_value_heads);
  const double mlp_weights = 3.0 * d * static_cast<double>(c.intermediate_size);
  const double per_layer = attention_weights + mlp_weights;
  const double matmul_weights = per_layer * static_cast<double>(c.num_hidden_layers) + d * static_cast<double>(c.vocab_size);
  const double per_key = 4.0 * static_cast<double>(c.num_hidden_layers * c.num_attention_heads * c.head_dim);
  double flops = 0.0;
  // Prefill: the prompt's positions (only the last one's logits are needed, but our prefill projects every one
  // through the layers); decode: one position per step.
  flops += static_cast<double>(batch) * (static_cast<double>(prompt) * 2.0 * per_layer * static_cast<double>(c.num_hidden_layers) +
                                         per_key * static_cast<double>(prompt * (prompt + 1) / 2));
  for (std::int64_t t = 0; t < new_tokens; ++t) {
    flops += static_cast<double>(batch) * (2.0 * matmul_weights + per_key * static_cast<double>(prompt + t + 1));
  }
  return flops;
}

// The machine's matmul peak as this LibTorch reaches it: the best of a few large float32 (CPU) or bf16 (GPU) GEMMs.
double peak_flops(torch::Device device) {
  const std::int64_t n = device.is_cuda() ? 8192 : 2048;
  const auto dtype = device.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
  const auto a = torch::randn({n, n}, torch::TensorOptions().dtype(dtype).device(device));
  const auto b = torch::randn({n, n}, torch::TensorOptions().dtype(dtype).device(device));
  double best = 0.0;
  for (int i = 0; i < 5; ++i) {
    synchronize(device);
    const auto start = Clock::now();
    const auto c = torch::mm(a, b);
    synchronize(device);
    best = std::max(best, 2.0 * static_cast<double>(n * n * n) / seconds_since(start));
  }
  return best;
}

std::string run_capture(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("cannot run " + command);
  std::array<char, 4096> chunk{};
  std::size_t n = 0;
  while ((n = std::fread(chunk.data(), 1, chunk.size(), pipe)) > 0) output.append(chunk.data(), n);
  const int status = ::pclose(pipe);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error(fmt::format("the peer run failed ({}):\n{}", command, output));
  return output;
}

std::string quoted(const std::string& text) { return "'" + text + "'"; }

}  // namespace

int run_rollout_bench(const RolloutBenchOptions& options) {
  if (options.batch < 1 || options.new_tokens < 1 || options.prompt_tokens < 1 || options.repeats < 1) {
    throw std::invalid_argument("--batch, --new-tokens, --prompt-tokens and --repeats must be at least 1");
  }
  configure_threads(options.threads);
  const int threads = at::get_num_threads();
  const auto device = resolve_device(options.device);
  const auto dtype = parse_dtype(options.dtype);
  if (!dtype) throw std::invalid_argument(fmt::format("--dtype: unknown dtype '{}'", options.dtype));
  BenchModelDir dir;
  prepare_model_dir(options.model, options.prompt_tokens + options.new_tokens, dir);
  auto policy = policy::load_policy(dir.path, device, *dtype);
  policy.model->eval();
  const auto& config = policy.model->config();

  // Distinct random prompts of equal length from the ids both tokenizers know.
  std::mt19937_64 random(options.seed);
  const auto id_limit = std::min(config.vocab_size, policy.tokenizer->vocab_size());
  std::uniform_int_distribution<std::int64_t> id(0, id_limit - 1);
  rollout::GenerationRequest request;
  for (int b = 0; b < options.batch; ++b) {
    std::vector<std::int64_t> prompt(static_cast<std::size_t>(options.prompt_tokens));
    for (auto& token : prompt) token = id(random);
    request.prompts.push_back(std::move(prompt));
  }
  request.samples_per_prompt = 1;
  request.max_new_tokens = options.new_tokens;
  request.sampling.temperature = 1.0;  // no stop tokens: EOS ignored, every row runs to new_tokens
  request.seed = options.seed;

  auto warm = request;
  warm.max_new_tokens = std::min(8, options.new_tokens);
  rollout::generate(policy.model, warm);
  const double tokens = static_cast<double>(options.batch) * options.new_tokens;
  const double flops = generation_flops(config, options.batch, options.prompt_tokens, options.new_tokens);
  const double peak = peak_flops(device);
  std::int64_t parameters = 0;
  for (const auto& p : policy.model->parameters()) parameters += p.numel();

  // The peer gets the same prompts from a file; each of its runs is a fresh process that loads, warms up (untimed)
  // and generates once. Our runs and its alternate, so that a machine that slows down for a while (this one is
  // shared) slows both sides alike, and each pair gives a ratio.
  std::optional<std::filesystem::path> prompts_file;
  if (!options.python.empty()) {
    char pattern[] = "/tmp/grpo-bench-prompts-XXXXXX";
    const int fd = ::mkstemp(pattern);
    if (fd < 0) throw std::runtime_error("cannot make a temporary file");
    ::close(fd);
    prompts_file = pattern;
    std::ofstream(*prompts_file) << nlohmann::json(request.prompts).dump();
  }
  const auto peer_command = [&] {
    return fmt::format("{} {} --model {} --prompts {} --new-tokens {} --threads {} --repeats 1 --dtype {} --device {}",
                       quoted(options.python.string()), quoted(options.hf_script.string()), quoted(dir.path.string()),
                       quoted(prompts_file->string()), options.new_tokens, threads, options.dtype, device.is_cuda() ? "cuda" : "cpu");
  };
  std::vector<double> ours, hf_seconds, paired;
  std::string transformers_version;
  try {
    for (int r = 0; r < options.repeats; ++r) {
      synchronize(device);
      const auto start = Clock::now();
      const auto result = rollout::generate(policy.model, request);
      synchronize(device);
      ours.push_back(seconds_since(start));
      if (result.generated_tokens != static_cast<std::int64_t>(options.batch) * options.new_tokens) {
        throw std::logic_error(fmt::format("our engine generated {} tokens, expected {}", result.generated_tokens, options.batch * options.new_tokens));
      }
      std::cerr << fmt::format("grpo bench rollout: ours run {}: {:.3f} s\n", r + 1, ours.back());
      if (!prompts_file) continue;
      if (r == 0) std::cerr << "grpo bench rollout: transformers' generate: " << peer_command() << "\n";
      const auto output = run_capture(peer_command());
      const auto peer = nlohmann::json::parse(output.substr(output.rfind('{')));
      hf_seconds.push_back(peer.at("seconds").get<std::vector<double>>().at(0));
      transformers_version = peer.value("transformers", "");
      paired.push_back(hf_seconds.back() / ours.back());
      std::cerr << fmt::format("grpo bench rollout: transformers run {}: {:.3f} s (ratio {:.2f})\n", r + 1, hf_seconds.back(), paired.back());
    }
  } catch (...) {
    if (prompts_file) std::filesystem::remove(*prompts_file);
    throw;
  }
  if (prompts_file) std::filesystem::remove(*prompts_file);

  nlohmann::ordered_json line = {{"bench", "rollout"},
                                 {"model", options.model.string()},
                                 {"parameters", parameters},
                                 {"device", device.str()},
                                 {"dtype", options.dtype},
                                 {"threads", threads},
                                 {"batch", options.batch},
                                 {"prompt_tokens", options.prompt_tokens},
                                 {"new_tokens", options.new_tokens},
                                 {"ours_seconds", ours},
                                 {"ours_tokens_per_s", tokens / median(ours)}};
  if (prompts_file) {
    line["hf_seconds"] = hf_seconds;
    line["hf_tokens_per_s"] = tokens / median(hf_seconds);
    line["ratio"] = median(hf_seconds) / median(ours);
    line["paired_ratios"] = paired;  // run by run, each ours beside the peer run right after it
    line["transformers"] = transformers_version;
  }
  line["ours_gflops"] = flops / median(ours) / 1e9;
  line["peak_gflops"] = peak / 1e9;
  line["peak_fraction"] = flops / median(ours) / peak;
  std::cout << line.dump() << std::endl;
  return 0;
}

int run_failover_bench(const FailoverBenchOptions& options) {
  if (options.workers < 2) throw std::invalid_argument("--workers must be at least 2 (one of them is killed)");
  configure_threads(1);
  auto policy = policy::load_policy(options.model, torch::kCPU);
  std::mt19937_64 random(7);
  std::uniform_int_distribution<std::int64_t> id(8, std::min<std::int64_t>(policy.model->config().vocab_size, 90) - 1);
  rollout::GenerationRequest request;
  for (int p = 0; p < options.prompts; ++p) {
    std::vector<std::int64_t> prompt(12);
    for (auto& token : prompt) token = id(random);
    request.prompts.push_back(std::move(prompt));
  }
  request.samples_per_prompt = options.group_size;
  request.max_new_tokens = options.new_tokens;
  request.sampling.temperature = 1.0;
  request.seed = 11;
  const auto snapshot = std::make_shared<const rollout::WeightSnapshot>(rollout::snapshot_weights(policy.model, 0));

  std::vector<double> undisturbed, disturbed;
  std::int64_t reassigned = 0, identical = 0, compared = 0;
  bool complete = true;
  for (int r = 0; r < options.repeats; ++r) {
    const auto workers = start_local_workers(options.grpo_binary, options.model, options.workers);
    auto& processes = *workers;
    rollout::WorkerPoolOptions pool_options;
    pool_options.addresses = processes.addresses();
    pool_options.token = processes.token();
    pool_options.log = [](std::string_view line) { std::cerr << "grpo bench failover: " << line << "\n"; };
    rollout::RolloutWorkerPool pool(pool_options, policy.model->config().vocab_size);
    pool.connect();
    pool.publish(snapshot);
    auto start = Clock::now();
    const auto reference = pool.generate(request, 0);
    undisturbed.push_back(seconds_since(start));
    const auto kill_after = std::chrono::duration<double>(undisturbed.back() * options.kill_after_fraction);
    start = Clock::now();
    auto future = pool.generate_async(request, 0);
    std::this_thread::sleep_for(kill_after);
    processes.kill_worker(0);
    const auto result = future.get();
    disturbed.push_back(seconds_since(start));
    const auto stats = pool.last_batch_stats();
    reassigned += stats.reassigned_prompts;
    complete = complete && result.completions.size() == reference.completions.size() && stats.workers_failed == 1;
    for (std::size_t i = 0; i < result.completions.size() && i < reference.completions.size(); ++i) {
      ++compared;
      identical += result.completions[i].tokens == reference.completions[i].tokens &&
                   result.completions[i].prompt_index == reference.completions[i].prompt_index;
    }
    std::cerr << fmt::format("grpo bench failover: run {}: undisturbed {:.3f} s, one worker killed at {:.3f} s: {:.3f} s, {} prompts reassigned\n",
                             r + 1, undisturbed.back(), kill_after.count(), disturbed.back(), stats.reassigned_prompts);
  }
  nlohmann::ordered_json line = {{"bench", "failover"},
                                 {"workers", options.workers},
                                 {"prompts", options.prompts},
                                 {"group_size", options.group_size},
                                 {"new_tokens", options.new_tokens},
                                 {"undisturbed_seconds", undisturbed},
                                 {"killed_seconds", disturbed},
                                 {"added_latency_s", median(disturbed) - median(undisturbed)},
                                 {"added_latency_fraction", median(disturbed) / median(undisturbed) - 1.0},
                                 {"prompts_reassigned_per_run", static_cast<double>(reassigned) / options.repeats},
                                 {"complete", complete},
                                 {"completions_identical_to_undisturbed", static_cast<double>(identical) / static_cast<double>(std::max<std::int64_t>(compared, 1))}};
  std::cout << line.dump() << std::endl;
  return complete ? 0 : 1;
}

int run_weight_sync_bench(const WeightSyncBenchOptions& options) {
  configure_threads(1);
  auto policy = policy::load_policy(options.model, torch::kCPU);
  std::optional<torch::ScalarType> wire_dtype;
  if (options.weight_dtype != "model") {
    wire_dtype = parse_dtype(options.weight_dtype);
    if (!wire_dtype) throw std::invalid_argument(fmt::format("--weight-dtype '{}': use model, float32, bfloat16 or float16", options.weight_dtype));
  }
  const auto workers = start_local_workers(options.grpo_binary, options.model, options.workers);
  const auto& processes = *workers;
  // Two trainers' pools on the same workers: one pushes over TCP, the other broadcasts (the workers serve both).
  const auto pool_options = [&](rollout::WeightTransport transport) {
    rollout::WorkerPoolOptions o;
    o.addresses = processes.addresses();
    o.token = processes.token();
    o.weight_transport = transport;
    o.log = [](std::string_view line) { std::cerr << "grpo bench weight-sync: " << line << "\n"; };
    return o;
  };
  const auto vocab = policy.model->config().vocab_size;
  rollout::RolloutWorkerPool tcp_pool(pool_options(rollout::WeightTransport::kTcp), vocab);
  rollout::RolloutWorkerPool broadcast_pool(pool_options(rollout::WeightTransport::kBroadcast), vocab);
  tcp_pool.connect();
  broadcast_pool.connect();
  const auto transport = broadcast_pool.weight_transport();
  if (!transport.starts_with("broadcast")) {
    std::cerr << "grpo bench weight-sync: the broadcast group did not form (see above); nothing to compare\n";
    return 1;
  }
  std::vector<double> tcp_seconds, broadcast_seconds, paired;
  std::size_t bytes = 0;
  std::int64_t version = 0;
  const auto push = [&](rollout::RolloutWorkerPool& pool) {
    // A fresh version each time, so that every worker takes every push.
    const auto snapshot = std::make_shared<const rollout::WeightSnapshot>(rollout::snapshot_weights(policy.model, ++version, wire_dtype));
    bytes = snapshot->bytes();
    const auto start = Clock::now();
    pool.publish(snapshot);
    return seconds_since(start);
  };
  push(tcp_pool);  // warm-up: first connections' buffers, the group's first collective
  push(broadcast_pool);
  for (int r = 0; r < options.repeats; ++r) {
    tcp_seconds.push_back(push(tcp_pool));
    broadcast_seconds.push_back(push(broadcast_pool));
    paired.push_back(tcp_seconds.back() / broadcast_seconds.back());
    std::cerr << fmt::format("grpo bench weight-sync: run {}: TCP {:.4f} s, broadcast {:.4f} s\n", r + 1, tcp_seconds.back(), broadcast_seconds.back());
  }
  if (!broadcast_pool.weight_transport().starts_with("broadcast")) {
    std::cerr << "grpo bench weight-sync: the broadcast group was given up during the runs (see above); the figures are not comparable\n";
    return 1;
  }
  const double tcp = median(tcp_seconds), broadcast = median(broadcast_seconds);
  nlohmann::ordered_json line = {{"bench", "weight_sync"},
                                 {"workers", options.workers},
                                 {"bytes_per_worker", bytes},
                                 {"wire_dtype", wire_dtype ? c10::toString(*wire_dtype) : "model"},
                                 {"broadcast", transport},
                                 {"tcp_seconds", tcp_seconds},
                                 {"broadcast_seconds", broadcast_seconds},
                                 {"tcp_median_s", tcp},
                                 {"broadcast_median_s", broadcast},
                                 {"ratio", tcp / broadcast},
                                 {"paired_ratios", paired},
                                 {"tcp_gb_per_s", static_cast<double>(bytes) * options.workers / tcp / 1e9},
                                 {"broadcast_gb_per_s", static_cast<double>(bytes) * options.workers / broadcast / 1e9}};
  std::cout << line.dump() << std::endl;
  return 0;
}

}  // namespace grpo::rl
