// The subcommand table of `grpo` and the error-to-exit-code boundary.
#include "rl/commands.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "policy/checkpoint.h"
#include "policy/prompt_template.h"
#include "reward/grade_jsonl.h"
#include "reward/grader_registry.h"
#include "reward/remote/grader_server.h"
#include "rl/grader_factory.h"
#include "rl/config/config_loader.h"
#include "rl/distributed/launch_env.h"
#include "rl/distributed/rank_group.h"
#include "rl/evaluate.h"
#include "rl/reward_scorer.h"
#include "rl/tasks/task.h"
#include "rl/model_jsonl.h"
#include "rl/pretrain.h"
#include "rl/runtime.h"
#include "rl/trainer.h"
#include "rollout/generator.h"
#include "rollout/remote/worker_server.h"
#include "rollout/wire/frame.h"
#include "rl/ablate.h"
#include "rl/bench/rollout_bench.h"
#include "rl/rollout_setup.h"

namespace grpo::rl {
namespace {

constexpr std::string_view kProgram = "grpo";

const cli::OptionSpec kSetOption{"set", "FIELD=VALUE", "override one config field, e.g. --set rollout.group_size=8", "", true, false};

// Names that refer to registries outside the config schema are checked here, before any work starts, with the
// location of the offending value and the registered names.
void check_registry_choices(const config::LoadedConfig& loaded) {
  config::check_choice(loaded, "task.prompt_template", loaded.config.task().prompt_template(), policy::prompt_template_names());
  config::check_choice(loaded, "model.dtype", loaded.config.model().dtype(), std::vector<std::string>{"float32", "bfloat16", "float16"});
  config::check_choice(loaded, "rollout.weight_sync_dtype", loaded.config.rollout().weight_sync_dtype(),
                       std::vector<std::string>{"model", "float32", "bfloat16", "float16"});
  const auto graders = reward::registered_grader_names();
  for (int i = 0; i < loaded.config.reward().graders_size(); ++i) {
    const auto& name = loaded.config.reward().graders(i).name();
    if (name.empty()) continue;  // a plug-in or remote grader; validation checked that it has exactly one source
    config::check_choice(loaded, fmt::format("reward.graders[{}].name", i), name, graders);
  }
}

config::LoadedConfig load_config(const cli::ParsedArgs& args, std::string_view config_name, std::vector<std::string> extra_overrides = {}) {
  auto overrides = args.get_all("set");
  overrides.insert(overrides.end(), extra_overrides.begin(), extra_overrides.end());
  auto loaded = args.get(config_name) ? config::load_config_file(*args.get(config_name), overrides) : config::default_config(overrides);
  check_registry_choices(loaded);
  return loaded;
}

int train(const cli::ParsedArgs& args) {
  if (const auto resume = args.get("resume")) {
    // The run's own resolved config, in its folder; --set may change what does not alter the past (e.g. steps).
    if (args.get("config")) throw cli::UsageError("--resume takes the run's own config (RUN_DIR/config.textproto); give no CONFIG");
    const std::filesystem::path run_dir = std::filesystem::path(*resume).lexically_normal();
    const auto config_file = run_dir / "config.textproto";
    if (!std::filesystem::exists(config_file)) {
      throw cli::UsageError(fmt::format("--resume: {} has no config.textproto: not a grpo run folder", run_dir.string()));
    }
    auto overrides = args.get_all("set");
    const auto folder = run_dir.has_filename() ? run_dir : run_dir.parent_path();
    overrides.push_back("output_dir=" + (folder.has_parent_path() ? folder.parent_path().string() : std::string(".")));
    overrides.push_back("name=" + folder.filename().string());
    auto loaded = config::load_config_file(config_file, overrides);
    check_registry_choices(loaded);
    return run_training(loaded, /*resume=*/true);
  }
  const auto loaded = load_config(args, "config");
  if (args.flag("print-config")) {
    std::cout << config::to_textproto(loaded.config);
    return kExitSuccess;
  }
  return run_training(loaded);
}

int pretrain(const cli::ParsedArgs& args) {
  std::vector<std::string> extra;
  if (const auto output = args.get("output")) extra.push_back("pretrain.output=" + *output);
  return run_pretraining(load_config(args, "config", extra));
}

policy::Policy load_model_arg(const cli::ParsedArgs& args, torch::Device device) {
  try {
    return policy::load_policy(args.get_or_default("model"), device);
  } catch (const policy::CheckpointError& error) {
    throw cli::UsageError(fmt::format("--model: {}", error.what()));
  }
}

// The config's prompt template for this checkpoint ("chat" depends on it), its stop tokens added to the policy's.
policy::PromptTemplate resolve_template(const config::LoadedConfig& loaded, policy::Policy& policy) {
  try {
    auto resolved = policy::resolve_prompt_template(loaded.config.task().prompt_template(), *policy.tokenizer);
    policy::add_template_stop_ids(resolved, *policy.tokenizer, policy.stop_token_ids);
    return resolved;
  } catch (const std::invalid_argument& error) {
    config::fail_at(loaded, "task.prompt_template", error.what());
  }
}

int eval(const cli::ParsedArgs& args) {
  std::vector<std::string> extra;
  if (const auto n = args.get("num-problems")) extra.push_back("eval.num_problems=" + *n);
  if (const auto seed = args.get("seed")) extra.push_back("eval.seed=" + *seed);
  if (const auto k = args.get("samples")) extra.push_back("eval.samples=" + *k);
  if (const auto t = args.get("temperature")) extra.push_back("eval.temperature=" + *t);
  if (const auto task = args.get("task")) {
    const std::map<std::string, std::string> kinds = {{"arithmetic", "ARITHMETIC"}, {"countdown", "COUNTDOWN"}, {"jsonl", "JSONL"}};
    const auto kind = kinds.find(*task);
    if (kind == kinds.end()) throw cli::UsageError(fmt::format("--task: unknown task '{}'; valid: arithmetic, countdown, jsonl", *task));
    extra.push_back("task.kind=" + kind->second);
  }
  if (const auto data = args.get("data")) {
    // Every row of the file is a held-out problem.
    extra.push_back("task.kind=JSONL");
    extra.push_back("task.jsonl.train_file=" + *data);
    extra.push_back("task.jsonl.eval_file=" + *data);
    if (!args.get("num-problems")) extra.push_back("eval.num_problems=10000000");
  }
  const auto loaded = load_config(args, "config", extra);
  const auto& cfg = loaded.config;
  configure_threads(cfg.runtime().threads());
  const auto device = resolve_device(cfg.runtime().device());
  auto policy = load_model_arg(args, device);
  policy.model->eval();
  std::unique_ptr<Task> task;
  try {
    task = make_task(cfg);
  } catch (const std::exception& error) {
    config::fail_at(loaded, "task", error.what());
  }
  const RewardScorer scorer(cfg.reward());
  const auto prompt_template = resolve_template(loaded, policy);
  EvalOptions options;
  options.max_new_tokens = cfg.rollout().max_new_tokens();
  options.batch_size = cfg.eval().batch_size();
  options.samples = cfg.eval().samples();
  options.temperature = cfg.eval().temperature();
  options.seed = cfg.eval().seed();
  const auto result = evaluate(policy, prompt_template, task->eval_problems(), scorer, options);
  nlohmann::ordered_json line = {{"accuracy", result.accuracy},
                                 {"format_rate", result.format_rate},
                                 {"num_problems", result.num_problems},
                                 {"completion_tokens_mean", result.completion_tokens_mean},
                                 {"completion_tokens_median", result.completion_tokens_median},
                                 {"completion_tokens_p90", result.completion_tokens_p90},
                                 {"completion_tokens_max", result.completion_tokens_max},
                                 {"truncated_fraction", result.truncated_fraction}};
  if (result.samples > 0) {
    line["samples"] = result.samples;
    line["pass_at_1"] = result.pass_at_1;
    line[fmt::format("pass_at_{}", result.samples)] = result.pass_at_k;
    line[fmt::format("maj_at_{}", result.samples)] = result.maj_at_k;
  }
  line["task"] = task->describe();
  line["seed"] = cfg.eval().seed();
  line["model"] = args.get_or_default("model");
  line["seconds"] = result.seconds;
  std::cout << line.dump() << std::endl;
  return kExitSuccess;
}

int generate(const cli::ParsedArgs& args) {
  configure_threads(0);
  auto policy = load_model_arg(args, resolve_device(args.get_or_default("device")));
  policy.model->eval();
  const auto template_name = args.get_or_default("template");
  std::string prompt = *args.get("prompt");
  if (template_name != "none") {
    try {
      const auto resolved = policy::resolve_prompt_template(template_name, *policy.tokenizer);
      policy::add_template_stop_ids(resolved, *policy.tokenizer, policy.stop_token_ids);
      prompt = resolved.apply(prompt);
    } catch (const std::invalid_argument& error) {
      throw cli::UsageError(fmt::format("--template: {}", error.what()));
    }
  }
  rollout::GenerationRequest request;
  request.prompts = {policy::encode_prompt(policy, prompt)};
  request.samples_per_prompt = args.get_int("num-samples");
  request.max_new_tokens = args.get_int("max-new-tokens");
  request.sampling = {args.get_double("temperature"), args.get_double("top-p"), args.get_int("top-k")};
  request.stop_token_ids = policy.stop_token_ids;
  request.seed = static_cast<std::uint64_t>(args.get_int("seed"));
  if (request.samples_per_prompt < 1) throw cli::UsageError("--num-samples must be at least 1");
  if (request.max_new_tokens < 1) throw cli::UsageError("--max-new-tokens must be at least 1");
  const auto result = rollout::generate(policy.model, request);
  for (const auto& completion : result.completions) {
    nlohmann::ordered_json line = {{"prompt", prompt},
                                   {"completion", policy.tokenizer->decode(completion.tokens, /*skip_special_tokens=*/true)},
                                   {"tokens", completion.tokens.size()},
                                   {"finish_reason", completion.finish == rollout::FinishReason::kStop ? "stop" : "length"}};
    std::cout << line.dump() << std::endl;
  }
  return kExitSuccess;
}

int grade(const cli::ParsedArgs& args) {
  const std::string input_path = args.get_or_default("input");
  std::ifstream file;
  if (input_path != "-") {
    file.open(input_path, std::ios::binary);
    if (!file) throw cli::UsageError(fmt::format("--input: cannot open '{}'", input_path));
  }
  std::istream& in = input_path == "-" ? std::cin : file;
  // With --config, the config's graders (plug-ins, remote servers, the code grader's settings) answer to their
  // names before the registry does: the way to check a reward set-up on a file of rows before training with it.
  std::map<std::string, std::unique_ptr<reward::Grader>, std::less<>> configured;
  if (args.get("config")) {
    const auto loaded = load_config(args, "config");
    for (int i = 0; i < loaded.config.reward().graders_size(); ++i) {
      try {
        auto grader = make_configured_grader(loaded.config.reward().graders(i));
        const std::string name(grader->name());
        configured.emplace(name, std::move(grader));
      } catch (const std::exception& error) {
        config::fail_at(loaded, fmt::format("reward.graders[{}]", i), error.what());
      }
    }
  }
  reward::GradeJsonlOptions options;
  options.find_grader = [&](std::string_view name) -> const reward::Grader* {
    const auto it = configured.find(name);
    return it == configured.end() ? nullptr : it->second.get();
  };
  const auto start = std::chrono::steady_clock::now();
  const auto summary = reward::grade_jsonl(in, std::cout, options);
  std::cout.flush();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cerr << fmt::format("grpo grade: {} lines: {} answer pairs ({} equal), {} graded ({} unscorable), {} malformed; {:.3f} s, {:.0f} lines/s\n",
                           summary.lines, summary.pairs, summary.pairs_equal, summary.graded, summary.unscorable, summary.errors, seconds,
                           static_cast<double>(summary.lines) / std::max(seconds, 1e-9));
  return summary.ok() ? kExitSuccess : kExitFailure;
}

// Opens --input (a path, or - for standard input).
std::istream& open_input(const cli::ParsedArgs& args, std::ifstream& file) {
  const std::string path = args.get_or_default("input");
  if (path == "-") return std::cin;
  file.open(path, std::ios::binary);
  if (!file) throw cli::UsageError(fmt::format("--input: cannot open '{}'", path));
  return file;
}

int tokenize(const cli::ParsedArgs& args) {
  std::shared_ptr<const policy::Tokenizer> tokenizer;
  try {
    tokenizer = policy::load_tokenizer(args.get_or_default("tokenizer"));
  } catch (const policy::TokenizerError& error) {
    throw cli::UsageError(fmt::format("--tokenizer: {}", error.what()));
  }
  std::ifstream file;
  const auto start = std::chrono::steady_clock::now();
  const auto summary = tokenize_jsonl(open_input(args, file), std::cout, *tokenizer);
  std::cout.flush();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cerr << fmt::format("grpo tokenize: {} lines, {} tokens, {} malformed; {:.3f} s\n", summary.lines, summary.tokens, summary.errors, seconds);
  return summary.ok() ? kExitSuccess : kExitFailure;
}

int score(const cli::ParsedArgs& args) {
  configure_threads(0);
  const auto device = resolve_device(args.get_or_default("device"));
  policy::Policy policy;
  try {
    const auto dtype = parse_dtype(args.get_or_default("dtype"));
    if (!dtype) throw cli::UsageError(fmt::format("--dtype: unknown dtype '{}'; valid: float32, bfloat16, float16", args.get_or_default("dtype")));
    policy = policy::load_policy(args.get_or_default("model"), device, *dtype);
  } catch (const policy::CheckpointError& error) {
    throw cli::UsageError(fmt::format("--model: {}", error.what()));
  }
  policy.model->eval();
  policy::TokenLogprobOptions options;
  options.max_batch_tokens = args.get_int("batch-tokens");
  if (options.max_batch_tokens < 1) throw cli::UsageError("--batch-tokens must be at least 1");
  std::ifstream file;
  const auto start = std::chrono::steady_clock::now();
  const auto summary = score_jsonl(open_input(args, file), std::cout, policy, options);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cerr << fmt::format("grpo score: {} lines, {} tokens scored, {} malformed; {:.3f} s, {:.0f} tokens/s\n", summary.lines, summary.tokens,
                           summary.errors, seconds, static_cast<double>(summary.tokens) / std::max(seconds, 1e-9));
  return summary.ok() ? kExitSuccess : kExitFailure;
}

int grader_server(const cli::ParsedArgs& args) {
  reward::GraderServerOptions options;
  options.host = args.get_or_default("host");
  const long long port = args.get_int("port");
  if (port < 0 || port > 65535) throw cli::UsageError(fmt::format("--port must be in [0, 65535], got {}", port));
  options.port = static_cast<std::uint16_t>(port);
  const long long threads = args.get_int("threads");
  if (threads < 1 || threads > 1024) throw cli::UsageError(fmt::format("--threads must be in [1, 1024], got {}", threads));
  options.grading_threads = static_cast<int>(threads);
  if (const auto names = args.get("graders")) {
    std::string_view rest = *names;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const std::string_view name = rest.substr(0, comma);
      if (!name.empty()) options.graders.emplace_back(name);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
  }
  try {
    return reward::run_grader_server(options);
  } catch (const std::invalid_argument& error) {
    throw cli::UsageError(error.what());
  }
}

int rollout_worker(const cli::ParsedArgs& args) {
  rollout::RolloutWorkerOptions options;
  try {
    const auto [host, port] = wire::parse_endpoint(args.get_or_default("listen"));
    options.host = host;
    options.port = port;
  } catch (const std::invalid_argument& error) {
    // Port 0 (any free port, printed at start) is allowed here, unlike in an address to connect to.
    const std::string listen = args.get_or_default("listen");
    if (!listen.ends_with(":0") || listen.size() < 3) throw cli::UsageError(fmt::format("--listen: {}", error.what()));
    options.host = listen.substr(0, listen.size() - 2);
    if (options.host.size() >= 2 && options.host.front() == '[') options.host = options.host.substr(1, options.host.size() - 2);
    options.port = 0;
  }
  try {
    options.token = read_token_file(args.get_or_default("token-file"));
  } catch (const std::runtime_error& error) {
    throw cli::UsageError(fmt::format("--token-file: {}", error.what()));
  }
  const long long threads = args.get_int("threads");
  if (threads < 0 || threads > 4096) throw cli::UsageError(fmt::format("--threads must be in [0, 4096], got {}", threads));
  configure_threads(static_cast<int>(threads));
  const auto device = resolve_device(args.get_or_default("device"));
  const auto dtype = parse_dtype(args.get_or_default("dtype"));
  if (!dtype) throw cli::UsageError(fmt::format("--dtype: unknown dtype '{}'; valid: float32, bfloat16, float16", args.get_or_default("dtype")));
  policy::Policy policy;
  try {
    policy = policy::load_policy(args.get_or_default("model"), device, *dtype);
  } catch (const policy::CheckpointError& error) {
    throw cli::UsageError(fmt::format("--model: {}", error.what()));
  }
  policy.model->eval();
  return rollout::run_rollout_worker(options, std::move(policy));
}

#ifdef GRPO_SOURCE_DIR
constexpr const char* kHfGenerateScript = GRPO_SOURCE_DIR "/bench/hf_generate.py";
#else
constexpr const char* kHfGenerateScript = "bench/hf_generate.py";
#endif

int bench(const cli::ParsedArgs& args) {
  const std::string which = *args.get("benchmark");
  auto positive = [&](std::string_view name) {
    const long long value = args.get_int(name);
    if (value < 1 || value > 1000000) throw cli::UsageError(fmt::format("--{} must be in [1, 1000000], got {}", name, value));
    return static_cast<int>(value);
  };
  if (which == "rollout") {
    RolloutBenchOptions options;
    options.model = args.get_or_default("model");
    options.batch = positive("batch");
    options.new_tokens = positive("new-tokens");
    options.prompt_tokens = positive("prompt-tokens");
    options.repeats = positive("repeats");
    options.threads = static_cast<int>(args.get_int("threads"));
    options.dtype = args.get_or_default("dtype");
    options.device = args.get_or_default("device");
    options.python = args.get_or_default("python");
    options.hf_script = args.get_or_default("hf-script");
    if (options.python == "none") options.python.clear();
    return run_rollout_bench(options);
  }
  if (which == "failover") {
    FailoverBenchOptions options;
    options.model = args.get_or_default("model");
    options.grpo_binary = std::filesystem::read_symlink("/proc/self/exe");
    options.workers = positive("workers");
    options.prompts = positive("prompts");
    options.group_size = positive("group-size");
    options.new_tokens = positive("new-tokens");
    options.repeats = positive("repeats");
    return run_failover_bench(options);
  }
  if (which == "weight-sync") {
    WeightSyncBenchOptions options;
    options.model = args.get_or_default("model");
    options.grpo_binary = std::filesystem::read_symlink("/proc/self/exe");
    options.workers = positive("workers");
    options.repeats = positive("repeats");
    options.weight_dtype = args.get_or_default("weight-dtype");
    if (options.weight_dtype != "model" && !parse_dtype(options.weight_dtype)) {
      throw cli::UsageError(fmt::format("--weight-dtype '{}': use model, float32, bfloat16 or float16", options.weight_dtype));
    }
    return run_weight_sync_bench(options);
  }
  throw cli::UsageError(fmt::format("unknown benchmark '{}'; valid: rollout, failover, weight-sync", which));
}

int dataset(const cli::ParsedArgs& args) {
  const auto loaded = load_config(args, "config");
  std::unique_ptr<Task> task;
  try {
    task = make_task(loaded.config);
  } catch (const std::exception& error) {
    config::fail_at(loaded, "task", error.what());
  }
  const auto count = args.get_int("count");
  if (count < 0) throw cli::UsageError("--count must not be negative");
  // The prompt as the trainer writes it needs the checkpoint's tokenizer (for chat templates); the embedded
  // templates need none.
  const auto& name = loaded.config.task().prompt_template();
  std::optional<policy::PromptTemplate> prompt_template;
  if (name != "chat") prompt_template = policy::prompt_template(name);
  auto write = [&](const Problem& p, const char* split) {
    nlohmann::ordered_json line = {{"split", split}, {"question", p.question}, {"answer", p.reference}, {"grader", p.grader}};
    if (prompt_template) line["prompt"] = prompt_template->apply(p.question);
    if (!p.metadata.empty()) line["metadata"] = nlohmann::json::parse(p.metadata);
    std::cout << line.dump() << '\n';
  };
  for (long long i = 0; i < count; ++i) write(task->next_train_problem(), "train");
  if (args.flag("eval")) {
    for (const auto& p : task->eval_problems()) write(p, "eval");
  }
  std::cout.flush();
  return kExitSuccess;
}

int ablate(const cli::ParsedArgs& args) {
  AblateOptions options;
  options.set_file = *args.get("set-file");
  if (const auto out = args.get("output")) options.output = *out;
  options.grpo_binary = std::filesystem::read_symlink("/proc/self/exe");
  options.jobs = static_cast<int>(args.get_int("jobs"));
  if (options.jobs < 1 || options.jobs > 64) throw cli::UsageError(fmt::format("--jobs must be in [1, 64], got {}", options.jobs));
  if (const auto seeds = args.get("seeds")) options.seeds = static_cast<int>(args.get_int("seeds"));
  options.overrides = args.get_all("set");
  install_interrupt_handlers();
  return run_ablation(options);
}

std::vector<Command> make_commands() {
  const auto& defaults = config::RunConfig::default_instance();
  std::vector<Command> table;
  table.push_back({{"train", "train a policy with GRPO",
                    "Trains the policy named by model.path with GRPO (DeepSeek-R1-Zero style: groups of sampled completions, rule-based "
                    "rewards, group-relative advantages, clipped updates with a k3 KL penalty to the frozen initial policy). Without "
                    "CONFIG, trains the embedded default: the base checkpoint shipped in examples/base_policy (remade by `grpo pretrain`) on generated "
                    "arithmetic. Writes runs/<name>/ (config.textproto, metrics.jsonl, checkpoints, final/).",
                    {{"config", "a run config in protobuf text format (examples/*.textproto)", false}},
                    {kSetOption,
                     {"print-config", "", "print the resolved config and exit", "", false, false},
                     {"resume", "RUN_DIR", "continue a run from the newest checkpoint in its folder (its own config; metrics of later steps as if never stopped)", "", false, false}},
                    {"train examples/r1_zero_arithmetic.textproto", "train examples/r1_zero_arithmetic.textproto --set rollout.group_size=16",
                     "train --resume runs/r1zero-arithmetic"}},
                   train});
  table.push_back({{"pretrain", "make the embedded base checkpoint (supervised warm-up)",
                    "Trains the small built-in policy (Llama family over characters) on generated worked solutions, deliberately "
                    "imperfect: most answer at once without reasoning (and hastily, left to right), some break the format. Saves it in Hugging Face layout and prints its "
                    "held-out greedy accuracy.",
                    {{"config", "a run config whose `pretrain` section is used", false}},
                    {kSetOption, {"output", "DIR", "where to write the checkpoint (pretrain.output)", "", false, false}},
                    {"pretrain examples/r1_zero_arithmetic.textproto", "pretrain --output runs/base/model --set pretrain.steps=3000"}},
                   pretrain});
  table.push_back({{"eval", "accuracy of a checkpoint on held-out problems: greedy, pass@1 over k samples, pass@k, maj@k",
                    "Decodes greedily on held-out problems (generated arithmetic or Countdown, or every row of a JSON Lines file) and "
                    "prints one JSON line with accuracy, format_rate and completion-length statistics; with --samples K also "
                    "pass_at_1 (averaged over the K samples), pass_at_K and maj_at_K. Answers are checked by each problem's grader, "
                    "as in training.",
                    {},
                    {{"model", "DIR", "checkpoint folder (Hugging Face layout)", "", false, true},
                     {"task", "NAME", "arithmetic, countdown or jsonl (default: the config's task.kind)", "", false, false},
                     {"data", "FILE", "a JSON Lines file of problems (as task.jsonl), all of them held out", "", false, false},
                     {"num-problems", "N", "number of held-out problems (eval.num_problems)", "", false, false},
                     {"samples", "K", "sampled completions per problem for pass@1/pass@K/maj@K (eval.samples)", "", false, false},
                     {"temperature", "T", "temperature of those samples (eval.temperature)", "", false, false},
                     {"seed", "S", "seed of the held-out set and the samples (eval.seed)", "", false, false},
                     {"config", "FILE", "take task, reward and decoding settings from this run config", "", false, false},
                     kSetOption},
                    {"eval --model runs/r1zero-arithmetic/final --num-problems 200",
                     "eval --model runs/r1zero-arithmetic/final --samples 8 --temperature 1",
                     "eval --model ~/models/Qwen2.5-0.5B --data gsm8k_test.jsonl --config examples/qwen_gsm8k.textproto"}},
                   eval});
  table.push_back({{"generate", "sample completions for a prompt",
                    "Applies the prompt template and prints one JSON line per sampled completion.",
                    {},
                    {{"model", "DIR", "checkpoint folder (Hugging Face layout)", "", false, true},
                     {"prompt", "TEXT", "the question, e.g. \"12+3*4\"", "", false, true},
                     {"template", "NAME", "prompt template (r1_zero_compact, r1_zero, qwen_chat, llama3_chat, deepseek_r1_chat, chat: the checkpoint's format) or none", defaults.task().prompt_template(), false, false},
                     {"num-samples", "N", "completions to sample", "1", false, false},
                     {"max-new-tokens", "N", "tokens per completion at most", std::to_string(defaults.rollout().max_new_tokens()), false, false},
                     {"temperature", "T", "sampling temperature; 0 decodes greedily", "0", false, false},
                     {"top-p", "P", "nucleus sampling threshold (1 = off)", "1", false, false},
                     {"top-k", "K", "sample among the K most likely tokens (0 = off)", "0", false, false},
                     {"seed", "S", "sampling seed", "0", false, false},
                     {"device", "NAME", "auto, cpu or cuda", "auto", false, false}},
                    {"generate --model runs/r1zero-arithmetic/final --prompt \"7+4*6-9\""}},
                   generate});
  table.push_back({{"grade", "grade answers or completions from a JSON Lines file",
                    "Reads JSON Lines and writes one line per input line, in order. {\"gold\", \"pred\"} lines are compared "
                    "with the math grader (adds \"equal\" and \"reason\"); {\"completion\", \"reference\", \"grader\"} lines "
                    "are scored by the named grader (adds \"score\", \"components\", \"extracted\", \"reason\", \"scorable\", and "
                    "\"tests\" with per-test verdicts for code); an optional \"metadata\" object reaches the grader (e.g. "
                    "{\"language\": \"cpp\"}). "
                    "A malformed line is answered with {\"line\": N, \"error\": ...} and grading goes on; the exit code is then 1.",
                    {},
                    {{"input", "FILE", "JSON Lines file, or - for standard input", "", false, true},
                     {"config", "FILE", "a run config whose reward.graders (plug-ins, remote graders, code settings) answer to their names first", "", false, false},
                     kSetOption},
                    {"grade --input tests/reward/data/math_corpus.jsonl", "grade --input - < rollouts.jsonl",
                     "grade --input rows.jsonl --config my_run.textproto"}},
                   grade});
  table.push_back({{"grader-server", "serve the registered graders over TCP to remote trainers",
                    "Answers grade requests (reward/remote/grader_service.proto in grpo frames) with the registered graders, "
                    "so that a trainer can name them as `remote { address: \"HOST:PORT\" grader: \"math\" }` and grading "
                    "(e.g. code in the sandbox) runs on another machine. Runs until SIGINT or SIGTERM. No authentication: "
                    "listen on a trusted network only.",
                    {},
                    {{"host", "ADDRESS", "address to listen on", "127.0.0.1", false, false},
                     {"port", "N", "TCP port; 0 picks a free one (printed at start)", "9000", false, false},
                     {"graders", "NAMES", "comma-separated registered graders to serve; empty serves all", "", false, false},
                     {"threads", "N", "requests graded at once", "4", false, false}},
                    {"grader-server --port 9000 --graders math,code", "grader-server --host 0.0.0.0 --port 0"}},
                   grader_server});
  table.push_back({{"tokenize", "token ids of texts, as the Hugging Face tokenizer gives them",
                    "Reads JSON Lines {\"text\": ...} and writes each line back with \"ids\" added: the ids of the text with no special "
                    "tokens added around it (add_special_tokens=False); special tokens written inside the text, such as <|im_start|>, "
                    "are matched. Reads tokenizer.json and tokenizer_config.json of a Hugging Face folder. A malformed line is answered "
                    "with {\"line\": N, \"error\": ...} and the rest go on; the exit code is then 1.",
                    {},
                    {{"tokenizer", "DIR", "folder with tokenizer.json (a checkpoint folder works)", "", false, true},
                     {"input", "FILE", "JSON Lines file, or - for standard input", "", false, true}},
                    {"tokenize --tokenizer ~/models/Qwen2.5-0.5B --input texts.jsonl"}},
                   tokenize});
  table.push_back({{"score", "per-token log-probabilities of sequences under a checkpoint",
                    "Reads JSON Lines {\"ids\": [...]} or {\"text\": ...} and writes each line back with \"logprobs\" added: the "
                    "log-probability of each token given the ones before it (the first token has none, so the array is one shorter "
                    "than the ids), computed in float32 by default. Text is tokenized as `grpo tokenize` does and its \"ids\" are added. "
                    "A malformed line (bad ids, too long, out-of-vocabulary ids) is answered with {\"line\": N, \"error\": ...} and the "
                    "rest go on; the exit code is then 1.",
                    {},
                    {{"model", "DIR", "checkpoint folder (Hugging Face layout: Llama, Qwen2, Qwen3)", "", false, true},
                     {"input", "FILE", "JSON Lines file, or - for standard input", "", false, true},
                     {"dtype", "NAME", "weights and compute dtype: float32, bfloat16 or float16", "float32", false, false},
                     {"batch-tokens", "N", "positions per batch at most (sequences are grouped by length)", "4096", false, false},
                     {"device", "NAME", "auto, cpu or cuda", "auto", false, false}},
                    {"score --model ~/models/Qwen2.5-0.5B --input sequences.jsonl"}},
                   score});
  table.push_back({{"rollout-worker", "serve rollouts of a policy to trainers over TCP",
                    "Serves the rollout protocol (rollout/remote/rollout_service.proto in grpo frames): trainers that present the "
                    "token of --token-file push weights by version and send prompts; the G samples of each prompt are streamed back "
                    "as soon as they are done, with their sampling log-probs. A trainer names workers in rollout.workers (with "
                    "rollout.worker_token_file), or starts its own with rollout.local_workers. Prints \"rollout worker listening on "
                    "HOST:PORT\" once it accepts connections; runs until SIGINT or SIGTERM.",
                    {},
                    {{"listen", "HOST:PORT", "address to listen on (port 0: any free port)", "127.0.0.1:7000", false, false},
                     {"token-file", "FILE", "file holding the shared secret (its first line)", "", false, true},
                     {"model", "DIR", "the checkpoint the trainer starts from (Hugging Face layout)", "", false, true},
                     {"dtype", "NAME", "weights and compute dtype: float32, bfloat16 or float16", "float32", false, false},
                     {"device", "NAME", "auto, cpu or cuda", "auto", false, false},
                     {"threads", "N", "intra-op threads (0: every core)", "0", false, false}},
                    {"rollout-worker --model examples/base_policy --token-file ~/.grpo-token --listen 0.0.0.0:7000"}},
                   rollout_worker});
  table.push_back({{"dataset", "write a task's problems as JSON Lines (the training stream, then the held-out set)",
                    "Prints the first --count problems of the config's training stream (in the order a run draws them) and, with --eval, "
                    "the held-out set, one JSON line each: split, question, answer, grader and the prompt as the template writes it. For "
                    "looking at a generated task, or training another framework on the same data (bench/trl_side_by_side.py).",
                    {{"config", "a run config (default: the embedded default's task)", false}},
                    {{"count", "N", "training problems to write", "100", false, false},
                     {"eval", "", "also write the held-out problems", "", false, false},
                     kSetOption},
                    {"dataset examples/r1_zero_arithmetic.textproto --count 5", "dataset --set task.kind=COUNTDOWN --count 3 --eval"}},
                   dataset});
  table.push_back({{"ablate", "run an ablation set over several seeds and write a report",
                    "Runs every variant of the set (examples/ablations/*.textproto: a base run config and per-variant overrides) once per "
                    "seed, each as its own `grpo train`, then writes report.md with final held-out accuracy (mean ± std over seeds), steps "
                    "and wall time to the target accuracy, and SVG plots of accuracy, reward and completion length against the step. Runs "
                    "that already finished are kept, so an interrupted ablation continues where it stopped.",
                    {{"set-file", "an ablation set (text format, message AblationSet in rl/config/run_config.proto)", true}},
                    {{"output", "DIR", "where runs, logs and the report go (default runs/ablate-<set name>)", "", false, false},
                     {"seeds", "N", "seeds per variant (default: the set's)", "", false, false},
                     {"jobs", "N", "runs at once", "1", false, false},
                     kSetOption},
                    {"ablate examples/ablations/group_size.textproto", "ablate examples/ablations/kl_beta.textproto --seeds 2 --set steps=40"}},
                   ablate});
  table.push_back({{"bench", "benchmarks that print our figures beside a peer's, as one JSON line",
                    "rollout: our rollout engine and transformers' generate (run with --python, from PyPI) on the same weights, prompts, "
                    "batch and number of new tokens (EOS ignored), side by side (the two alternate run by run); prints ours_tokens_per_s, "
                    "hf_tokens_per_s, their ratio (medians of --repeats), the ratio of each pair of runs, and the FLOP/s we reach as a fraction of the peak of one large matmul measured in the same "
                    "run. failover: --workers local rollout workers generate a batch, then the same batch while one is killed halfway; "
                    "prints the added latency and whether the batch came back complete. weight-sync: --workers local rollout workers "
                    "receive the model's weights over TCP chunks and by c10d broadcast, alternating push by push; prints the seconds of "
                    "each (medians of --repeats) and their ratio.",
                    {{"benchmark", "rollout, failover or weight-sync", true}},
                    {{"model", "DIR", "checkpoint folder (Hugging Face layout)", "examples/base_policy", false, false},
                     {"batch", "N", "rollout: sequences generated at once", "64", false, false},
                     {"new-tokens", "N", "tokens generated per sequence", "256", false, false},
                     {"prompt-tokens", "N", "rollout: prompt length (random ids)", "32", false, false},
                     {"repeats", "N", "timed runs per side (the median is reported)", "3", false, false},
                     {"threads", "N", "rollout: intra-op threads for both sides (0: every core)", "0", false, false},
                     {"dtype", "NAME", "rollout: float32, bfloat16 or float16", "float32", false, false},
                     {"device", "NAME", "rollout: auto, cpu or cuda", "auto", false, false},
                     {"python", "PATH", "rollout: interpreter with transformers for the peer run, or none", ".venv/bin/python", false, false},
                     {"hf-script", "PATH", "rollout: the peer script", kHfGenerateScript, false, false},
                     {"workers", "N", "failover, weight-sync: local rollout workers", "3", false, false},
                     {"weight-dtype", "NAME", "weight-sync: the dtype on the wire: model, bfloat16, ...", "model", false, false},
                     {"prompts", "N", "failover: prompts per batch", "24", false, false},
                     {"group-size", "N", "failover: samples per prompt", "8", false, false}},
                    {"bench rollout --model examples/base_policy --batch 64 --new-tokens 256",
                     "bench failover --model examples/base_policy --new-tokens 128",
                     "bench weight-sync --model examples/base_policy --workers 3"}},
                   bench});
  return table;
}

}  // namespace

const std::vector<Command>& commands() {
  static const std::vector<Command> table = make_commands();
  return table;
}

int run_command_line(int argc, char** argv) {
  std::vector<cli::CommandSpec> specs;
  for (const auto& command : commands()) specs.push_back(command.spec);
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << cli::format_command_list(specs, kProgram);
    return args.empty() ? kExitUsage : kExitSuccess;
  }
  const Command* command = nullptr;
  for (const auto& candidate : commands()) {
    if (candidate.spec.name == args[0]) command = &candidate;
  }
  if (command == nullptr) {
    std::cerr << fmt::format("grpo: unknown command '{}'\n\n{}", args[0], cli::format_command_list(specs, kProgram));
    return kExitUsage;
  }
  try {
    const auto parsed = cli::parse_args(command->spec, std::span<const std::string>(args).subspan(1));
    if (parsed.help_requested()) {
      std::cout << cli::format_help(command->spec, kProgram);
      return kExitSuccess;
    }
    return command->run(parsed);
  } catch (const cli::UsageError& error) {
    std::cerr << fmt::format("grpo {}: {}\n(see `grpo {} --help`)\n", command->spec.name, error.what(), command->spec.name);
    return kExitUsage;
  } catch (const config::ConfigError& error) {
    std::cerr << fmt::format("grpo {}: config error: {}\n", command->spec.name, error.what());
    return kExitUsage;
  } catch (const LaunchEnvError& error) {
    std::cerr << fmt::format("grpo {}: launch environment: {}\n", command->spec.name, error.what());
    return kExitUsage;
  } catch (const RankFailure& error) {
    std::cerr << fmt::format("grpo {}: data parallel: {}\n", command->spec.name, error.what());
    return kRankFailureExitCode;
  } catch (const std::exception& error) {
    std::cerr << fmt::format("grpo {}: error: {}\n", command->spec.name, error.what());
    return kExitFailure;
  }
}

}  // namespace grpo::rl
