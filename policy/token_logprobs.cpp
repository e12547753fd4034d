// Batched teacher-forced log-probs (see token_logprobs.h).
#include "policy/token_logprobs.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include <fmt/format.h>

namespace grpo::policy {
namespace {

void check_sequences(const LlamaForCausalLM& model, const std::vector<std::vector<std::int64_t>>& sequences) {
  const auto& config = model->config();
  for (std::size_t i = 0; i < sequences.size(); ++i) {
    const auto& ids = sequences[i];
    if (ids.empty()) throw std::invalid_argument(fmt::format("sequence {} is empty", i));
    if (static_cast<std::int64_t>(ids.size()) > config.max_position_embeddings) {
      throw std::invalid_argument(fmt::format("sequence {} has {} tokens, more than max_position_embeddings = {}", i, ids.size(),
                                              config.max_position_embeddings));
    }
    for (std::size_t t = 0; t < ids.size(); ++t) {
      if (ids[t] < 0 || ids[t] >= config.vocab_size) {
        throw std::invalid_argument(fmt::format("sequence {}: token {} at position {} is outside the vocabulary of {}", i, ids[t], t,
                                                config.vocab_size));
      }
    }
  }
}

// One left-padded batch: rows [B, W] of the given sequences → their per-token log-probs.
void score_batch(LlamaForCausalLM& model, const std::vector<std::vector<std::int64_t>>& sequences, const std::vector<std::size_t>& rows,
                 const TokenLogprobOptions& options, std::vector<std::vector<float>>& out) {
  std::int64_t width = 0;
  for (const auto row : rows) width = std::max<std::int64_t>(width, static_cast<std::int64_t>(sequences[row].size()));
  const auto batch = static_cast<std::int64_t>(rows.size());
  auto ids = torch::zeros({batch, width}, torch::kInt64);
  auto valid = torch::zeros({batch, width}, torch::kBool);
  for (std::int64_t b = 0; b < batch; ++b) {
    const auto& seq = sequences[rows[static_cast<std::size_t>(b)]];
    const auto length = static_cast<std::int64_t>(seq.size());
    ids[b].narrow(0, width - length, length).copy_(torch::tensor(seq, torch::kInt64));
    valid[b].narrow(0, width - length, length).fill_(true);
  }
  const auto device = model->device();
  ids = ids.to(device);
  valid = valid.to(device);
  const auto hidden = model->hidden_states(ids, positions_from_valid(valid), causal_padding_mask(valid, width));  // [B, W, C]
  for (std::int64_t b = 0; b < batch; ++b) {
    const auto& seq = sequences[rows[static_cast<std::size_t>(b)]];
    const auto length = static_cast<std::int64_t>(seq.size());
    auto& values = out[rows[static_cast<std::size_t>(b)]];
    values.reserve(static_cast<std::size_t>(length - 1));
    // Position p predicts token p + 1; the row's real positions are [W − length, W − 1).
    for (std::int64_t begin = width - length; begin < width - 1; begin += options.logits_chunk) {
      const auto count = std::min(options.logits_chunk, width - 1 - begin);
      const auto logprobs = torch::log_softmax(model->logits(hidden[b].narrow(0, begin, count)), -1);  // [n, V] float32
      const auto targets = ids[b].narrow(0, begin + 1, count).unsqueeze(1);
      const auto picked = logprobs.gather(1, targets).squeeze(1).to(torch::kCPU).contiguous();
      const auto* data = picked.data_ptr<float>();
      values.insert(values.end(), data, data + count);
    }
  }
}

}  // namespace

std::vector<std::vector<float>> token_logprobs(LlamaForCausalLM& model, const std::vector<std::vector<std::int64_t>>& sequences,
                                               const TokenLogprobOptions& options) {
  if (options.max_batch_tokens < 1 || options.logits_chunk < 1) {
    throw std::invalid_argument("token_logprobs: max_batch_tokens and logits_chunk must be positive");
  }
  check_sequences(model, sequences);
  torch::NoGradGuard no_grad;
  std::vector<std::vector<float>> out(sequences.size());
  // Longest first, so that each batch pads little and its width is set by its first row.
  std::vector<std::size_t> order(sequences.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return sequences[a].size() > sequences[b].size(); });
  std::vector<std::size_t> rows;
  std::int64_t width = 0;
  for (const auto index : order) {
    const auto length = static_cast<std::int64_t>(sequences[index].size());
    if (!rows.empty() && (static_cast<std::int64_t>(rows.size()) + 1) * width > options.max_batch_tokens) {
      score_batch(model, sequences, rows, options, out);
      rows.clear();
    }
    if (rows.empty()) width = length;
    rows.push_back(index);
  }
  if (!rows.empty()) score_batch(model, sequences, rows, options, out);
  return out;
}

}  // namespace grpo::policy
