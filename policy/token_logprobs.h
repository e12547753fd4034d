// Teacher-forced log-probabilities of whole token sequences under a model, in float32, in memory-bounded batches:
// what `grpo score` prints and what parity checks against transformers compare.
#pragma once

#include <cstdint>
#include <vector>

#include "policy/llama_model.h"

namespace grpo::policy {

struct TokenLogprobOptions {
  // Sequences are grouped (by length) into left-padded batches of at most this many positions; a longer sequence
  // goes alone.
  std::int64_t max_batch_tokens = 4096;
  // Logits are materialised for this many positions at a time ([positions, V] float32), never for a whole batch.
  std::int64_t logits_chunk = 256;
};

// out[i][t] = log p(sequences[i][t + 1] | sequences[i][0..t]): one value fewer than the sequence has tokens (none
// for a sequence of one token). Throws std::invalid_argument for an empty sequence, an id outside the vocabulary,
// or a sequence longer than max_position_embeddings, naming the sequence index.
std::vector<std::vector<float>> token_logprobs(LlamaForCausalLM& model, const std::vector<std::vector<std::int64_t>>& sequences,
                                               const TokenLogprobOptions& options = {});

}  // namespace grpo::policy
