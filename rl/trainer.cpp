// GRPO training loop (see trainer.h).
#include "rl/trainer.h"

#include <chrono>
#include <cmath>
#include <iostream>
#include <memory>
#include <numbers>
#include <optional>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "kernels/autocast.h"
#include "policy/checkpoint.h"
#include "rl/distributed/gradient_sync.h"
#include "rl/distributed/launch_env.h"
#include "rl/distributed/rank_group.h"
#include "policy/prompt_template.h"
#include "rl/evaluate.h"
#include "rl/grader_factory.h"
#include "rl/grpo_math.h"
#include "rl/kept_groups.h"
#include "rl/metrics_writer.h"
#include "rl/minibatch_gradients.h"
#include "rl/policy_ops.h"
#include "rl/progress_bar.h"
#include "rl/run_folder.h"
#include "rl/runtime.h"
#include "rl/reward_scorer.h"
#include "rl/tasks/task.h"
#include "rl/objective_config.h"
#include "rl/rollout_setup.h"
#include "rl/step_data.h"
#include "rl/tensorboard/event_writer.h"
#include "rl/trainer_state.h"
#include "rollout/generator.h"
#include "rollout/rollout_backend.h"

namespace grpo::rl {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

double scheduled_lr(const config::OptimizerConfig& c, int step, int total_steps) {
  // step counts from 1. Linear warmup, then constant, cosine or linear decay to zero at the last step.
  if (c.warmup_steps() > 0 && step <= c.warmup_steps()) return c.lr() * step / c.warmup_steps();
  const double progress = total_steps > c.warmup_steps()
                              ? static_cast<double>(step - c.warmup_steps()) / static_cast<double>(total_steps - c.warmup_steps())
                              : 1.0;
  switch (c.schedule()) {
    case config::COSINE: return c.lr() * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
    case config::LINEAR: return c.lr() * (1.0 - progress);
    default: return c.lr();
  }
}

// A step's rollout on its way: the prompts drawn for it and the backend's future batch.
struct PendingRollout {
  StepData data;
  std::future<rollout::GenerationResult> generation;
};

// Data parallel: every rank runs this loop on its share of each step's groups (a contiguous block of prompts; the G
// samples of a prompt stay on one rank). Rewards are gathered for the advantages and metrics, gradients are summed
// with losses normalised by the global token and sequence counts, so every rank takes the optimizer step one
// process would take with the whole batch. Rank 0 evaluates and writes the run folder.
class GrpoTrainer {
 public:
  GrpoTrainer(const config::LoadedConfig& loaded, bool resume, std::unique_ptr<RankGroup> ranks, torch::Device device);
  int run();

 private:
  // Draws the step's prompts and asks the backend for their samples under the weights of `policy_version`.
  PendingRollout start_rollout(int step, std::int64_t policy_version);
  // The phases of one step, each one call (see run_step for their order).
  StepData finish_rollout(PendingRollout& pending);
  void score_phase(StepData& data);
  void dynamic_sampling_phase(StepData& data, int step, nlohmann::ordered_json& row);
  StepLogprobs logprob_phase(const StepData& data, const SequenceBatch& batch);
  torch::Tensor advantage_phase(const StepData& data, const SequenceBatch& batch, const StepLogprobs& logprobs, nlohmann::ordered_json& row);
  nlohmann::ordered_json update_phase(const StepData& data, const SequenceBatch& batch, const StepLogprobs& logprobs, const torch::Tensor& advantages,
                                      int step);
  nlohmann::ordered_json run_step(int step, std::optional<PendingRollout>& next);
  EvalResult evaluate_and_log(int step);
  void save_step_checkpoint(int step);
  // This rank's prompts of a step, [first, last) of prompts_per_step.
  std::pair<std::int64_t, std::int64_t> local_prompts() const;
  // The step's metrics of what was sampled, over every rank's groups.
  void log_sampled(const StepData& data, double time_rollout, nlohmann::ordered_json& row);
  void check_data_parallel_settings();

  const config::LoadedConfig& loaded_;
  const config::RunConfig& cfg_;
  std::unique_ptr<RankGroup> ranks_;
  torch::Device device_;
  policy::Policy policy_;
  policy::LlamaForCausalLM reference_{nullptr};
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  policy::PromptTemplate template_;
  RewardScorer scorer_;
  std::unique_ptr<Task> task_;
  RunFolder folder_;
  std::unique_ptr<MetricsWriter> metrics_;  // opened once a resumed run has dropped the lines after its checkpoint
  std::unique_ptr<EventWriter> events_;     // TensorBoard; null when logging.tensorboard is off
  void log_row(const nlohmann::ordered_json& row);
  std::unique_ptr<rollout::RolloutBackend> rollout_;
  int first_step_ = 1;             // 1, or the step after the checkpoint a resumed run starts from
  bool reference_differs_ = false;  // the reference was reset away from the initial policy
  std::string data_state_;          // the task's training stream at the end of the last finished step
  EvalResult base_eval_;
  double elapsed_at_start_ = 0.0;
  Clock::time_point start_ = Clock::now();

  void resume_from_checkpoint();
};

policy::Policy load_or_explain(const config::LoadedConfig& loaded, torch::Device device) {
  try {
    return policy::load_policy(loaded.config.model().path(), device, parse_dtype(loaded.config.model().dtype()).value());
  } catch (const policy::CheckpointError& error) {
    config::fail_at(loaded, "model.path", error.what());
  }
}

policy::PromptTemplate template_or_explain(const config::LoadedConfig& loaded, policy::Policy& policy) {
  try {
    auto resolved = policy::resolve_prompt_template(loaded.config.task().prompt_template(), *policy.tokenizer);
    policy::add_template_stop_ids(resolved, *policy.tokenizer, policy.stop_token_ids);
    return resolved;
  } catch (const std::invalid_argument& error) {
    config::fail_at(loaded, "task.prompt_template", error.what());
  }
}

RewardScorer scorer_or_explain(const config::LoadedConfig& loaded) {
  try {
    return RewardScorer(loaded.config.reward());
  } catch (const std::exception& error) {  // unknown name, plug-in that does not load, bad address
    config::fail_at(loaded, "reward.graders", error.what());
  }
}

std::unique_ptr<Task> task_or_explain(const config::LoadedConfig& loaded) {
  try {
    return make_task(loaded.config);
  } catch (const std::exception& error) {  // bad settings, unreadable or malformed dataset
    config::fail_at(loaded, "task", error.what());
  }
}

RunFolder make_folder(const config::LoadedConfig& loaded) {
  try {
    return RunFolder(std::filesystem::path(loaded.config.output_dir()) / loaded.config.name());
  } catch (const std::runtime_error& error) {
    config::fail_at(loaded, "output_dir", error.what());
  }
}

GrpoTrainer::GrpoTrainer(const config::LoadedConfig& loaded, bool resume, std::unique_ptr<RankGroup> ranks, torch::Device device)
    : loaded_(loaded),
      cfg_(loaded.config),
      ranks_(std::move(ranks)),
      device_(device),
      policy_(load_or_explain(loaded, device_)),
      template_(template_or_explain(loaded, policy_)),
      scorer_(scorer_or_explain(loaded)),
      task_(task_or_explain(loaded)),
      folder_(make_folder(loaded)),
      rollout_(make_rollout_backend(loaded, policy_, folder_.root())) {
  check_data_parallel_settings();
  if (cfg_.model().autocast() != "none" && cfg_.model().autocast() != "bfloat16") {
    config::fail_at(loaded_, "model.autocast", fmt::format("unknown autocast dtype \"{}\" (none, bfloat16)", cfg_.model().autocast()));
  }
  policy_.model->set_gradient_checkpointing(cfg_.model().gradient_checkpointing());
  if (ranks_->is_main()) std::cerr << fmt::format("grpo train: task: {}\n", task_->describe());
  if (needs_reference(cfg_.grpo())) {  // β = 0 holds no reference model at all
    reference_ = policy::clone_model(policy_.model);
    reference_->eval();
    for (auto& p : reference_->parameters()) p.set_requires_grad(false);
  }
  const auto& o = cfg_.optimizer();
  optimizer_ = std::make_unique<torch::optim::AdamW>(
      policy_.model->parameters(),
      torch::optim::AdamWOptions(o.lr()).betas({o.beta1(), o.beta2()}).eps(o.adam_eps()).weight_decay(o.weight_decay()));
  torch::manual_seed(cfg_.seed());
  data_state_ = task_->train_state();
  if (cfg_.logging().tensorboard() && ranks_->is_main()) events_ = std::make_unique<EventWriter>(folder_.root() / "tensorboard");
  if (resume) {
    resume_from_checkpoint();
  } else if (ranks_->is_main()) {
    folder_.write_text(folder_.config_file(), config::to_textproto(cfg_));
    metrics_ = std::make_unique<MetricsWriter>(folder_.metrics_file());
  }
}

void GrpoTrainer::check_data_parallel_settings() {
  const auto world = ranks_->world_size();
  if (world == 1) return;
  // Ranks that disagree about the run would deadlock or silently train different things: same resolved config.
  const auto configs = ranks_->all_gather_strings(config::to_textproto(cfg_), "compare configs");
  for (int r = 1; r < world; ++r) {
    if (configs[static_cast<std::size_t>(r)] != configs[0]) {
      throw RankFailure(fmt::format("rank {}'s resolved config differs from rank 0's: every rank must run the same config and --set flags", r));
    }
  }
  if (cfg_.rollout().prompts_per_step() % world != 0) {
    config::fail_at(loaded_, "rollout.prompts_per_step",
                    fmt::format("{} prompts per step cannot be shared out evenly among {} ranks (each rank takes whole groups): use a multiple of {}",
                                cfg_.rollout().prompts_per_step(), world, world));
  }
}

std::pair<std::int64_t, std::int64_t> GrpoTrainer::local_prompts() const {
  const std::int64_t per_rank = cfg_.rollout().prompts_per_step() / ranks_->world_size();
  return {ranks_->rank() * per_rank, (ranks_->rank() + 1) * per_rank};
}

void GrpoTrainer::resume_from_checkpoint() {
  const auto checkpoint = latest_checkpoint(folder_.root());
  if (!checkpoint) {
    throw std::runtime_error(fmt::format("--resume: {} holds no complete checkpoint (checkpoints/step-*/trainer_state/state.json); nothing to resume",
                                         folder_.root().string()));
  }
  // The policy from the checkpoint; the reference stays the initial policy unless it was reset since.
  auto saved = policy::load_policy(*checkpoint, device_, policy_.model->dtype());
  {
    torch::NoGradGuard no_grad;
    auto target = policy_.model->named_parameters();
    for (const auto& item : saved.model->named_parameters()) target[item.key()].copy_(item.value());
  }
  const auto state = load_trainer_state(*checkpoint, *optimizer_, reference_ ? &reference_ : nullptr, device_);
  task_->restore_train_state(state.data_state);
  data_state_ = state.data_state;
  reference_differs_ = state.reference_differs;
  first_step_ = state.step + 1;
  elapsed_at_start_ = state.elapsed_seconds;
  if (!ranks_->is_main()) return;
  // Lines logged after the checkpoint (by the run that was killed) are dropped: the resumed run writes them again.
  const auto kept = keep_metrics_up_to(folder_.metrics_file(), state.step);
  for (const auto& row : kept) {
    if (row.value("step", -1) == 0 && row.contains("eval_accuracy")) {
      base_eval_ = {row.value("eval_num_problems", std::int64_t{0}), row.value("eval_accuracy", 0.0), row.value("eval_format_rate", 0.0),
                    row.value("eval_completion_tokens_mean", 0.0), row.value("time_eval_s", 0.0)};
    }
  }
  metrics_ = std::make_unique<MetricsWriter>(folder_.metrics_file(), /*append=*/true);
  std::cerr << fmt::format("grpo train: resuming {} from {} (step {})\n", folder_.root().string(), checkpoint->string(), state.step);
}

PendingRollout GrpoTrainer::start_rollout(int step, std::int64_t policy_version) {
  PendingRollout pending;
  auto& data = pending.data;
  const auto& r = cfg_.rollout();
  data.group_size = r.group_size();
  rollout::GenerationRequest request;
  // Each prompt's samples come from its own stream (rollout/sampler.h), seeded by its index in the step: the same
  // wherever it is generated, on whichever rank. Every rank draws every problem, so the data stream (a checkpointed
  // cursor) stays the same on all of them.
  const auto step_seed = rollout::derive_seed(cfg_.seed(), static_cast<std::uint64_t>(step));
  const auto [first, last] = local_prompts();
  data.global_first = first;
  data.global_prompts = r.prompts_per_step();
  for (int p = 0; p < r.prompts_per_step(); ++p) {
    auto problem = task_->next_train_problem();
    if (p < first || p >= last) continue;
    data.problems.push_back(std::move(problem));
    data.prompt_texts.push_back(template_.apply(data.problems.back().question));
    request.prompts.push_back(policy::encode_prompt(policy_, data.prompt_texts.back()));
    request.prompt_seeds.push_back(rollout::derive_seed(step_seed, static_cast<std::uint64_t>(p)));
    request.prompt_labels.push_back(p);
    for (int g = 0; g < r.group_size(); ++g) data.prompt_ids.push_back(request.prompts.back());
  }
  request.samples_per_prompt = r.group_size();
  request.max_new_tokens = r.max_new_tokens();
  request.sampling = {r.temperature(), r.top_p(), r.top_k(), r.min_p()};
  request.stop_token_ids = policy_.stop_token_ids;
  request.stop_strings.assign(r.stop_strings().begin(), r.stop_strings().end());
  request.seed = step_seed;
  pending.generation = rollout_->start(std::move(request), policy_version);
  return pending;
}

StepData GrpoTrainer::finish_rollout(PendingRollout& pending) {
  StepData data = std::move(pending.data);
  data.generation = pending.generation.get();
  return data;
}

void GrpoTrainer::score_phase(StepData& data) {
  std::vector<std::string> texts;
  for (const auto& c : data.generation.completions) texts.push_back(policy_.tokenizer->decode(c.tokens, /*skip_special_tokens=*/true));
  auto scores = scorer_.score(data.problems, data.prompt_texts, texts, data.group_size);
  data.rewards = std::move(scores.rewards);
  data.scorable = std::move(scores.scorable);
  data.component_means = std::move(scores.component_means);
  data.component_counts = std::move(scores.component_counts);
}

void GrpoTrainer::dynamic_sampling_phase(StepData& data, int step, nlohmann::ordered_json& row) {
  // DAPO: drop the groups whose rewards are all equal, sample more prompts until the step has prompts_per_step
  // groups with signal or the rounds run out, and keep the first prompts_per_step of them. Each rank samples its
  // block of every round; the kept groups are then shared out among the ranks (rl/kept_groups.h).
  const auto& g = cfg_.grpo();
  const auto wanted = static_cast<std::int64_t>(cfg_.rollout().prompts_per_step());
  // Extra rounds sample from the newest weights, step − 1: with rollout.overlap the step's first batch came from
  // step − 2, but the backend already holds step − 1 (and the next step's batch is queued on it).
  const auto version = step - 1;
  KeptGroups kept;
  kept.add_round(*ranks_, std::move(data), fmt::format("dynamic sampling (step {}, round 0)", step));
  int rounds = 0;
  while (kept.total() < wanted && rounds < g.dynamic_sampling_max_rounds() &&
         !ranks_->any(interrupt_requested(), fmt::format("agree to sample more (step {}, round {})", step, rounds + 1))) {
    ++rounds;
    auto pending = start_rollout(step, version);
    auto more = finish_rollout(pending);
    score_phase(more);
    kept.add_round(*ranks_, std::move(more), fmt::format("dynamic sampling (step {}, round {})", step, rounds));
  }
  const auto groups_kept = std::min(kept.total(), wanted);
  data = std::move(kept).share_out(*ranks_, groups_kept, fmt::format("share out kept groups (step {})", step));
  row["dynamic_sampling_rounds"] = rounds;
  row["dynamic_sampling_prompts_sampled"] = wanted * (rounds + 1);
  row["dynamic_sampling_groups_kept"] = groups_kept;
}

StepLogprobs GrpoTrainer::logprob_phase(const StepData& data, const SequenceBatch& batch) {
  StepLogprobs out;
  // The rollout engine's log-probs, padded to [B, T].
  const auto B = batch.size();
  const auto T = batch.completion_ids.size(1);
  auto recorded = torch::zeros({B, T}, torch::kFloat32);
  for (std::int64_t i = 0; i < B; ++i) {
    const auto& lp = data.generation.completions[static_cast<std::size_t>(i)].logprobs;
    if (!lp.empty()) recorded[i].narrow(0, 0, static_cast<std::int64_t>(lp.size())).copy_(torch::tensor(lp));
  }
  out.rollout_logprobs = recorded.to(device_);
  torch::NoGradGuard no_grad;
  const kernels::AutocastGuard autocast(device_.type(), cfg_.model().autocast() == "bfloat16");  // as the update computes
  const auto micro_rows = cfg_.grpo().micro_batch_rows();
  if (cfg_.grpo().old_logprobs() == config::RECOMPUTE) {
    out.old_logprobs = completion_logprobs_in_groups(policy_.model, batch, cfg_.rollout().temperature(), micro_rows);
  } else {
    out.old_logprobs = out.rollout_logprobs;
  }
  if (reference_) out.ref_logprobs = completion_logprobs_in_groups(reference_, batch, cfg_.rollout().temperature(), micro_rows);
  return out;
}

torch::Tensor GrpoTrainer::advantage_phase(const StepData& data, const SequenceBatch& batch, const StepLogprobs& logprobs,
                                           nlohmann::ordered_json& row) {
  const auto& g = cfg_.grpo();
  auto rewards = data.rewards.clone();
  if (g.overlong_cache() > 0) {
    // DAPO's soft overlong punishment, added to the reward of long completions.
    auto rewards_a = rewards.accessor<double, 2>();
    double penalty_sum = 0.0;
    for (std::int64_t i = 0; i < data.samples(); ++i) {
      const auto& c = data.generation.completions[static_cast<std::size_t>(i)];
      const auto penalty = overlong_penalty(static_cast<std::int64_t>(c.tokens.size()), cfg_.rollout().max_new_tokens(), g.overlong_cache());
      rewards_a[i / data.group_size][i % data.group_size] += penalty;
      penalty_sum += penalty;
    }
    auto sums = torch::tensor({penalty_sum, static_cast<double>(data.samples())}, torch::kFloat64);
    ranks_->all_reduce_sum(sums, "sum overlong penalties");
    row["overlong_penalty_mean"] = sums[0].item<double>() / std::max(sums[1].item<double>(), 1.0);
  }
  if (g.kl_placement() == config::KL_IN_REWARD && g.kl_beta() > 0.0) {
    const auto kl = sequence_kl(logprobs.old_logprobs, logprobs.ref_logprobs, batch.completion_mask, kl_estimator(g.kl_estimator()));
    rewards = rewards - g.kl_beta() * kl.to(torch::kCPU, torch::kFloat64).view(rewards.sizes());
    auto sums = torch::tensor({(g.kl_beta() * kl).sum().item<double>(), static_cast<double>(kl.numel())}, torch::kFloat64);
    ranks_->all_reduce_sum(sums, "sum KL penalties");
    row["kl_reward_penalty_mean"] = sums[0].item<double>() / std::max(sums[1].item<double>(), 1.0);
  }
  // Group norms need only the rank's own groups, batch std needs all of them: every rank computes the advantages of
  // the whole step from the gathered rewards and keeps its own rows.
  // (Blocks may differ in size by one after dynamic sampling, or be empty.)
  const auto label = fmt::format("gather rewards (step {})", row["step"].get<int>());
  const auto gathered = ranks_->all_gather_rows(torch::stack({rewards, data.scorable.to(torch::kFloat64)}, 1), label);
  const auto all_rewards = gathered.select(1, 0);
  const auto all_scorable = gathered.select(1, 1).gt(0.5);
  return compute_advantages(all_rewards, all_scorable, advantage_norm(g.advantage_norm()), g.advantage_eps())
      .narrow(0, data.global_first, data.prompts())
      .reshape({-1})
      .to(torch::kFloat32)
      .to(device_);
}

nlohmann::ordered_json GrpoTrainer::update_phase(const StepData& data, const SequenceBatch& batch, const StepLogprobs& logprobs,
                                                 const torch::Tensor& advantages, int step) {
  const auto& g = cfg_.grpo();
  auto params = policy_loss_params(g, cfg_.rollout().max_new_tokens());
  // With one optimizer step per minibatch, "this batch" of BNPO is the minibatch, whose tokens data parallelism
  // counts over every rank: the global token mean.
  if (params.aggregation == LossAggregation::kTokenMeanLocal) params.aggregation = LossAggregation::kTokenMean;
  const auto lr = scheduled_lr(cfg_.optimizer(), step, cfg_.steps());
  for (auto& group : optimizer_->param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);

  // The step's rows over all ranks, and this rank's block of them.
  const auto local_rows = batch.size();
  const auto offset = data.global_first * data.group_size;
  const auto B = data.global_prompts * data.group_size;
  // Token-mean metrics are weighted by the rank's share of the minibatch's tokens, then summed over the ranks.
  using M = MinibatchMetrics;
  auto sums = torch::zeros({M::kCount}, torch::kFloat64);
  auto sums_a = sums.accessor<double, 1>();
  double grad_norm = 0.0;
  int updates = 0;
  const auto minibatches = std::min<std::int64_t>(g.minibatches_per_epoch(), B);
  const auto parameters = policy_.model->parameters();
  const MinibatchSettings settings{cfg_.rollout().temperature(), cfg_.model().autocast() == "bfloat16", g.micro_batch_rows()};
  auto shuffle_generator = at::make_generator<at::CPUGeneratorImpl>(cfg_.seed() + static_cast<std::uint64_t>(step));
  for (int epoch = 0; epoch < g.epochs_per_step(); ++epoch) {
    const auto order = minibatches > 1 ? torch::randperm(B, shuffle_generator, torch::kInt64) : torch::arange(B, torch::kInt64);
    for (const auto& global_rows : order.chunk(minibatches)) {
      const auto label = fmt::format("step {}, epoch {}, minibatch {}", step, epoch + 1, updates + 1);
      const auto mine = (global_rows >= offset) & (global_rows < offset + local_rows);
      const auto rows = global_rows.masked_select(mine) - offset;
      const bool empty = rows.numel() == 0;  // every row of this minibatch is on other ranks
      const double local_tokens = empty ? 0.0 : batch.completion_mask.index_select(0, rows.to(device_)).sum().item<double>();
      auto tokens = torch::tensor({local_tokens}, torch::kFloat64);
      ranks_->all_reduce_sum(tokens, "count tokens (" + label + ")");
      params.global_tokens = tokens.item<double>();
      params.global_sequences = static_cast<double>(global_rows.numel());
      optimizer_->zero_grad();
      // This rank's rows of the minibatch, in micro-batches (rl/minibatch_gradients.h).
      if (!empty) {
        const auto metrics = minibatch_gradients(policy_.model, batch, rows, logprobs, advantages, params, settings);
        for (std::size_t k = 0; k < MinibatchMetrics::kCount; ++k) sums_a[static_cast<std::int64_t>(k)] += metrics.sums[k];
      }
      all_reduce_gradients(*ranks_, parameters, "all-reduce gradients (" + label + ")");
      if (cfg_.optimizer().max_grad_norm() > 0.0) {
        grad_norm += torch::nn::utils::clip_grad_norm_(parameters, cfg_.optimizer().max_grad_norm());
      }
      optimizer_->step();
      ++updates;
    }
  }
  ranks_->all_reduce_sum(sums, fmt::format("sum update metrics (step {})", step));
  const double n = std::max(updates, 1);
  return {{"loss", sums_a[M::kLoss] / n},
          {"kl", sums_a[M::kKl] / n},
          {"entropy", sums_a[M::kEntropy] / n},
          {"clip_fraction", (sums_a[M::kClipLow] + sums_a[M::kClipHigh]) / n},
          {"clip_low_fraction", sums_a[M::kClipLow] / n},
          {"clip_high_fraction", sums_a[M::kClipHigh] / n},
          {"dual_clip_fraction", sums_a[M::kDual] / n},
          {"tis_capped_fraction", sums_a[M::kTis] / n},
          {"ratio_mean", sums_a[M::kRatio] / n},
          {"grad_norm", grad_norm / n},
          {"lr", lr}};
}

EvalResult GrpoTrainer::evaluate_and_log(int step) {
  policy_.model->eval();
  EvalOptions options;
  options.max_new_tokens = cfg_.rollout().max_new_tokens();
  options.batch_size = cfg_.eval().batch_size();
  options.samples = cfg_.eval().samples();
  options.temperature = cfg_.eval().temperature();
  options.seed = cfg_.eval().seed();
  const auto result = evaluate(policy_, template_, task_->eval_problems(), scorer_, options);
  policy_.model->train();
  nlohmann::ordered_json row = {{"step", step},
                                {"eval_accuracy", result.accuracy},
                                {"eval_format_rate", result.format_rate},
                                {"eval_completion_tokens_mean", result.completion_tokens_mean},
                                {"eval_completion_tokens_p90", result.completion_tokens_p90},
                                {"eval_truncated_fraction", result.truncated_fraction},
                                {"eval_num_problems", result.num_problems}};
  if (result.samples > 0) {
    row["eval_samples"] = result.samples;
    row["eval_pass_at_1"] = result.pass_at_1;
    row[fmt::format("eval_pass_at_{}", result.samples)] = result.pass_at_k;
    row[fmt::format("eval_maj_at_{}", result.samples)] = result.maj_at_k;
  }
  row["time_eval_s"] = result.seconds;
  log_row(row);
  return result;
}

void GrpoTrainer::log_row(const nlohmann::ordered_json& row) {
  if (!ranks_->is_main()) return;
  metrics_->write(row);
  if (events_) {
    const auto wall = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    events_->add_row(row, "", wall);
  }
}

void GrpoTrainer::save_step_checkpoint(int step) {
  if (!ranks_->is_main()) return;  // the ranks hold the same weights and state
  // Written under a temporary name and renamed into place: a run killed while saving keeps its previous checkpoint.
  const auto staging = folder_.begin_step_checkpoint(step);
  policy::save_policy(staging, policy_);
  const TrainerState state{step, elapsed_at_start_ + seconds_since(start_), data_state_, reference_differs_};
  std::optional<policy::Policy> reference;
  if (reference_differs_) reference.emplace(policy::make_policy(reference_, policy_.tokenizer));
  save_trainer_state(staging, state, *optimizer_, reference ? &*reference : nullptr);
  folder_.commit_step_checkpoint(step);
  folder_.prune_step_checkpoints(cfg_.checkpoint().keep_last());
}

void GrpoTrainer::log_sampled(const StepData& data, double time_rollout, nlohmann::ordered_json& row) {
  // Metrics of what was sampled, before any filtering, over every rank's groups.
  const auto label = fmt::format("gather sampled metrics (step {})", row["step"].get<int>());
  const auto rewards = ranks_->all_gather(data.rewards, label);
  const auto scorable = ranks_->all_gather(data.scorable.to(torch::kFloat64), label).gt(0.5);
  row["reward_mean"] = rewards.mean().item<double>();
  row["reward_std"] = rewards.std().item<double>();
  // A grader's mean over the scorable samples of all ranks: each rank's mean weighted by its count.
  auto means = data.component_means;
  if (ranks_->world_size() > 1) {
    nlohmann::json mine = nlohmann::json::object();
    for (const auto& [name, mean] : data.component_means) mine[name] = {mean, data.component_counts.at(name)};
    std::map<std::string, std::pair<double, double>> merged;  // name → (Σ mean · n, Σ n)
    for (const auto& text : ranks_->all_gather_strings(mine.dump(), label)) {
      const auto parsed = nlohmann::json::parse(text);
      for (const auto& [name, pair] : parsed.items()) {
        const double mean = pair[0].is_number() ? pair[0].get<double>() : NAN;  // JSON writes NaN as null
        const double count = pair[1].is_number() ? pair[1].get<double>() : 0.0;
        merged[name].first += count > 0 ? mean * count : 0.0;
        merged[name].second += count;
      }
    }
    means.clear();
    for (const auto& [name, sum_count] : merged) means[name] = sum_count.second > 0 ? sum_count.first / sum_count.second : 0.0;
  }
  row["accuracy"] = means.count("accuracy") ? means["accuracy"] : NAN;
  row["format_rate"] = means.count("format") ? means["format"] : NAN;
  for (const auto& [name, mean] : means) {
    if (name != "accuracy" && name != "format") row["reward_" + name] = mean;
  }
  row["unscorable"] = static_cast<double>((~scorable).sum().item<std::int64_t>());
  double completion_tokens = 0.0, truncated = 0.0;
  for (const auto& c : data.generation.completions) {
    completion_tokens += static_cast<double>(c.tokens.size());
    truncated += c.finish == rollout::FinishReason::kLength ? 1.0 : 0.0;
  }
  auto sums = torch::tensor({completion_tokens, truncated, static_cast<double>(data.generation.generated_tokens)}, torch::kFloat64);
  ranks_->all_reduce_sum(sums, label);
  const auto sampled = static_cast<double>(std::max<std::int64_t>(rewards.numel(), 1));
  row["completion_tokens_mean"] = sums[0].item<double>() / sampled;
  row["truncated_fraction"] = sums[1].item<double>() / sampled;
  row["rollout_tokens_per_s"] = sums[2].item<double>() / std::max(time_rollout, 1e-9);
}

// rollout → score (→ dynamic sampling) → old/ref log-probs → advantages → update → weight sync; each phase timed.
// Returns the step's metrics row, or an empty row when interrupted before any update.
nlohmann::ordered_json GrpoTrainer::run_step(int step, std::optional<PendingRollout>& next) {
  // Policy versions count updates: version v is the weights after v steps. Without overlap the batch of step k
  // comes from version k − 1; with it, the batch of step k + 1 is started before step k's update, from version k − 1.
  const auto step_start = Clock::now();
  nlohmann::ordered_json row = {{"step", step}};
  auto phase_start = Clock::now();
  if (!next) next = start_rollout(step, step - 1);
  StepData data = finish_rollout(*next);
  next.reset();
  double time_rollout = seconds_since(phase_start);
  const auto rollout_stats = rollout_->last_batch_stats();
  if (ranks_->any(interrupt_requested(), fmt::format("agree to stop (step {})", step))) return {};
  if (cfg_.rollout().overlap() && step < cfg_.steps()) next = start_rollout(step + 1, step - 1);

  phase_start = Clock::now();
  score_phase(data);
  log_sampled(data, time_rollout, row);
  double time_reward = seconds_since(phase_start);
  if (cfg_.grpo().dynamic_sampling()) {
    phase_start = Clock::now();
    dynamic_sampling_phase(data, step, row);
    time_rollout += seconds_since(phase_start);  // extra rounds are rollouts (and their scoring)
  }

  phase_start = Clock::now();
  std::vector<std::vector<std::int64_t>> completions;
  for (const auto& c : data.generation.completions) completions.push_back(c.tokens);
  auto batch = make_sequence_batch(data.prompt_ids, completions, policy_.pad_token_id, device_);
  batch.share_prompts = cfg_.model().shared_prompt_forward();
  batch.padding_free = cfg_.model().padding_free();
  if (cfg_.grpo().mask_truncated()) {
    // DAPO overlong filtering: a completion cut off by the budget says nothing reliable about its answer.
    std::vector<float> keep;
    for (const auto& c : data.generation.completions) keep.push_back(c.finish == rollout::FinishReason::kLength ? 0.0f : 1.0f);
    batch.completion_mask = batch.completion_mask * torch::tensor(keep).to(device_).unsqueeze(1);
  }
  const auto logprobs = logprob_phase(data, batch);
  const double time_logprobs = seconds_since(phase_start);

  phase_start = Clock::now();
  const auto advantages = advantage_phase(data, batch, logprobs, row);
  time_reward += seconds_since(phase_start);

  phase_start = Clock::now();
  nlohmann::ordered_json update = {{"loss", 0.0}, {"kl", 0.0}};
  if (data.global_prompts > 0) {  // (a rank whose block is empty still takes part in every collective)
    update = update_phase(data, batch, logprobs, advantages, step);
  } else {
    row["skipped_update"] = true;  // dynamic sampling found no group with signal
  }
  const double time_update = seconds_since(phase_start);

  phase_start = Clock::now();
  if (reference_ && cfg_.grpo().reference_reset_every() > 0 && step % cfg_.grpo().reference_reset_every() == 0) {
    // R1-Zero: the reference becomes the current policy.
    torch::NoGradGuard no_grad;
    auto target = reference_->named_parameters();
    for (const auto& item : policy_.model->named_parameters()) target[item.key()].copy_(item.value());
    reference_differs_ = true;
    row["reference_reset"] = true;
  }
  rollout_->publish(policy_.model, step);
  const double time_sync = seconds_since(phase_start);
  std::int64_t oldest_version = step - 1;
  for (const auto& c : data.generation.completions) oldest_version = std::min(oldest_version, c.policy_version);

  row.update(update);
  row["time_s"] = elapsed_at_start_ + seconds_since(start_);
  const double time_step = seconds_since(step_start);
  row["time_step_s"] = time_step;
  const std::pair<const char*, double> phases[] = {
      {"rollout", time_rollout}, {"reward", time_reward}, {"logprobs", time_logprobs}, {"update", time_update}, {"sync", time_sync}};
  for (const auto& [name, seconds] : phases) {
    row[fmt::format("time_{}_s", name)] = seconds;
    row[fmt::format("share_{}", name)] = seconds / std::max(time_step, 1e-9);
  }
  // The data stream as this step leaves it (without overlap nothing of the next step has been drawn yet).
  if (!next) data_state_ = task_->train_state();
  row["rollout_staleness"] = static_cast<double>(step - 1 - oldest_version);
  row["rollout_workers_failed"] = rollout_stats.workers_failed;
  row["rollout_prompts_reassigned"] = rollout_stats.reassigned_prompts;
  return row;
}

int GrpoTrainer::run() {
  const bool main = ranks_->is_main();
  if (main) {
    std::cout << "grpo train: resolved config (saved to " << folder_.config_file().string() << ")\n"
              << config::to_textproto(cfg_) << std::flush;
  }
  const bool has_eval = main && !task_->eval_problems().empty();  // rank 0 evaluates; the others wait at their next collective
  EvalResult base;
  if (has_eval && first_step_ > 1) {
    base = base_eval_;  // a resumed run's base figures are in its metrics
  } else if (has_eval) {
    base = evaluate_and_log(0);
    std::cerr << fmt::format("step 0 (base policy): eval accuracy {:.3f}, format {:.3f} on {} held-out problems\n", base.accuracy,
                             base.format_rate, base.num_problems);
  }
  const auto progress = main ? config::ProgressMode_Name(cfg_.logging().progress()) : std::string("QUIET");
  ProgressBar bar("train", cfg_.steps(), resolve_progress_style(progress, ::isatty(STDERR_FILENO)), std::cerr, cfg_.logging().log_every());
  int last_finished = first_step_ - 1;
  if (main) std::cerr << fmt::format("grpo train: rollouts: {}; {}\n", rollout_->describe(), ranks_->describe());
  rollout_->publish(policy_.model, first_step_ - 1);
  std::optional<PendingRollout> next;
  // Every rank stops at the same step: a Ctrl-C (or torchrun's SIGTERM) seen by one is agreed on by all.
  for (int step = first_step_; step <= cfg_.steps() && !ranks_->any(interrupt_requested(), fmt::format("agree to go on (step {})", step)); ++step) {
    auto row = run_step(step, next);
    if (row.empty()) break;  // interrupted during the rollout: the weights are still those of the last finished step
    last_finished = step;
    log_row(row);
    bar.update(step, fmt::format("reward {:.2f} acc {:.2f} fmt {:.2f} len {:.0f} kl {:.4f}", row["reward_mean"].get<double>(),
                                 row["accuracy"].get<double>(), row["format_rate"].get<double>(), row["completion_tokens_mean"].get<double>(),
                                 row["kl"].get<double>()));
    if (has_eval && cfg_.eval().every_steps() > 0 && step % cfg_.eval().every_steps() == 0 && step != cfg_.steps()) evaluate_and_log(step);
    if (cfg_.checkpoint().every_steps() > 0 && step % cfg_.checkpoint().every_steps() == 0) save_step_checkpoint(step);
  }
  bar.finish("");
  if (last_finished < cfg_.steps()) {  // stopped early: every rank saw (or was told of) the interrupt
    save_step_checkpoint(last_finished);
    if (main) std::cerr << fmt::format("grpo train: interrupted; checkpoint of the last finished step ({}) saved in {}\n", last_finished,
                             folder_.step_checkpoint(last_finished).string());
    return kInterruptedExitCode;
  }
  if (!main) return 0;
  policy::save_policy(folder_.final_checkpoint(), policy_);
  if (has_eval) {
    const auto trained = evaluate_and_log(cfg_.steps());
    std::cout << fmt::format("\nrun folder: {}\nheld-out greedy accuracy: base {:.1f}% → trained {:.1f}% ({:+.1f} points); format compliance "
                             "{:.1f}% → {:.1f}%; mean completion {:.1f} → {:.1f} tokens; training took {:.0f} s\n",
                             folder_.root().string(), 100 * base.accuracy, 100 * trained.accuracy, 100 * (trained.accuracy - base.accuracy),
                             100 * base.format_rate, 100 * trained.format_rate, base.completion_tokens_mean, trained.completion_tokens_mean,
                             seconds_since(start_));
  }
  std::cout << fmt::format("final policy (Hugging Face layout): {}\n", folder_.final_checkpoint().string());
  return 0;
}

}  // namespace

int run_training(const config::LoadedConfig& loaded, bool resume) {
  const auto launch = read_launch_env();
  const auto& runtime = loaded.config.runtime();
  int threads = runtime.threads();
  if (threads == 0 && launch.local_world_size > 1) {
    threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / launch.local_world_size);  // the node's cores, shared
  }
  configure_threads(threads);
  torch::Device device = [&] {
    try {
      return device_for_rank(resolve_device(runtime.device()), launch.local_rank, launch.distributed());
    } catch (const std::invalid_argument& error) {
      config::fail_at(loaded, "runtime.device", error.what());
    }
  }();
  // Joined before the model loads, so that a rank that cannot reach the others fails before minutes of loading.
  auto ranks = join_rank_group(launch, device, std::chrono::seconds(runtime.collective_timeout_s()));
  GrpoTrainer trainer(loaded, resume, std::move(ranks), device);
  install_interrupt_handlers();
  return trainer.run();
}

}  // namespace grpo::rl
