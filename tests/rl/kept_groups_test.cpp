// Dynamic sampling over data-parallel ranks (rl/kept_groups.h): ranks as threads on a real Gloo group keep the
// groups one process keeps, in its order, each rank ending with its block of them, and groups travel between ranks
// bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "rl/kept_groups.h"
#include "tests/testing/rank_threads.h"

namespace grpo::rl {
namespace {

constexpr std::int64_t kGroupSize = 2;
constexpr std::int64_t kPromptsPerRound = 6;

// Round `round`'s prompts [first, last), scored: a group has signal where `signal[p]` (its two rewards differ).
// Every field names the round and prompt, so that a group in the wrong place shows.
StepData round_block(int round, std::int64_t first, std::int64_t last, const std::vector<int>& signal) {
  StepData data;
  data.group_size = kGroupSize;
  data.global_first = first;
  data.global_prompts = kPromptsPerRound;
  std::vector<double> rewards;
  for (std::int64_t p = first; p < last; ++p) {
    const auto name = fmt::format("round {} prompt {}", round, p);
    data.problems.push_back({name, fmt::format("answer {}", p), "accuracy", fmt::format("{{\"p\":{}}}", p)});
    data.prompt_texts.push_back("Q: " + name);
    for (std::int64_t g = 0; g < kGroupSize; ++g) {
      data.prompt_ids.push_back({round, p});
      rollout::Completion c;
      c.prompt_index = p - first;
      c.sample_index = g;
      c.tokens = {100 + round, p, g};
      // Values a decimal round trip would not keep: the logprobs and rewards must arrive bit for bit.
      c.logprobs = {-1.0f / 3.0f * static_cast<float>(p + 1), std::numeric_limits<float>::denorm_min(), -0.0f};
      c.finish = g == 0 ? rollout::FinishReason::kStop : rollout::FinishReason::kLength;
      c.stop_string = g == 0 ? "</answer>" : "";
      c.policy_version = round;
      data.generation.completions.push_back(std::move(c));
      rewards.push_back(signal[static_cast<std::size_t>(p)] && g == 1 ? 0.1 * static_cast<double>(p + 1) : 1.0 / 7.0);
    }
  }
  const auto P = last - first;
  data.rewards = torch::tensor(rewards, torch::kFloat64).view({P, kGroupSize});
  data.scorable = torch::ones({P, kGroupSize}, torch::kBool);
  data.component_means = {{"accuracy", static_cast<double>(first)}};
  data.component_counts = {{"accuracy", 2.0 * static_cast<double>(P)}};
  return data;
}

// Two rounds. Kept over the step, in order: r0p0 r0p1 r0p3 r1p0 r1p1 r1p5; the step wants five. Over three ranks
// (two prompts each) rank 0 samples four of the five, so groups must move to ranks 1 and 2, and rank 1 receives a
// group that goes before its own.
const std::vector<std::vector<int>> kSignal = {{1, 1, 0, 1, 0, 0}, {1, 1, 0, 0, 0, 1}};
const std::vector<std::string> kExpected = {"round 0 prompt 0", "round 0 prompt 1", "round 0 prompt 3", "round 1 prompt 0", "round 1 prompt 1"};
constexpr std::int64_t kWanted = 5;

StepData keep_on(RankGroup& ranks) {
  const auto per_rank = kPromptsPerRound / ranks.world_size();
  const auto first = ranks.rank() * per_rank;
  KeptGroups kept;
  for (std::size_t round = 0; round < kSignal.size(); ++round) {
    kept.add_round(ranks, round_block(static_cast<int>(round), first, first + per_rank, kSignal[round]), "round");
  }
  EXPECT_EQ(kept.total(), 6);
  return std::move(kept).share_out(ranks, kWanted, "share out");
}

std::vector<std::string> questions(const StepData& data) {
  std::vector<std::string> out;
  for (const auto& p : data.problems) out.push_back(p.question);
  return out;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof(float)) == 0; }

// Every field of `got` against the group `round_block` made, which its question names.
void expect_groups_as_made(const StepData& got) {
  ASSERT_EQ(got.rewards.size(0), got.prompts());
  ASSERT_EQ(static_cast<std::int64_t>(got.generation.completions.size()), got.samples());
  ASSERT_EQ(static_cast<std::int64_t>(got.prompt_ids.size()), got.samples());
  for (std::int64_t i = 0; i < got.prompts(); ++i) {
    int round = 0;
    std::int64_t p = 0;
    ASSERT_EQ(std::sscanf(got.problems[static_cast<std::size_t>(i)].question.c_str(), "round %d prompt %ld", &round, &p), 2);
    const auto made = round_block(round, p, p + 1, kSignal[static_cast<std::size_t>(round)]);
    EXPECT_EQ(got.problems[static_cast<std::size_t>(i)].reference, made.problems[0].reference);
    EXPECT_EQ(got.problems[static_cast<std::size_t>(i)].metadata, made.problems[0].metadata);
    EXPECT_EQ(got.prompt_texts[static_cast<std::size_t>(i)], made.prompt_texts[0]);
    EXPECT_TRUE(torch::equal(got.rewards[i], made.rewards[0])) << i;
    EXPECT_TRUE(torch::equal(got.scorable[i], made.scorable[0])) << i;
    for (std::int64_t g = 0; g < kGroupSize; ++g) {
      const auto& a = got.generation.completions[static_cast<std::size_t>(i * kGroupSize + g)];
      const auto& b = made.generation.completions[static_cast<std::size_t>(g)];
      EXPECT_EQ(got.prompt_ids[static_cast<std::size_t>(i * kGroupSize + g)], made.prompt_ids[static_cast<std::size_t>(g)]);
      EXPECT_EQ(a.tokens, b.tokens);
      ASSERT_EQ(a.logprobs.size(), b.logprobs.size());
      for (std::size_t t = 0; t < a.logprobs.size(); ++t) EXPECT_TRUE(same_bits(a.logprobs[t], b.logprobs[t])) << a.logprobs[t];
      EXPECT_EQ(a.finish, b.finish);
      EXPECT_EQ(a.stop_string, b.stop_string);
      EXPECT_EQ(a.policy_version, b.policy_version);
      EXPECT_EQ(a.sample_index, b.sample_index);
    }
  }
}

TEST(KeptGroups, OneProcessKeepsTheGroupsWithSignalRoundByRound) {
  const auto group = single_rank_group();
  const auto kept = keep_on(*group);
  EXPECT_EQ(questions(kept), kExpected);
  EXPECT_EQ(kept.global_first, 0);
  EXPECT_EQ(kept.global_prompts, kWanted);
  EXPECT_EQ(kept.component_means.at("accuracy"), 0.0) << "the first round's means";
  expect_groups_as_made(kept);
}

TEST(KeptGroups, RanksEndWithTheirBlocksOfWhatOneProcessKeeps) {
  const auto blocks = on_ranks(3, [](int, RankGroup& group) { return keep_on(group); });
  // Blocks of 5 over 3 ranks: [0, 1), [1, 3), [3, 5).
  const std::vector<std::vector<std::string>> expected = {{kExpected[0]}, {kExpected[1], kExpected[2]}, {kExpected[3], kExpected[4]}};
  for (int r = 0; r < 3; ++r) {
    const auto& block = blocks[static_cast<std::size_t>(r)];
    EXPECT_EQ(questions(block), expected[static_cast<std::size_t>(r)]) << "rank " << r;
    EXPECT_EQ(block.global_first, block_of_rank(kWanted, r, 3).first);
    EXPECT_EQ(block.global_prompts, kWanted);
    EXPECT_EQ(block.component_means.at("accuracy"), 2.0 * r) << "each rank's own first round";
    expect_groups_as_made(block);
  }
}

TEST(KeptGroups, ARankCanEndWithAnEmptyBlock) {
  // One group kept over two ranks: rank 1 gets it (from rank 0), rank 0 an empty block with [0, G] tensors.
  const auto blocks = on_ranks(2, [](int, RankGroup& group) {
    const auto first = group.rank() * 3;
    KeptGroups kept;
    kept.add_round(group, round_block(0, first, first + 3, {1, 0, 0, 0, 0, 0}), "round");
    return std::move(kept).share_out(group, 1, "share out");
  });
  EXPECT_EQ(blocks[0].prompts(), 0);
  EXPECT_EQ(blocks[0].rewards.sizes(), (std::vector<std::int64_t>{0, kGroupSize}));
  EXPECT_EQ(blocks[0].global_first, 0);
  EXPECT_EQ(questions(blocks[1]), std::vector<std::string>{"round 0 prompt 0"});
  EXPECT_EQ(blocks[1].global_first, 0);
  expect_groups_as_made(blocks[1]);
}

TEST(KeptGroups, BlocksAreContiguousAndAsEvenAsTheyCanBe) {
  for (const std::int64_t count : {0, 1, 5, 8, 9}) {
    std::int64_t next = 0;
    for (int r = 0; r < 4; ++r) {
      const auto [first, last] = block_of_rank(count, r, 4);
      EXPECT_EQ(first, next);
      EXPECT_LE(last - first, (count + 3) / 4);
      EXPECT_GE(last - first, count / 4);
      next = last;
    }
    EXPECT_EQ(next, count);
  }
}

TEST(KeptGroups, EncodedGroupsComeBackAsTheyWereAndGarbageIsAnError) {
  const auto made = round_block(0, 0, 3, kSignal[0]);
  const auto bytes = encode_groups(made, {2, 0}, {7, 8, 9});
  StepData back;
  std::vector<std::int64_t> places;
  decode_groups(bytes, back, places);
  EXPECT_EQ(places, (std::vector<std::int64_t>{9, 7}));
  EXPECT_EQ(questions(back), (std::vector<std::string>{"round 0 prompt 2", "round 0 prompt 0"}));
  expect_groups_as_made(back);
  EXPECT_THROW(decode_groups("not cbor at all", back, places), std::runtime_error);
  EXPECT_THROW(decode_groups(bytes.substr(0, bytes.size() / 2), back, places), std::runtime_error);
  StepData other_size;
  other_size.group_size = 4;
  EXPECT_THROW(decode_groups(bytes, other_size, places), std::runtime_error);
}

}  // namespace
}  // namespace grpo::rl
