// Teacher-forced completion log-probs: batch layout, agreement with a plain per-sequence forward, and agreement
// with the log-probs the sampler recorded while generating (the "old" log-probs of the GRPO ratio).
#include <gtest/gtest.h>

#include "kernels/autocast.h"
#include "rl/policy_ops.h"
#include "rollout/generator.h"
#include "tests/testing/tiny_model.h"

namespace grpo::rl {
namespace {

policy::LlamaForCausalLM tiny_model() {
  return fixtures::tiny_model({.vocab_size = 13, .num_key_value_heads = 1, .seed = 9, .weight_scale = 4.0});
}

TEST(SequenceBatch, LeftPaddedPromptsRightPaddedCompletions) {
  const auto batch = make_sequence_batch({{5, 6}, {7}}, {{1, 2, 3}, {4}}, /*pad_id=*/0, torch::kCPU);
  EXPECT_EQ(batch.prompt_width, 2);
  EXPECT_TRUE(torch::equal(batch.input_ids, torch::tensor({5L, 6L, 1L, 2L, 3L, 0L, 7L, 4L, 0L, 0L}).view({2, 5})));
  EXPECT_TRUE(torch::equal(batch.valid, torch::tensor({true, true, true, true, true, false, true, true, false, false}).view({2, 5})));
  EXPECT_TRUE(torch::equal(batch.completion_ids, torch::tensor({1L, 2L, 3L, 4L, 0L, 0L}).view({2, 3})));
  EXPECT_TRUE(torch::equal(batch.completion_mask, torch::tensor({1.f, 1.f, 1.f, 1.f, 0.f, 0.f}).view({2, 3})));
  const auto second = batch.rows(torch::tensor({1L}));
  EXPECT_TRUE(torch::equal(second.completion_ids, torch::tensor({4L, 0L, 0L}).view({1, 3})));
}

// Plain computation for one sequence: forward over prompt + completion without padding, log_softmax, pick tokens.
std::vector<double> plain_logprobs(policy::LlamaForCausalLM& model, const std::vector<std::int64_t>& prompt,
                                   const std::vector<std::int64_t>& completion, double temperature) {
  torch::NoGradGuard no_grad;
  std::vector<std::int64_t> ids = prompt;
  ids.insert(ids.end(), completion.begin(), completion.end());
  const auto input = torch::tensor(ids).unsqueeze(0);
  const auto valid = torch::ones_like(input, torch::kBool);
  const auto logits = model->forward(input, policy::positions_from_valid(valid), policy::causal_padding_mask(valid, input.size(1))).squeeze(0);
  const auto logp = (logits.to(torch::kFloat64) / temperature).log_softmax(-1);
  std::vector<double> out;
  for (std::size_t t = 0; t < completion.size(); ++t) {
    out.push_back(logp[static_cast<std::int64_t>(prompt.size() + t - 1)][completion[t]].item<double>());
  }
  return out;
}

TEST(CompletionLogprobs, MatchPlainPerSequenceComputation) {
  auto model = tiny_model();
  const std::vector<std::vector<std::int64_t>> prompts = {{3, 4, 5}, {6}, {7, 8}};
  const std::vector<std::vector<std::int64_t>> completions = {{1, 2}, {9, 10, 11, 12}, {0}};
  const auto batch = make_sequence_batch(prompts, completions, 0, torch::kCPU);
  for (double temperature : {1.0, 0.7}) {
    const auto out = completion_logprobs(model, batch, temperature, /*with_entropy=*/true);
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      const auto expected = plain_logprobs(model, prompts[i], completions[i], temperature);
      for (std::size_t t = 0; t < expected.size(); ++t) {
        EXPECT_NEAR(out.logprobs[static_cast<std::int64_t>(i)][static_cast<std::int64_t>(t)].item<double>(), expected[t], 1e-5);
      }
    }
    // Entropy of a distribution over 13 tokens lies in [0, ln 13].
    EXPECT_GE(out.entropy.min().item<double>(), -1e-6);
    EXPECT_LE(out.entropy.max().item<double>(), std::log(13.0) + 1e-5);
  }
}

TEST(CompletionLogprobs, AgreeWithTheSamplersRecordedLogprobs) {
  // The ratio ρ = exp(logp − old_logp) must be exactly 1 on-policy: peers have shipped silent mismatches here.
  // Tolerance 1e-4: float32 logits, different batch shapes (incremental decode vs one padded forward).
  auto model = tiny_model();
  for (double temperature : {1.0, 0.6}) {
    rollout::GenerationRequest request;
    request.prompts = {{1, 2, 3}, {4}, {5, 6, 7, 8}};
    request.samples_per_prompt = 4;
    request.max_new_tokens = 10;
    request.sampling.temperature = temperature;
    request.stop_token_ids = {0};
    request.seed = 3;
    const auto generated = rollout::generate(model, request);
    std::vector<std::vector<std::int64_t>> prompts, completions;
    for (const auto& c : generated.completions) {
      prompts.push_back(request.prompts[static_cast<std::size_t>(c.prompt_index)]);
      completions.push_back(c.tokens);
    }
    const auto batch = make_sequence_batch(prompts, completions, 0, torch::kCPU);
    torch::NoGradGuard no_grad;
    const auto teacher = completion_logprobs(model, batch, temperature, false).logprobs;
    double worst = 0.0;
    for (std::size_t i = 0; i < completions.size(); ++i) {
      for (std::size_t t = 0; t < completions[i].size(); ++t) {
        worst = std::max(worst, std::abs(teacher[static_cast<std::int64_t>(i)][static_cast<std::int64_t>(t)].item<double>() -
                                         generated.completions[i].logprobs[t]));
      }
    }
    EXPECT_LT(worst, 1e-4) << "temperature " << temperature;
  }
}


// The gradients of Σ upstream · logp over every parameter, with the model's settings as the caller left them.
std::vector<torch::Tensor> parameter_gradients(policy::LlamaForCausalLM& model, const SequenceBatch& batch) {
  model->zero_grad();
  const auto out = completion_logprobs(model, batch, 1.0, /*with_entropy=*/false);
  const auto upstream = torch::linspace(-1.0, 1.0, out.logprobs.numel()).view(out.logprobs.sizes());
  (out.logprobs * upstream * batch.completion_mask).sum().backward();
  std::vector<torch::Tensor> grads;
  for (const auto& p : model->parameters()) grads.push_back(p.grad().clone());
  return grads;
}

TEST(CompletionLogprobs, GradientCheckpointingGivesTheSameGradients) {
  auto model = fixtures::tiny_model({.vocab_size = 13, .num_hidden_layers = 3, .num_key_value_heads = 1, .seed = 9, .weight_scale = 1.0});
  const auto batch = make_sequence_batch({{3, 4, 5}, {6}, {7, 8}}, {{1, 2}, {9, 10, 11, 12}, {0}}, 0, torch::kCPU);
  const auto plain = parameter_gradients(model, batch);
  model->set_gradient_checkpointing(true);
  const auto checkpointed = parameter_gradients(model, batch);
  model->set_gradient_checkpointing(false);
  ASSERT_EQ(plain.size(), checkpointed.size());
  double largest = 0.0;
  for (std::size_t i = 0; i < plain.size(); ++i) {
    // The tied embedding sums its two gradients in another order: float32 round-off, nothing more.
    EXPECT_TRUE(torch::allclose(plain[i], checkpointed[i], 1e-5, 1e-6)) << "parameter " << i << ": " << (plain[i] - checkpointed[i]).abs().max();
    largest = std::max(largest, plain[i].abs().max().item<double>());
  }
  EXPECT_GT(largest, 1e-3) << "the gradients compared must not all be zero";
  // Without grad (old and reference log-probs) nothing is checkpointed and nothing is kept.
  model->set_gradient_checkpointing(true);
  torch::NoGradGuard no_grad;
  EXPECT_FALSE(completion_logprobs(model, batch, 1.0, false).logprobs.requires_grad());
}

TEST(CompletionLogprobs, Bfloat16AutocastStaysCloseToFloat32AndKeepsFloat32Gradients) {
  auto model = fixtures::tiny_model({.vocab_size = 13, .num_hidden_layers = 2, .num_key_value_heads = 1, .seed = 9, .weight_scale = 1.0});
  const auto batch = make_sequence_batch({{3, 4, 5}, {6}, {7, 8}}, {{1, 2}, {9, 10, 11, 12}, {0}}, 0, torch::kCPU);
  const auto exact = completion_logprobs(model, batch, 1.0, false).logprobs.detach();
  const auto exact_grads = parameter_gradients(model, batch);
  torch::Tensor mixed;
  std::vector<torch::Tensor> mixed_grads;
  {
    const kernels::AutocastGuard autocast(torch::kCPU, true);
    mixed = completion_logprobs(model, batch, 1.0, false).logprobs.detach();
  }
  {
    // Forward under autocast, backward after it (as the trainer does); with checkpointing the recomputation must
    // round as the forward did.
    model->set_gradient_checkpointing(true);
    model->zero_grad();
    torch::Tensor out;
    {
      const kernels::AutocastGuard autocast(torch::kCPU, true);
      out = completion_logprobs(model, batch, 1.0, false).logprobs;
    }
    const auto upstream = torch::linspace(-1.0, 1.0, out.numel()).view(out.sizes());
    (out * upstream * batch.completion_mask).sum().backward();
    for (const auto& p : model->parameters()) mixed_grads.push_back(p.grad().clone());
    model->set_gradient_checkpointing(false);
  }
  EXPECT_FALSE(at::autocast::is_autocast_enabled(torch::kCPU)) << "the guard restores the state";
  EXPECT_EQ(mixed.scalar_type(), torch::kFloat32);
  const auto mask = batch.completion_mask.to(torch::kBool);
  const double difference = (mixed - exact).masked_select(mask).abs().max().item<double>();
  EXPECT_GT(difference, 0.0) << "autocast must have changed the arithmetic";
  EXPECT_LT(difference, 5e-2) << "bfloat16 matmuls: a few per cent of a log-prob at most";
  for (std::size_t i = 0; i < exact_grads.size(); ++i) {
    EXPECT_EQ(mixed_grads[i].scalar_type(), torch::kFloat32);
    const double scale = std::max(exact_grads[i].abs().max().item<double>(), 1e-3);
    EXPECT_LT((mixed_grads[i] - exact_grads[i]).abs().max().item<double>() / scale, 0.1) << "parameter " << i;
  }
}

TEST(SequenceBatch, LengthSortedTrimmedGroupsGiveTheSameLogprobs) {
  auto model = tiny_model();
  const std::vector<std::vector<std::int64_t>> prompts = {{3, 4, 5, 6, 7}, {6}, {7, 8}, {1, 2, 3}, {9}};
  const std::vector<std::vector<std::int64_t>> completions = {{1, 2}, {9, 10, 11, 12, 3, 4}, {0}, {5, 5, 5}, {2}};
  const auto batch = make_sequence_batch(prompts, completions, 0, torch::kCPU);
  // Groups of two, shortest rows first: every row once.
  const auto groups = length_sorted_groups(batch, torch::arange(5, torch::kInt64), 2);
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_TRUE(torch::equal(std::get<0>(torch::cat(groups).sort()), torch::arange(5, torch::kInt64)));
  // Real tokens per row: 7, 7, 3, 6, 2 → ascending (stable): rows 4, 2 | 3, 0 | 1.
  EXPECT_TRUE(torch::equal(groups[0], torch::tensor({4L, 2L})));
  EXPECT_TRUE(torch::equal(groups[1], torch::tensor({3L, 0L})));
  // Rows 4 and 2 need a prompt of 2 and a completion of 1: the trimmed group is 3 wide instead of 11.
  const auto trimmed = batch.rows(groups[0]).trimmed();
  EXPECT_EQ(trimmed.prompt_width, 2);
  EXPECT_EQ(trimmed.input_ids.size(1), 3);
  EXPECT_TRUE(torch::equal(trimmed.completion_ids, torch::tensor({2L, 0L}).view({2, 1})));
  torch::NoGradGuard no_grad;
  const auto whole = completion_logprobs(model, batch, 0.7, false).logprobs * batch.completion_mask;
  const auto grouped = completion_logprobs_in_groups(model, batch, 0.7, 2);
  EXPECT_TRUE(torch::allclose(whole, grouped, 1e-5, 1e-6)) << (whole - grouped).abs().max();
}

// Three prompts with two or three completions each (one of a single token, one empty), as a GRPO step has them.
SequenceBatch shared_prompt_batch() {
  return make_sequence_batch({{3, 4, 5}, {6}, {3, 4, 5}, {7, 8}, {3, 4, 5}, {6}, {7, 8}},
                             {{1, 2}, {9, 10, 11, 12}, {2}, {0}, {5, 6, 7, 8, 9}, {4, 4}, {}}, 0, torch::kCPU);
}

TEST(SequenceBatch, RowsWithTheSamePromptTokensShareAPromptIndex) {
  const auto batch = shared_prompt_batch();
  EXPECT_TRUE(torch::equal(batch.prompt_index, torch::tensor({0L, 1L, 0L, 2L, 0L, 1L, 2L})));
  EXPECT_TRUE(torch::equal(batch.rows(torch::tensor({5L, 3L})).prompt_index, torch::tensor({1L, 2L})));
  // Rows ordered prompt by prompt, prompts with shorter longest rows first, then cut into groups of at most three:
  // prompt 2 (rows 6, 3: longest 3 tokens), prompt 1 (rows 5, 1: longest 5), prompt 0 (rows 2, 0, 4: longest 8).
  const auto groups = length_sorted_groups(batch, torch::arange(7, torch::kInt64), 3);
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_TRUE(torch::equal(groups[0], torch::tensor({6L, 3L, 5L})));
  EXPECT_TRUE(torch::equal(groups[1], torch::tensor({1L, 2L, 0L})));
  EXPECT_TRUE(torch::equal(groups[2], torch::tensor({4L})));
}

TEST(CompletionLogprobs, SharedPromptForwardEqualsTheWholeSequences) {
  // Padded continuations and padding-free ones (the real tokens end to end), against whole sequences. The batch has
  // one-token and empty completions and rows of very different lengths, so padding-free leaves out a lot.
  auto model = fixtures::tiny_model({.vocab_size = 13, .num_hidden_layers = 2, .num_key_value_heads = 2, .seed = 11, .weight_scale = 2.0});
  auto whole = shared_prompt_batch();
  whole.share_prompts = false;
  const auto b = completion_logprobs(model, whole, 0.8, /*with_entropy=*/true);
  const auto whole_grads = parameter_gradients(model, whole);
  for (const bool padding_free : {false, true}) {
    SCOPED_TRACE(padding_free ? "padding-free" : "padded");
    auto shared = shared_prompt_batch();
    shared.padding_free = padding_free;
    const auto a = completion_logprobs(model, shared, 0.8, /*with_entropy=*/true);
    const auto mask = shared.completion_mask.to(torch::kBool);
    EXPECT_TRUE(torch::allclose(a.logprobs.masked_select(mask), b.logprobs.masked_select(mask), 1e-5, 1e-5))
        << (a.logprobs - b.logprobs).masked_select(mask).abs().max();
    EXPECT_TRUE(torch::allclose(a.entropy.masked_select(mask), b.entropy.masked_select(mask), 1e-5, 1e-5));
    if (padding_free) {
      EXPECT_EQ(a.logprobs.masked_select(~mask).abs().max().item<double>(), 0.0) << "nothing is computed for padding";
    }
    // Each against the plain one-sequence-at-a-time computation too.
    const std::vector<std::int64_t> prompt = {3, 4, 5}, completion = {5, 6, 7, 8, 9};
    const auto expected = plain_logprobs(model, prompt, completion, 0.8);
    for (std::size_t t = 0; t < expected.size(); ++t) EXPECT_NEAR(a.logprobs[4][static_cast<std::int64_t>(t)].item<double>(), expected[t], 1e-5);

    // Gradients: the prompt's keys and values receive the sum over its rows.
    const auto shared_grads = parameter_gradients(model, shared);
    double largest = 0.0;
    for (std::size_t i = 0; i < whole_grads.size(); ++i) {
      EXPECT_TRUE(torch::allclose(shared_grads[i], whole_grads[i], 1e-4, 1e-5))
          << "parameter " << i << ": " << (shared_grads[i] - whole_grads[i]).abs().max();
      largest = std::max(largest, whole_grads[i].abs().max().item<double>());
    }
    EXPECT_GT(largest, 1e-3) << "the gradients compared must not all be zero";
  }
}

TEST(CompletionLogprobs, GradientCheckpointingWithSharedPromptsGivesTheSameGradientsThroughAutogradGrad) {
  // Checkpointed layers take the shared prompt keys and values as inputs and the parameters too, and return their
  // gradients: so the prompts receive their continuations' gradients, and torch::autograd::grad over the parameters
  // (what parallel micro-batch workers call) gets them without anything written to .grad.
  auto model = fixtures::tiny_model({.vocab_size = 13, .num_hidden_layers = 3, .num_key_value_heads = 1, .seed = 9, .weight_scale = 2.0});
  auto whole = shared_prompt_batch();
  whole.share_prompts = false;
  const auto expected = parameter_gradients(model, whole);
  const auto parameters = model->parameters();
  model->set_gradient_checkpointing(true);
  for (const bool padding_free : {false, true}) {
    SCOPED_TRACE(padding_free ? "padding-free" : "padded");
    auto batch = shared_prompt_batch();
    batch.padding_free = padding_free;
    const auto checkpointed = parameter_gradients(model, batch);
    model->zero_grad();
    for (const auto& p : parameters) p.mutable_grad() = torch::Tensor();
    const auto out = completion_logprobs(model, batch, 1.0, /*with_entropy=*/false);
    const auto upstream = torch::linspace(-1.0, 1.0, out.logprobs.numel()).view(out.logprobs.sizes());
    const auto grads = torch::autograd::grad({(out.logprobs * upstream * batch.completion_mask).sum()}, parameters, {}, false, false, true);
    for (std::size_t i = 0; i < parameters.size(); ++i) {
      EXPECT_TRUE(torch::allclose(checkpointed[i], expected[i], 1e-4, 1e-5)) << "parameter " << i << ": " << (checkpointed[i] - expected[i]).abs().max();
      ASSERT_TRUE(grads[i].defined()) << "parameter " << i;
      EXPECT_TRUE(torch::allclose(grads[i], expected[i], 1e-4, 1e-5)) << "parameter " << i;
      EXPECT_FALSE(parameters[i].grad().defined()) << "parameter " << i << ": written to .grad by autograd::grad";
    }
  }
  model->set_gradient_checkpointing(false);
}

TEST(CompletionLogprobs, PaddingFreeWithoutSharedPromptsAndWithBfloat16Autocast) {
  // Every row its own prompt: padding-free still takes the prompts apart (the shared path with P = B).
  auto model = fixtures::tiny_model({.vocab_size = 13, .num_hidden_layers = 2, .num_key_value_heads = 1, .seed = 5, .weight_scale = 2.0});
  auto packed = make_sequence_batch({{3, 4, 5}, {6}, {7, 8}}, {{1, 2, 3, 4, 5, 6}, {9}, {}}, 0, torch::kCPU);
  auto padded = packed;
  padded.padding_free = false;
  const auto mask = packed.completion_mask.to(torch::kBool);
  const auto grads_packed = parameter_gradients(model, packed);
  const auto grads_padded = parameter_gradients(model, padded);
  for (std::size_t i = 0; i < grads_packed.size(); ++i) {
    EXPECT_TRUE(torch::allclose(grads_packed[i], grads_padded[i], 1e-4, 1e-5)) << "parameter " << i;
  }
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::allclose(completion_logprobs(model, packed, 1.0, false).logprobs.masked_select(mask),
                              completion_logprobs(model, padded, 1.0, false).logprobs.masked_select(mask), 1e-5, 1e-6));
  // Under bfloat16 autocast the two agree to bfloat16 round-off.
  const kernels::AutocastGuard autocast(torch::kCPU, true);
  const auto a = completion_logprobs(model, packed, 1.0, false).logprobs.masked_select(mask);
  const auto b = completion_logprobs(model, padded, 1.0, false).logprobs.masked_select(mask);
  EXPECT_LT((a - b).abs().max().item<double>(), 0.05);
}

TEST(CompletionLogprobs, SharedPromptsOfOneTokenCompletionsAndInGroups) {
  auto model = tiny_model();
  // Every completion one token long: only the prompts run.
  const auto batch = make_sequence_batch({{3, 4}, {3, 4}, {9, 9, 9}, {9, 9, 9}}, {{1}, {2}, {3}, {1}}, 0, torch::kCPU);
  auto whole = batch;
  whole.share_prompts = false;
  torch::NoGradGuard no_grad;
  const auto a = completion_logprobs(model, batch, 1.0, false).logprobs;
  EXPECT_TRUE(torch::allclose(a, completion_logprobs(model, whole, 1.0, false).logprobs, 1e-5, 1e-6));
  const auto many = shared_prompt_batch();
  auto many_whole = many;
  many_whole.share_prompts = false;
  EXPECT_TRUE(torch::allclose(completion_logprobs_in_groups(model, many, 1.0, 3), completion_logprobs_in_groups(model, many_whole, 1.0, 0), 1e-5, 1e-6));
}

}  // namespace
}  // namespace grpo::rl
