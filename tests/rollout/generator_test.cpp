// Batched generation: shared prefills, left padding and compaction give exactly the tokens of one-at-a-time
// generation; stop tokens, max_new_tokens and seeds behave.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include "policy/char_tokenizer.h"
#include "rollout/generator.h"
#include "tests/testing/tiny_model.h"

namespace grpo::rollout {
namespace {

// Peaked distributions (weights scaled by 20): varied greedy continuations.
policy::LlamaForCausalLM tiny_model() { return fixtures::tiny_model(); }

const std::vector<std::vector<std::int64_t>> kPrompts = {{1, 2, 3}, {4}, {5, 6, 7, 8, 9}, {10, 3}, {2, 2, 2, 2}, {7, 1}};

GenerationRequest greedy(std::vector<std::vector<std::int64_t>> prompts, std::int64_t group, std::vector<std::int64_t> stop = {}) {
  GenerationRequest request;
  request.prompts = std::move(prompts);
  request.samples_per_prompt = group;
  request.max_new_tokens = 12;
  request.sampling.temperature = 0.0;
  request.stop_token_ids = std::move(stop);
  return request;
}

TEST(Generator, BatchedWithSharedPrefillEqualsOneAtATime) {
  auto model = tiny_model();
  const auto batched = generate(model, greedy(kPrompts, 3));
  ASSERT_EQ(batched.completions.size(), kPrompts.size() * 3);
  for (std::size_t p = 0; p < kPrompts.size(); ++p) {
    const auto alone = generate(model, greedy({kPrompts[p]}, 1));
    for (std::size_t g = 0; g < 3; ++g) {
      const auto& completion = batched.completions[p * 3 + g];
      EXPECT_EQ(completion.prompt_index, static_cast<std::int64_t>(p));
      EXPECT_EQ(completion.tokens, alone.completions[0].tokens) << "prompt " << p << " sample " << g;
      ASSERT_EQ(completion.logprobs.size(), completion.tokens.size());
      // The same tokens exactly; log-probs to float32 round-off. A GEMM rounds differently with its number of rows
      // (AVX-512 kernels block by rows), and the weights scaled by 20 make the logits large, so a last-bit
      // difference of a logit shows in the fourth decimal of a log-prob (1.1e-4 seen on a Sapphire Rapids core).
      for (std::size_t t = 0; t < completion.tokens.size(); ++t) {
        EXPECT_NEAR(completion.logprobs[t], alone.completions[0].logprobs[t], 5e-4);
      }
    }
  }
}

TEST(Generator, EachSequenceStopsOnItsOwnAndCompactionKeepsTheRest) {
  auto model = tiny_model();
  // Without stop tokens, find a token that some greedy continuations emit early and others late or never.
  const auto free_run = generate(model, greedy(kPrompts, 1));
  std::vector<int> first_seen(11, 1000);
  for (const auto& c : free_run.completions) {
    for (std::size_t t = 0; t < c.tokens.size(); ++t) first_seen[static_cast<std::size_t>(c.tokens[t])] = std::min<int>(first_seen[static_cast<std::size_t>(c.tokens[t])], static_cast<int>(t));
  }
  std::int64_t stop = -1;
  for (std::int64_t token = 0; token < 11; ++token) {
    int rows_with = 0;
    for (const auto& c : free_run.completions) rows_with += std::count(c.tokens.begin(), c.tokens.end(), token) > 0;
    if (rows_with >= 2 && rows_with < static_cast<int>(kPrompts.size())) stop = token;
  }
  ASSERT_GE(stop, 0) << "the fixture model should emit some token in only some rows";
  const auto stopped = generate(model, greedy(kPrompts, 2, {stop}));
  int stopped_rows = 0;
  for (std::size_t p = 0; p < kPrompts.size(); ++p) {
    auto expected = free_run.completions[p].tokens;
    const auto at = std::find(expected.begin(), expected.end(), stop);
    const bool stops = at != expected.end();
    if (stops) expected.erase(at + 1, expected.end());
    for (std::size_t g = 0; g < 2; ++g) {
      const auto& c = stopped.completions[p * 2 + g];
      EXPECT_EQ(c.tokens, expected) << "prompt " << p;
      EXPECT_EQ(c.finish, stops ? FinishReason::kStop : FinishReason::kLength);
      stopped_rows += stops;
    }
  }
  EXPECT_GE(stopped_rows, 4);
}

TEST(Generator, MaxNewTokensAndTokenCount) {
  auto model = tiny_model();
  auto request = greedy(kPrompts, 2);
  request.max_new_tokens = 5;
  const auto result = generate(model, request);
  std::int64_t total = 0;
  for (const auto& c : result.completions) {
    EXPECT_EQ(c.tokens.size(), 5u);
    EXPECT_EQ(c.finish, FinishReason::kLength);
    total += static_cast<std::int64_t>(c.tokens.size());
  }
  EXPECT_EQ(result.generated_tokens, total);
}

TEST(Generator, SamplingIsReproducibleBySeedAndVariesAcrossSeeds) {
  auto model = tiny_model();
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.div_(20.0);  // flatter distributions so that samples differ
  }
  auto request = greedy(kPrompts, 4);
  request.sampling.temperature = 1.0;
  request.seed = 11;
  const auto a = generate(model, request);
  const auto b = generate(model, request);
  request.seed = 12;
  const auto c = generate(model, request);
  bool any_difference = false;
  for (std::size_t i = 0; i < a.completions.size(); ++i) {
    EXPECT_EQ(a.completions[i].tokens, b.completions[i].tokens);
    any_difference |= a.completions[i].tokens != c.completions[i].tokens;
  }
  EXPECT_TRUE(any_difference);
  // Samples within a group differ too (G independent draws from one shared prefill).
  EXPECT_NE(a.completions[0].tokens, a.completions[1].tokens);
}

TEST(Generator, SamplesOfAPromptDoNotDependOnItsBatch) {
  // Each sample draws from its own counter-based stream: a prompt generated alone (with the seed it had in the
  // batch) gets the same tokens as in a batch of six with compaction, so a prompt moved to another worker is
  // sampled the same.
  auto model = tiny_model();
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.div_(20.0);
  }
  auto request = greedy(kPrompts, 3, {4});
  request.sampling.temperature = 1.0;
  request.seed = 21;
  const auto batched = generate(model, request);
  int differing_groups = 0;
  for (std::size_t p = 0; p < kPrompts.size(); ++p) {
    auto alone = greedy({kPrompts[p]}, 3, {4});
    alone.sampling.temperature = 1.0;
    alone.prompt_seeds = {derive_seed(21, p)};
    const auto single = generate(model, alone);
    for (std::size_t g = 0; g < 3; ++g) {
      EXPECT_EQ(single.completions[g].tokens, batched.completions[p * 3 + g].tokens) << "prompt " << p << " sample " << g;
    }
    differing_groups += single.completions[0].tokens != single.completions[1].tokens;
  }
  EXPECT_GE(differing_groups, 3) << "samples of a group should differ";
}

// The embedded character tokenizer gives ids 3..6 the multi-character tags <think>, </think>, <answer>, </answer>
// and 7..10 the characters ' ', '!', '"', '#': enough for stop strings that span tokens.
TEST(Generator, StopStringsSpanningTokensEndTheCompletionWhereTheStringCompletes) {
  auto model = tiny_model();
  const auto tokenizer = policy::CharTokenizer::make_embedded();
  const auto free_run = generate(model, greedy(kPrompts, 1));
  // Pick a string that crosses a token boundary in some completions: the last two characters of one token's text
  // and the first of the next.
  std::string stop;
  for (const auto& c : free_run.completions) {
    for (std::size_t t = 0; t + 1 < c.tokens.size() && stop.empty(); ++t) {
      const auto a = tokenizer.decode(std::span(c.tokens).subspan(t, 1));
      const auto b = tokenizer.decode(std::span(c.tokens).subspan(t + 1, 1));
      if (a.size() >= 2 && t >= 2) stop = a.substr(a.size() - 2) + b.substr(0, 1);
    }
  }
  ASSERT_FALSE(stop.empty()) << "the fixture should emit a multi-character token";
  auto request = greedy(kPrompts, 2);
  request.stop_strings = {stop};
  GenerationHooks hooks;
  hooks.tokenizer = &tokenizer;
  const auto stopped = generate(model, request, hooks);
  int stopped_rows = 0;
  for (std::size_t p = 0; p < kPrompts.size(); ++p) {
    // Expected, computed by decoding every prefix: the shortest one whose text contains the string.
    auto expected = free_run.completions[p].tokens;
    bool stops = false;
    for (std::size_t k = 1; k <= expected.size(); ++k) {
      if (tokenizer.decode(std::span(expected).first(k)).find(stop) != std::string::npos) {
        expected.resize(k);
        stops = true;
        break;
      }
    }
    for (std::size_t g = 0; g < 2; ++g) {
      const auto& c = stopped.completions[p * 2 + g];
      EXPECT_EQ(c.tokens, expected) << "prompt " << p << " stop '" << stop << "'";
      EXPECT_EQ(c.finish, stops ? FinishReason::kStop : FinishReason::kLength);
      EXPECT_EQ(c.stop_string, stops ? stop : "");
      stopped_rows += stops;
    }
  }
  EXPECT_GE(stopped_rows, 2);
}

// Sets LibTorch's intra-op thread count for a scope.
struct ThreadCount {
  explicit ThreadCount(int n) : saved(at::get_num_threads()) { at::set_num_threads(n); }
  ~ThreadCount() { at::set_num_threads(saved); }
  int saved;
};

TEST(Generator, ShardsOnSeveralThreadsGiveTheSingleBatchResult) {
  // With more than one thread, a small model's batch is split into shards of whole groups generated side by side;
  // every sample must be what the single batch gives.
  auto model = tiny_model();
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.div_(20.0);
  }
  auto request = greedy(kPrompts, 4, {4});
  request.sampling.temperature = 1.0;
  request.seed = 5;
  GenerationResult single, sharded;
  {
    const ThreadCount one(1);
    single = generate(model, request);
  }
  {
    const ThreadCount three(3);
    std::vector<std::int64_t> reported;
    GenerationHooks hooks;
    hooks.on_group_finished = [&](std::int64_t p, std::span<const Completion> group) {
      reported.push_back(p);
      for (const auto& c : group) EXPECT_EQ(c.prompt_index, p);
    };
    sharded = generate(model, request, hooks);
    std::sort(reported.begin(), reported.end());
    EXPECT_EQ(reported, (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5}));
  }
  ASSERT_EQ(single.completions.size(), sharded.completions.size());
  for (std::size_t i = 0; i < single.completions.size(); ++i) {
    EXPECT_EQ(single.completions[i].prompt_index, sharded.completions[i].prompt_index);
    EXPECT_EQ(single.completions[i].sample_index, sharded.completions[i].sample_index);
    EXPECT_EQ(single.completions[i].tokens, sharded.completions[i].tokens) << i;
  }
  EXPECT_EQ(single.generated_tokens, sharded.generated_tokens);
}

TEST(Generator, EachGroupIsReportedOnceWhenAllItsSamplesHaveFinished) {
  const ThreadCount one(1);  // one batch: report order is finishing order
  auto model = tiny_model();
  std::vector<std::int64_t> reported;
  GenerationHooks hooks;
  hooks.on_group_finished = [&](std::int64_t prompt, std::span<const Completion> group) {
    reported.push_back(prompt);
    ASSERT_EQ(group.size(), 3u);
    for (std::size_t g = 0; g < group.size(); ++g) {
      EXPECT_EQ(group[g].prompt_index, prompt);
      EXPECT_EQ(group[g].sample_index, static_cast<std::int64_t>(g));
      EXPECT_FALSE(group[g].tokens.empty());
    }
  };
  const auto result = generate(model, greedy(kPrompts, 3, {4, 7}), hooks);
  auto sorted = reported;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5}));
  // A group is reported in the step its longest sample finishes: report order follows the longest sample's length.
  std::vector<std::size_t> longest;
  for (const auto p : reported) {
    std::size_t length = 0;
    for (std::size_t g = 0; g < 3; ++g) length = std::max(length, result.completions[static_cast<std::size_t>(p) * 3 + g].tokens.size());
    longest.push_back(length);
  }
  EXPECT_TRUE(std::is_sorted(longest.begin(), longest.end()));
  EXPECT_LT(longest.front(), longest.back()) << "the fixture should stop some groups early";
}

TEST(Generator, CancelledBetweenStepsThrows) {
  const ThreadCount one(1);  // one batch, so the polls are counted in one sequence
  auto model = tiny_model();
  int polls = 0;
  GenerationHooks hooks;
  hooks.cancelled = [&] { return ++polls > 3; };
  EXPECT_THROW(generate(model, greedy(kPrompts, 2), hooks), GenerationCancelled);
  EXPECT_EQ(polls, 4);
}

TEST(Generator, RequestsTheModelCannotServeAreRejectedBeforeAnyWork) {
  auto model = tiny_model();
  auto expect_invalid = [&](GenerationRequest request, const std::string& needle, GenerationHooks hooks = {}) {
    try {
      generate(model, request, hooks);
      ADD_FAILURE() << "expected an error containing '" << needle << "'";
    } catch (const std::invalid_argument& error) {
      EXPECT_NE(std::string(error.what()).find(needle), std::string::npos) << error.what();
    }
  };
  expect_invalid(greedy({{1, 2}, {3, 11}}, 1), "prompt 1: token 11 at position 1 is outside the vocabulary of 11");
  expect_invalid(greedy({{1, -2}}, 1), "outside the vocabulary");
  auto too_long = greedy({std::vector<std::int64_t>(60, 1)}, 1);
  expect_invalid(too_long, "exceeds max_position_embeddings = 64");
  auto bad_sampling = greedy({{1}}, 1);
  bad_sampling.sampling.top_p = 2.0;
  expect_invalid(bad_sampling, "top_p");
  auto strings = greedy({{1}}, 1);
  strings.stop_strings = {"ab"};
  expect_invalid(strings, "need a tokenizer");
  auto seeds = greedy({{1}, {2}}, 1);
  seeds.prompt_seeds = {1};
  expect_invalid(seeds, "1 prompt seeds for 2 prompts");
}

TEST(Generator, RejectsEmptyPrompt) {
  auto model = tiny_model();
  EXPECT_THROW(generate(model, greedy({{1}, {}}, 1)), std::invalid_argument);
}

}  // namespace
}  // namespace grpo::rollout
