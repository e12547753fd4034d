// Supervised warm-up of the embedded policy (see pretrain.h).
#include "rl/pretrain.h"

#include <chrono>
#include <cmath>
#include <iostream>
#include <numbers>
#include <random>
#include <unistd.h>

#include <fmt/format.h>

#include "policy/char_tokenizer.h"
#include "policy/checkpoint.h"
#include "rl/evaluate.h"
#include "rl/policy_ops.h"
#include "rl/progress_bar.h"
#include "rl/runtime.h"
#include "rl/tasks/arithmetic_task.h"

namespace grpo::rl {
namespace {

policy::ModelConfig embedded_model_config(const config::EmbeddedModelConfig& c, const policy::CharTokenizer& tokenizer) {
  policy::ModelConfig m;
  m.vocab_size = tokenizer.vocab_size();
  m.hidden_size = c.hidden_size();
  m.intermediate_size = c.intermediate_size();
  m.num_hidden_layers = c.num_hidden_layers();
  m.num_attention_heads = c.num_attention_heads();
  m.num_key_value_heads = c.num_key_value_heads();
  m.head_dim = c.hidden_size() / c.num_attention_heads();
  m.max_position_embeddings = c.max_position_embeddings();
  m.rope_theta = c.rope_theta();
  m.tie_word_embeddings = true;
  m.eos_token_id = tokenizer.eos_id().value();
  m.eos_token_ids = {m.eos_token_id};
  m.pad_token_id = tokenizer.pad_id().value();
  return m;
}

double warmup_cosine(double peak, int step, int warmup, int total) {
  if (step <= warmup) return peak * step / std::max(1, warmup);
  const double progress = static_cast<double>(step - warmup) / std::max(1, total - warmup);
  return peak * (0.1 + 0.9 * 0.5 * (1.0 + std::cos(std::numbers::pi * progress)));  // decays to 10% of the peak
}

}  // namespace

int run_pretraining(const config::LoadedConfig& loaded) {
  const auto& cfg = loaded.config;
  const auto& pre = cfg.pretrain();
  configure_threads(cfg.runtime().threads());
  const auto device = resolve_device(cfg.runtime().device());
  install_interrupt_handlers();
  if (pre.model().hidden_size() % pre.model().num_attention_heads() != 0) {
    config::fail_at(loaded, "pretrain.model.hidden_size", "must be a multiple of pretrain.model.num_attention_heads");
  }
  if (pre.model().num_attention_heads() % pre.model().num_key_value_heads() != 0) {
    config::fail_at(loaded, "pretrain.model.num_key_value_heads", "must divide pretrain.model.num_attention_heads");
  }

  const auto tokenizer = std::make_shared<const policy::CharTokenizer>(policy::CharTokenizer::make_embedded());
  policy::LlamaForCausalLM model(embedded_model_config(pre.model(), *tokenizer));
  policy::initialize_weights(model, cfg.seed());
  model->to(device);
  if (cfg.task().prompt_template() == "chat") config::fail_at(loaded, "task.prompt_template", "the embedded policy has no chat format");
  const auto& prompt_template = policy::prompt_template(cfg.task().prompt_template());
  const auto& a = cfg.task().arithmetic();
  // The same eval seed and size as `grpo train`, so the held-out problems stay unseen in warm-up too.
  ArithmeticTask task({a.min_ops(), a.max_ops(), a.max_operand(), a.max_factor(), a.max_value()}, cfg.seed() + 7919, cfg.eval().seed(),
                      cfg.eval().num_problems());
  std::mt19937_64 rng(cfg.seed());
  std::bernoulli_distribution skip_reasoning(pre.skip_reasoning_fraction());
  std::bernoulli_distribution format_defect(pre.format_defect_fraction());
  const SolutionStyle skipped_style =
      pre.skipped_reasoning_answer() == config::PretrainConfig::CORRECT ? SolutionStyle::kDirect : SolutionStyle::kHasty;
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(pre.lr()).betas({0.9, 0.95}).weight_decay(0.01));

  std::cout << fmt::format("grpo pretrain: {} parameters, {} steps of {} worked solutions ({:.0f}% answer without reasoning, {})\n",
                           [&] { std::int64_t n = 0; for (const auto& p : model->parameters()) n += p.numel(); return n; }(),
                           pre.steps(), pre.batch_size(), 100 * pre.skip_reasoning_fraction(),
                           pre.skipped_reasoning_answer() == config::PretrainConfig::CORRECT ? "correctly" : "left to right");
  ProgressBar bar("pretrain", pre.steps(), resolve_progress_style(config::ProgressMode_Name(cfg.logging().progress()), ::isatty(STDERR_FILENO)),
                  std::cerr, cfg.logging().log_every() * 10);
  double smoothed_loss = 0.0;
  int step = 1;
  for (; step <= pre.steps() && !interrupt_requested(); ++step) {
    std::vector<std::vector<std::int64_t>> prompts, completions;
    for (int i = 0; i < pre.batch_size(); ++i) {
      const auto problem = task.next_train_problem();
      auto solution = worked_solution(problem, skip_reasoning(rng) ? skipped_style : SolutionStyle::kReasoned);
      if (format_defect(rng)) solution = with_format_defect(solution, rng);
      prompts.push_back(tokenizer->encode(prompt_template.apply(problem.expression)));
      completions.push_back(tokenizer->encode(solution));
      completions.back().push_back(tokenizer->eos_id().value());
    }
    const auto batch = make_sequence_batch(prompts, completions, *tokenizer->pad_id(), device);
    const auto logprobs = completion_logprobs(model, batch, /*temperature=*/1.0, /*with_entropy=*/false).logprobs;
    const auto loss = -(logprobs * batch.completion_mask).sum() / batch.completion_mask.sum();
    for (auto& group : optimizer.param_groups()) {
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(warmup_cosine(pre.lr(), step, pre.warmup_steps(), pre.steps()));
    }
    optimizer.zero_grad();
    loss.backward();
    torch::nn::utils::clip_grad_norm_(model->parameters(), 1.0);
    optimizer.step();
    const auto value = loss.item<double>();
    smoothed_loss = step == 1 ? value : 0.98 * smoothed_loss + 0.02 * value;
    bar.update(step, fmt::format("loss {:.4f}", smoothed_loss));
  }
  bar.finish("");
  if (interrupt_requested()) {
    std::cerr << "grpo pretrain: interrupted before the end; no checkpoint written\n";
    return kInterruptedExitCode;
  }
  const auto policy = policy::make_policy(model, tokenizer);
  policy::save_policy(pre.output(), policy);
  model->eval();
  std::vector<Problem> held_out;
  for (const auto& p : task.eval_problems()) held_out.push_back({p.expression, p.answer, "accuracy", ""});
  EvalOptions options;
  options.max_new_tokens = cfg.rollout().max_new_tokens();
  options.batch_size = cfg.eval().batch_size();
  const auto base = evaluate(policy, prompt_template, held_out, RewardScorer(cfg.reward()), options);
  std::cout << fmt::format("base checkpoint: {}\n", pre.output());
  std::cout << fmt::format("{{\"accuracy\": {:.4f}, \"format_rate\": {:.4f}, \"completion_tokens_mean\": {:.2f}, \"num_problems\": {}, \"final_loss\": {:.4f}}}\n",
                           base.accuracy, base.format_rate, base.completion_tokens_mean, base.num_problems, smoothed_loss);
  return 0;
}

}  // namespace grpo::rl
