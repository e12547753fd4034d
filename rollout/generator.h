// The rollout engine: batched generation over a preallocated KV cache. The prompts are prefilled once, each prefill
// shared by the G samples of its group; every sequence stops on its own (a stop token, a stop string that may span
// tokens, or max_new_tokens), and finished rows are compacted out of the batch so they stop costing compute. Each
// sample draws from its own counter-based random stream (rollout/sampler.h), so the tokens of a prompt do not depend
// on the batch it was generated in.
//
// Shapes: P prompts, G samples per prompt, B = P·G rows, S cache positions, V vocabulary.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "policy/llama_model.h"
#include "policy/tokenizer.h"
#include "rollout/sampler.h"

namespace grpo::rollout {

struct GenerationRequest {
  std::vector<std::vector<std::int64_t>> prompts;  // P prompts as token ids (each non-empty)
  std::int64_t samples_per_prompt = 1;             // G
  std::int64_t max_new_tokens = 64;
  SamplingParams sampling;
  std::vector<std::int64_t> stop_token_ids;  // e.g. EOS; the stop token is kept as the completion's last token
  // Text that ends a completion when it appears in the decoded output, across token boundaries (needs
  // GenerationHooks::tokenizer). The completion keeps every token up to the one that completed the string.
  std::vector<std::string> stop_strings;
  // Prompt p samples from seed prompt_seeds[p] when given (one per prompt), else from derive_seed(seed, p); sample g
  // of prompt p from derive_seed(prompt seed, g).
  std::uint64_t seed = 0;
  std::vector<std::uint64_t> prompt_seeds;
  // How error messages number the prompts (one per prompt; empty: 0, 1, ...): a rollout worker serving part of a
  // batch names them by the trainer's indices.
  std::vector<std::int64_t> prompt_labels;
};

enum class FinishReason { kStop, kLength };

struct Completion {
  std::int64_t prompt_index = 0;
  std::int64_t sample_index = 0;
  std::vector<std::int64_t> tokens;
  std::vector<float> logprobs;  // one per token, under the sampling policy (see SampledTokens::logprobs)
  FinishReason finish = FinishReason::kLength;
  std::string stop_string;          // the stop string that ended it, when one did
  std::int64_t policy_version = 0;  // the weights that sampled it (set by the rollout backend)
};

struct GenerationResult {
  std::vector<Completion> completions;  // prompt-major: completions[p·G + g]
  std::int64_t generated_tokens = 0;
  double seconds = 0.0;
};

// Thrown by generate() when GenerationHooks::cancelled returns true.
class GenerationCancelled : public std::runtime_error {
 public:
  GenerationCancelled() : std::runtime_error("generation cancelled") {}
};

struct GenerationHooks {
  const policy::Tokenizer* tokenizer = nullptr;  // decodes for stop strings
  // Called once per prompt, as soon as its G samples have all finished (completions[p·G .. p·G + G)): a rollout
  // worker streams each group back while the others are still generating.
  std::function<void(std::int64_t prompt_index, std::span<const Completion> group)> on_group_finished;
  // Polled between decode steps; true abandons the generation (GenerationCancelled).
  std::function<bool()> cancelled;
};

// Throws std::invalid_argument naming the prompt and the problem for a request the model cannot serve (empty or
// out-of-vocabulary prompt, too long for max_position_embeddings, bad sampling parameters, stop strings without a
// tokenizer): a request from the network is checked before any work starts.
void validate_request(const policy::LlamaForCausalLM& model, const GenerationRequest& request, const GenerationHooks& hooks = {});

GenerationResult generate(policy::LlamaForCausalLM& model, const GenerationRequest& request, const GenerationHooks& hooks = {});

}  // namespace grpo::rollout
