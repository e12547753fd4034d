// Batched generation: shared prefills, left padding and compaction give exactly the tokens of one-at-a-time
// generation; stop tokens, max_new_tokens and seeds behave.
#include <gtest/gtest.h>

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
      for (std::size_t t = 0; t < completion.tokens.size(); ++t) {
        EXPECT_NEAR(completion.logprobs[t], alone.completions[0].logprobs[t], 1e-4);
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

TEST(Generator, RejectsEmptyPrompt) {
  auto model = tiny_model();
  EXPECT_THROW(generate(model, greedy({{1}, {}}, 1)), std::invalid_argument);
}

}  // namespace
}  // namespace grpo::rollout
