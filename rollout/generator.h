// Batched generation over a preallocated KV cache: the prompts are prefilled once, each prefill shared by the G
// samples of its group, and every sequence stops on its own (a stop token or max_new_tokens); finished rows are
// compacted out of the batch so they stop costing compute.
//
// Shapes: P prompts, G samples per prompt, B = P·G rows, S cache positions, V vocabulary.
#pragma once

#include <cstdint>
#include <vector>

#include "policy/llama_model.h"
#include "rollout/sampler.h"

namespace grpo::rollout {

struct GenerationRequest {
  std::vector<std::vector<std::int64_t>> prompts;  // P prompts as token ids (each non-empty)
  std::int64_t samples_per_prompt = 1;             // G
  std::int64_t max_new_tokens = 64;
  SamplingParams sampling;
  std::vector<std::int64_t> stop_token_ids;  // e.g. EOS; the stop token is kept as the completion's last token
  std::uint64_t seed = 0;
};

enum class FinishReason { kStop, kLength };

struct Completion {
  std::int64_t prompt_index = 0;
  std::vector<std::int64_t> tokens;
  std::vector<float> logprobs;  // one per token, under the sampling policy (see SampledTokens::logprobs)
  FinishReason finish = FinishReason::kLength;
};

struct GenerationResult {
  std::vector<Completion> completions;  // prompt-major: completions[p·G + g]
  std::int64_t generated_tokens = 0;
  double seconds = 0.0;
};

GenerationResult generate(policy::LlamaForCausalLM& model, const GenerationRequest& request);

}  // namespace grpo::rollout
