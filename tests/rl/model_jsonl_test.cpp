// grpo tokenize / grpo score as stream functions: ids as the tokenizer gives them, log-probs equal to an unbatched
// forward pass of each sequence on its own (batching and left padding change nothing), malformed lines answered in
// place with their line number while the others go on.
#include <gtest/gtest.h>

#include <sstream>

#include <nlohmann/json.hpp>

#include "policy/char_tokenizer.h"
#include "rl/model_jsonl.h"
#include "tests/testing/tiny_model.h"

namespace grpo::rl {
namespace {

using Json = nlohmann::json;

policy::Policy tiny_policy() {
  auto tokenizer = std::make_shared<const policy::CharTokenizer>(policy::CharTokenizer::make_embedded());
  return policy::make_policy(fixtures::tiny_model({.vocab_size = tokenizer->vocab_size()}), tokenizer);
}

std::vector<Json> lines_of(const std::string& text) {
  std::vector<Json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(Json::parse(line));
  return out;
}

// log p(ids[t+1] | ids[..t]) from one unpadded forward pass, in double for the comparison.
std::vector<double> direct_logprobs(policy::LlamaForCausalLM& model, const std::vector<std::int64_t>& ids) {
  torch::NoGradGuard no_grad;
  const auto n = static_cast<std::int64_t>(ids.size());
  const auto valid = torch::ones({1, n}, torch::kBool);
  const auto logits = model->forward(torch::tensor(ids).unsqueeze(0), policy::positions_from_valid(valid), policy::causal_padding_mask(valid, n));
  const auto logprobs = torch::log_softmax(logits[0].to(torch::kFloat64), -1);
  std::vector<double> out;
  for (std::int64_t t = 0; t + 1 < n; ++t) out.push_back(logprobs[t][ids[static_cast<std::size_t>(t + 1)]].item<double>());
  return out;
}

TEST(TokenizeJsonl, AddsIdsAndAnswersBadLinesInPlace) {
  const auto policy = tiny_policy();
  std::istringstream in("{\"text\": \"<think>1+2</think>\", \"id\": 7}\n\n[1, 2]\n{\"txt\": \"x\"}\nnot json\n{\"text\": \"\"}\n");
  std::ostringstream out;
  const auto summary = tokenize_jsonl(in, out, *policy.tokenizer);
  EXPECT_EQ(summary.lines, 5);
  EXPECT_EQ(summary.errors, 3);
  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 5U);
  EXPECT_EQ(lines[0]["ids"].get<std::vector<std::int64_t>>(), policy.tokenizer->encode("<think>1+2</think>"));
  EXPECT_EQ(lines[0]["id"], 7);  // other fields are kept
  EXPECT_EQ(lines[1]["line"], 3);
  EXPECT_EQ(lines[2]["line"], 4);
  EXPECT_NE(lines[2]["error"].get<std::string>().find("\"text\""), std::string::npos);
  EXPECT_EQ(lines[3]["line"], 5);
  EXPECT_NE(lines[3]["error"].get<std::string>().find("invalid JSON"), std::string::npos);
  EXPECT_TRUE(lines[4]["ids"].empty());
}

TEST(ScoreJsonl, LogprobsEqualAnUnbatchedForwardPass) {
  auto policy = tiny_policy();
  const std::vector<std::vector<std::int64_t>> sequences = {{5, 9, 30, 41, 7, 8, 60}, {12, 13}, {70}, {3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}};
  std::string input;
  for (const auto& ids : sequences) input += Json{{"ids", ids}}.dump() + "\n";
  input += Json{{"text", "1+2"}}.dump() + "\n";
  std::istringstream in(input);
  std::ostringstream out;
  // Small batches and chunks, so that sequences share padded batches and logits come in several chunks.
  const auto summary = score_jsonl(in, out, policy, {.max_batch_tokens = 24, .logits_chunk = 3}, /*lines_per_batch=*/3);
  EXPECT_TRUE(summary.ok());
  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 5U);
  auto expect_line = [&](const Json& line, const std::vector<std::int64_t>& ids) {
    const auto expected = direct_logprobs(policy.model, ids);
    const auto got = line["logprobs"].get<std::vector<double>>();
    ASSERT_EQ(got.size(), ids.size() - 1);
    // float32 log-softmax of logits in the hundreds (the tiny model's weights are scaled up): relative precision.
    for (std::size_t t = 0; t < got.size(); ++t) EXPECT_NEAR(got[t], expected[t], 1e-5 + 1e-6 * std::abs(expected[t])) << "position " << t;
  };
  for (std::size_t i = 0; i < sequences.size(); ++i) expect_line(lines[i], sequences[i]);
  EXPECT_EQ(lines[4]["ids"].get<std::vector<std::int64_t>>(), policy.tokenizer->encode("1+2"));
  expect_line(lines[4], policy.tokenizer->encode("1+2"));
}

TEST(ScoreJsonl, BadLinesAreAnsweredAndTheRestScored) {
  auto policy = tiny_policy();
  const auto vocab = policy.model->config().vocab_size;
  const auto too_long = std::vector<std::int64_t>(static_cast<std::size_t>(policy.model->config().max_position_embeddings + 1), 5);
  std::istringstream in(Json{{"ids", {1, vocab}}}.dump() + "\n" + Json{{"ids", Json::array()}}.dump() + "\n" +
                        Json{{"ids", {1, "2"}}}.dump() + "\n" + Json{{"ids", too_long}}.dump() + "\n" + "{\"ids\": 3}\n" +
                        Json{{"ids", {4, 5, 6}}}.dump() + "\n");
  std::ostringstream out;
  const auto summary = score_jsonl(in, out, policy);
  EXPECT_EQ(summary.lines, 6);
  EXPECT_EQ(summary.errors, 5);
  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 6U);
  EXPECT_NE(lines[0]["error"].get<std::string>().find("outside the vocabulary"), std::string::npos);
  EXPECT_NE(lines[1]["error"].get<std::string>().find("no tokens"), std::string::npos);
  EXPECT_NE(lines[2]["error"].get<std::string>().find("not an integer"), std::string::npos);
  EXPECT_NE(lines[3]["error"].get<std::string>().find("max_position_embeddings"), std::string::npos);
  EXPECT_EQ(lines[4]["line"], 5);
  EXPECT_EQ(lines[5]["logprobs"].size(), 2U);
}

}  // namespace
}  // namespace grpo::rl
