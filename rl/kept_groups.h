// DAPO's dynamic sampling over data-parallel ranks. A step keeps the groups whose rewards differ and samples more
// rounds of prompts until it has enough. Each rank samples and scores its block of every round's prompts; KeptGroups
// makes the ranks keep the very groups one process would keep, in its order (round by round, prompt by prompt), and
// then shares the kept groups out in contiguous blocks, sending groups to the ranks that sampled fewer than their
// share. So two ranks train on what one process with the same global batch trains on. With one rank nothing moves.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rl/distributed/rank_group.h"
#include "rl/step_data.h"

namespace grpo::rl {

class KeptGroups {
 public:
  // Adds one round. `round` holds this rank's block [round.global_first, round.global_first + round.prompts()) of
  // the round's round.global_prompts prompts, scored; its groups with signal are kept. The ranks agree on how many
  // each kept (one collective), which places each kept group in the step's order.
  void add_round(RankGroup& ranks, StepData&& round, std::string_view label);

  // The groups kept so far, over all ranks.
  std::int64_t total() const { return total_; }

  // The first `count` kept groups (count ≤ total()), shared out: rank r gets the block block_of_rank(count, r, W) of
  // them, in the step's order, with global_first and global_prompts set. Every rank calls it; groups travel (one
  // all-gather) only when some rank holds groups of another's block. The component means are the first round's.
  StepData share_out(RankGroup& ranks, std::int64_t count, std::string_view label) &&;

 private:
  StepData kept_;                     // this rank's kept groups, in the step's order
  std::vector<std::int64_t> places_;  // each one's place among the step's kept groups over all ranks
  std::int64_t total_ = 0;
};

// Rank `rank`'s block [first, last) of `count` groups shared among `world` ranks: contiguous, in rank order, sizes
// differing by at most one (the ranks' equal shares when `count` is a multiple of `world`).
std::pair<std::int64_t, std::int64_t> block_of_rank(std::int64_t count, int rank, int world);

// Groups `indices` of `data`, each with its place, as bytes (CBOR), and back: bit for bit, for moving groups between
// ranks. decode_groups appends to `into` (whose group size must match, or be 0 for an empty StepData) and `places`;
// it throws std::runtime_error for bytes encode_groups did not write.
std::string encode_groups(const StepData& data, const std::vector<std::int64_t>& indices, const std::vector<std::int64_t>& places);
void decode_groups(std::string_view bytes, StepData& into, std::vector<std::int64_t>& places);

}  // namespace grpo::rl
