// Batched generation with shared prefills, per-sample random streams, stop tokens and strings, and compaction of
// finished rows (see generator.h).
#include "rollout/generator.h"

#include <algorithm>
#include <chrono>
#include <mutex>

#include <optional>

#include <fmt/format.h>

#include "kernels/cpu_workers.h"
#include "rollout/stop_strings.h"

namespace grpo::rollout {
namespace {

// Rebuild the batch without finished rows once at least a quarter of it has finished: index_select copies the whole
// cache, so doing it at every finished row would cost more than it saves.
constexpr double kCompactWhenFinishedFraction = 0.25;

struct PromptBatch {
  torch::Tensor ids;    // [P, L] left-padded with token 0 (masked out)
  torch::Tensor valid;  // [P, L] bool
};

PromptBatch left_pad(const std::vector<std::vector<std::int64_t>>& prompts) {
  std::size_t longest = 0;
  for (const auto& prompt : prompts) longest = std::max(longest, prompt.size());
  const auto rows = static_cast<std::int64_t>(prompts.size());
  const auto width = static_cast<std::int64_t>(longest);
  auto ids = torch::zeros({rows, width}, torch::kInt64);
  auto valid = torch::zeros({rows, width}, torch::kBool);
  auto ids_a = ids.accessor<std::int64_t, 2>();
  auto valid_a = valid.accessor<bool, 2>();
  for (std::int64_t r = 0; r < rows; ++r) {
    const auto& prompt = prompts[static_cast<std::size_t>(r)];
    const auto offset = width - static_cast<std::int64_t>(prompt.size());
    for (std::size_t t = 0; t < prompt.size(); ++t) {
      ids_a[r][offset + static_cast<std::int64_t>(t)] = prompt[t];
      valid_a[r][offset + static_cast<std::int64_t>(t)] = true;
    }
  }
  return {ids, valid};
}

std::uint64_t prompt_seed(const GenerationRequest& request, std::size_t p) {
  return request.prompt_seeds.empty() ? derive_seed(request.seed, p) : request.prompt_seeds[p];
}

}  // namespace

void validate_request(const policy::LlamaForCausalLM& model, const GenerationRequest& request, const GenerationHooks& hooks) {
  const auto& config = model->config();
  auto fail = [](const std::string& message) { throw std::invalid_argument("generate: " + message); };
  if (request.samples_per_prompt < 1) fail("samples_per_prompt must be at least 1");
  if (request.max_new_tokens < 0) fail("max_new_tokens must not be negative");
  if (!request.prompt_seeds.empty() && request.prompt_seeds.size() != request.prompts.size()) {
    fail(fmt::format("{} prompt seeds for {} prompts", request.prompt_seeds.size(), request.prompts.size()));
  }
  validate_sampling(request.sampling);
  if (!request.stop_strings.empty() && hooks.tokenizer == nullptr) fail("stop strings need a tokenizer to decode with");
  for (const auto& stop : request.stop_strings) {
    if (stop.empty()) fail("stop strings must not be empty");
  }
  if (!request.prompt_labels.empty() && request.prompt_labels.size() != request.prompts.size()) {
    fail(fmt::format("{} prompt labels for {} prompts", request.prompt_labels.size(), request.prompts.size()));
  }
  for (std::size_t i = 0; i < request.prompts.size(); ++i) {
    const auto& prompt = request.prompts[i];
    const auto p = request.prompt_labels.empty() ? static_cast<std::int64_t>(i) : request.prompt_labels[i];
    if (prompt.empty()) fail(fmt::format("prompt {} is empty", p));
    const auto length = static_cast<std::int64_t>(prompt.size());
    if (length + request.max_new_tokens > config.max_position_embeddings) {
      fail(fmt::format("prompt {} has {} tokens; with max_new_tokens = {} that exceeds max_position_embeddings = {}", p, length,
                       request.max_new_tokens, config.max_position_embeddings));
    }
    for (std::size_t t = 0; t < prompt.size(); ++t) {
      if (prompt[t] < 0 || prompt[t] >= config.vocab_size) {
        fail(fmt::format("prompt {}: token {} at position {} is outside the vocabulary of {}", p, prompt[t], t, config.vocab_size));
      }
    }
  }
}

namespace {

// One batch on the calling thread (validated by generate()).
GenerationResult generate_batch(policy::LlamaForCausalLM& model, const GenerationRequest& request, const GenerationHooks& hooks) {
  const auto start = std::chrono::steady_clock::now();
  torch::InferenceMode inference;
  const auto device = model->device();
  const auto num_prompts = static_cast<std::int64_t>(request.prompts.size());
  const auto group = request.samples_per_prompt;
  const auto total_rows = num_prompts * group;
  GenerationResult result;
  result.completions.resize(static_cast<std::size_t>(total_rows));
  for (std::int64_t row = 0; row < total_rows; ++row) {
    result.completions[static_cast<std::size_t>(row)].prompt_index = row / group;
    result.completions[static_cast<std::size_t>(row)].sample_index = row % group;
  }
  std::vector<std::int64_t> unfinished_in_group(static_cast<std::size_t>(num_prompts), group);
  auto finish_row = [&](std::int64_t row) {
    const auto p = row / group;
    if (--unfinished_in_group[static_cast<std::size_t>(p)] == 0 && hooks.on_group_finished) {
      hooks.on_group_finished(p, std::span<const Completion>(result.completions).subspan(static_cast<std::size_t>(p * group),
                                                                                             static_cast<std::size_t>(group)));
    }
  };
  if (num_prompts == 0) return result;
  if (request.max_new_tokens == 0) {
    for (std::int64_t row = 0; row < total_rows; ++row) finish_row(row);
    return result;
  }
  std::optional<StopStringMatcher> stop_strings;
  if (!request.stop_strings.empty()) stop_strings.emplace(request.stop_strings, *hooks.tokenizer);

  // Prefill each prompt once, then repeat its cache rows for the G samples of its group.
  const auto prompts = left_pad(request.prompts);
  const auto prompt_width = prompts.ids.size(1);
  const auto capacity = prompt_width + request.max_new_tokens;
  auto cache = model->make_cache(num_prompts, capacity);
  const auto prompt_valid = prompts.valid.to(device);
  // Only the last prompt position's logits are needed: projecting every position through a 150k vocabulary would
  // cost as much as tens of decode steps.
  const auto prompt_hidden = model->hidden_states(prompts.ids.to(device), policy::positions_from_valid(prompt_valid),
                                                  policy::causal_padding_mask(prompt_valid, prompt_width), &cache);
  auto logits = model->logits(prompt_hidden.select(1, prompt_width - 1));  // [P, V]
  const auto expand = torch::arange(num_prompts, torch::TensorOptions().dtype(torch::kInt64).device(device)).repeat_interleave(group);
  cache.select_rows(expand);
  logits = logits.index_select(0, expand);
  // valid [B, capacity]: which key positions hold real tokens; decode steps fill one column each.
  auto valid = torch::zeros({total_rows, capacity}, torch::TensorOptions().dtype(torch::kBool).device(device));
  valid.narrow(1, 0, prompt_width).copy_(prompt_valid.index_select(0, expand));
  auto next_position = valid.sum(1).to(torch::kInt64);  // [B] position id of the next token

  // rows[i] = index into result.completions of batch row i, or -1 for a row that finished and waits for the next
  // compaction (its further tokens are discarded). row_seeds[i] = that row's random stream.
  std::vector<std::int64_t> rows(static_cast<std::size_t>(total_rows));
  std::vector<std::uint64_t> row_seeds(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    rows[i] = static_cast<std::int64_t>(i);
    row_seeds[i] = derive_seed(prompt_seed(request, i / static_cast<std::size_t>(group)), i % static_cast<std::size_t>(group));
  }
  const auto stop_ids = torch::tensor(request.stop_token_ids, torch::kInt64);

  for (std::int64_t step = 0; step < request.max_new_tokens; ++step) {
    if (hooks.cancelled && hooks.cancelled()) throw GenerationCancelled();
    // Sampling runs on the CPU so that a run is reproducible on any device.
    const auto sampled = sample_tokens(logits.to(torch::kCPU), request.sampling, row_seeds, static_cast<std::uint64_t>(step));
    const auto stopped = torch::isin(sampled.tokens, stop_ids);
    const auto tokens_a = sampled.tokens.accessor<std::int64_t, 1>();
    const auto logprobs_a = sampled.logprobs.accessor<float, 1>();
    const auto stopped_a = stopped.accessor<bool, 1>();
    const bool last_step = step + 1 == request.max_new_tokens;
    std::vector<std::int64_t> live;  // batch rows still generating after this step
    for (std::size_t i = 0; i < rows.size(); ++i) {
      if (rows[i] < 0) continue;
      const auto b = static_cast<std::int64_t>(i);
      auto& completion = result.completions[static_cast<std::size_t>(rows[i])];
      completion.tokens.push_back(tokens_a[b]);
      completion.logprobs.push_back(logprobs_a[b]);
      ++result.generated_tokens;
      bool done = stopped_a[b];
      if (!done && stop_strings) {
        if (const auto matched = stop_strings->match(completion.tokens)) {
          completion.stop_string = stop_strings->strings()[*matched];
          done = true;
        }
      }
      if (done) completion.finish = FinishReason::kStop;
      if (done || last_step) {
        finish_row(rows[i]);
        rows[i] = -1;
      } else {
        live.push_back(b);
      }
    }
    if (live.empty()) break;

    auto next_tokens = sampled.tokens.to(device);
    const auto finished_rows = static_cast<double>(rows.size() - live.size());
    if (finished_rows >= kCompactWhenFinishedFraction * static_cast<double>(rows.size())) {
      const auto keep_cpu = torch::tensor(live, torch::kInt64);
      const auto keep = keep_cpu.to(device);
      cache.select_rows(keep);
      valid = valid.index_select(0, keep);
      next_position = next_position.index_select(0, keep);
      next_tokens = next_tokens.index_select(0, keep);
      std::vector<std::int64_t> kept_rows;
      std::vector<std::uint64_t> kept_seeds;
      for (auto b : live) {
        kept_rows.push_back(rows[static_cast<std::size_t>(b)]);
        kept_seeds.push_back(row_seeds[static_cast<std::size_t>(b)]);
      }
      rows = std::move(kept_rows);
      row_seeds = std::move(kept_seeds);
    }
    // One query per row at key position cache.length: it sees every real key before it and itself, so the mask is
    // the valid columns so far.
    const auto keys = cache.length + 1;
    valid.select(1, cache.length).fill_(true);
    const auto mask = valid.narrow(1, 0, keys).unsqueeze(1).unsqueeze(1);  // [B, 1, 1, S]
    logits = model->forward(next_tokens.unsqueeze(1), next_position.unsqueeze(1), mask, &cache).select(1, 0);
    next_position = next_position + 1;
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

// How many shards to split a batch into: independent shards of whole groups, one thread each, for a small model on
// the CPU, whose decode step is a few hundred tiny operations (kernels/cpu_workers.h; measured on the embedded
// 0.8M-parameter policy: 2 intra-op threads at batch 64 are no faster than 1).
int shard_count(const policy::LlamaForCausalLM& model, const GenerationRequest& request) {
  // At least 8 rows per shard: below that a thread's fixed cost per step outweighs what it shares.
  const auto rows = static_cast<std::int64_t>(request.prompts.size()) * request.samples_per_prompt;
  return kernels::independent_cpu_workers(model->device(), model->config().hidden_size,
                                          std::min(static_cast<std::int64_t>(request.prompts.size()), rows / 8));
}

}  // namespace

GenerationResult generate(policy::LlamaForCausalLM& model, const GenerationRequest& request, const GenerationHooks& hooks) {
  validate_request(model, request, hooks);
  const int shards = shard_count(model, request);
  if (shards <= 1) return generate_batch(model, request, hooks);
  const auto start = std::chrono::steady_clock::now();
  const auto num_prompts = request.prompts.size();
  const auto group = static_cast<std::size_t>(request.samples_per_prompt);
  // Contiguous ranges of prompts; each keeps its prompts' own seeds and labels, so the samples are those of one batch.
  std::vector<GenerationRequest> parts(static_cast<std::size_t>(shards));
  std::vector<std::size_t> first(static_cast<std::size_t>(shards) + 1, 0);
  for (int s = 0; s < shards; ++s) first[static_cast<std::size_t>(s) + 1] = num_prompts * static_cast<std::size_t>(s + 1) / static_cast<std::size_t>(shards);
  for (std::size_t s = 0; s < parts.size(); ++s) {
    auto& part = parts[s];
    part.samples_per_prompt = request.samples_per_prompt;
    part.max_new_tokens = request.max_new_tokens;
    part.sampling = request.sampling;
    part.stop_token_ids = request.stop_token_ids;
    part.stop_strings = request.stop_strings;
    for (auto p = first[s]; p < first[s + 1]; ++p) {
      part.prompts.push_back(request.prompts[p]);
      part.prompt_seeds.push_back(prompt_seed(request, p));
      part.prompt_labels.push_back(request.prompt_labels.empty() ? static_cast<std::int64_t>(p) : request.prompt_labels[p]);
    }
  }
  // The hooks are called from the shard threads one at a time, with the prompt's index in the whole request.
  std::mutex hooks_mutex;
  std::vector<GenerationResult> results(parts.size());
  kernels::run_on_cpu_workers(shards, shards, [&](std::int64_t shard, int) {
    const auto s = static_cast<std::size_t>(shard);
    GenerationHooks shard_hooks;
    shard_hooks.tokenizer = hooks.tokenizer;
    if (hooks.on_group_finished) {
      shard_hooks.on_group_finished = [&, s](std::int64_t p, std::span<const Completion> completions) {
        std::vector<Completion> renumbered(completions.begin(), completions.end());
        for (auto& c : renumbered) c.prompt_index = static_cast<std::int64_t>(first[s]) + p;
        const std::lock_guard lock(hooks_mutex);
        hooks.on_group_finished(static_cast<std::int64_t>(first[s]) + p, renumbered);
      };
    }
    if (hooks.cancelled) {
      shard_hooks.cancelled = [&] {
        const std::lock_guard lock(hooks_mutex);
        return hooks.cancelled();
      };
    }
    results[s] = generate_batch(model, parts[s], shard_hooks);
  });
  GenerationResult merged;
  merged.completions.reserve(num_prompts * group);
  for (std::size_t s = 0; s < results.size(); ++s) {
    for (auto& c : results[s].completions) {
      c.prompt_index += static_cast<std::int64_t>(first[s]);
      merged.completions.push_back(std::move(c));
    }
    merged.generated_tokens += results[s].generated_tokens;
  }
  merged.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return merged;
}

}  // namespace grpo::rollout
