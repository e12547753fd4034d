// Every GRPO variant against golden values written by scripts/make_grpo_golden.py, which computes the losses and
// gradients as TRL and verl implement them (in float64 PyTorch): advantages, loss and d loss / d logprobs must match
// to 1e-6 for each case (GRPO, R1-Zero, DAPO, BNPO, Dr. GRPO, GSPO, batch std, dual clip, k1/k2/k3 in the loss and in
// the reward, truncated importance sampling).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "rl/grpo_math.h"

namespace grpo::rl {
namespace {

using Json = nlohmann::json;

torch::Tensor matrix(const Json& rows) {
  std::vector<double> flat;
  for (const auto& row : rows) {
    for (const auto& v : row) flat.push_back(v.get<double>());
  }
  const auto n = static_cast<std::int64_t>(rows.size());
  return torch::tensor(flat, torch::kFloat64).view({n, static_cast<std::int64_t>(flat.size()) / n});
}

Json golden() {
  const auto path = std::filesystem::path(GRPO_SOURCE_DIR) / "tests" / "rl" / "data" / "grpo_golden.json";
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return Json::parse(in);
}

TEST(GrpoGolden, EveryVariantMatchesTrlAndVerlTo1e6) {
  const auto data = golden();
  const auto& inputs = data["inputs"];
  const auto mask = matrix(inputs["mask"]);
  const auto rewards = matrix(inputs["rewards"]);
  const auto old_lp = matrix(inputs["old_logprobs"]);
  const auto ref = matrix(inputs["ref_logprobs"]);
  const auto rollout = matrix(inputs["rollout_logprobs"]);
  const auto scorable = torch::ones_like(rewards, torch::kBool);
  ASSERT_GE(data["cases"].size(), 16u);
  for (const auto& c : data["cases"]) {
    const std::string name = c["name"];
    SCOPED_TRACE(name + ": " + c["reference"].get<std::string>());
    const auto& p = c["params"];
    const auto norm = parse_advantage_norm(p["advantage_norm"].get<std::string>());
    const auto estimator = parse_kl_estimator(p["kl_estimator"].get<std::string>());
    const auto aggregation = parse_loss_aggregation(p["aggregation"].get<std::string>());
    const auto ratio_level = parse_ratio_level(p["ratio_level"].get<std::string>());
    ASSERT_TRUE(norm && estimator && aggregation && ratio_level);
    const double beta = p["kl_beta"];
    const bool kl_in_reward = p["kl_in_reward"];

    auto shaped = rewards;
    if (kl_in_reward && beta > 0) shaped = rewards - beta * sequence_kl(old_lp, ref, mask, *estimator).view(rewards.sizes());
    const auto advantages = compute_advantages(shaped, scorable, *norm, p["advantage_eps"]).reshape({-1});
    const auto expected_advantages = torch::tensor(c["advantages"].get<std::vector<double>>(), torch::kFloat64);
    EXPECT_LT((advantages - expected_advantages).abs().max().item<double>(), 1e-6);

    PolicyLossParams params;
    params.clip_eps_low = p["clip_eps_low"];
    params.clip_eps_high = p["clip_eps_high"];
    params.dual_clip = p["dual_clip"];
    params.ratio_level = *ratio_level;
    params.kl_beta = kl_in_reward ? 0.0 : beta;
    params.kl_estimator = *estimator;
    params.aggregation = *aggregation;
    params.token_budget = p["token_budget"];
    params.global_tokens = p["global_tokens"];
    params.tis_cap = p["tis_cap"];
    auto logprobs = matrix(inputs["logprobs"]).requires_grad_(true);
    const auto out = policy_loss({logprobs, old_lp, params.kl_beta != 0.0 ? ref : torch::Tensor(), rollout, advantages, mask}, params);
    EXPECT_NEAR(out.loss.item<double>(), c["loss"].get<double>(), 1e-6);
    out.loss.backward();
    const auto expected_grad = matrix(c["grad"]);
    EXPECT_LT((logprobs.grad() - expected_grad).abs().max().item<double>(), 1e-6);
    EXPECT_GT(expected_grad.abs().sum().item<double>(), 0.0) << "a case whose gradient is zero checks little";
  }
}

}  // namespace
}  // namespace grpo::rl
