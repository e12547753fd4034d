// Data parallelism's parts: the launch environment of torchrun and Slurm, and real c10d Gloo groups over loopback
// TCP (two ranks as two threads of this process): collectives, gradient sums, and the message that names a rank
// that went away.
#include <gtest/gtest.h>

#include <future>
#include <map>
#include <thread>

#include "rl/distributed/gradient_sync.h"
#include "rl/distributed/launch_env.h"
#include "rl/distributed/rank_group.h"
#include "tests/testing/loopback_port.h"
#include "tests/testing/rank_threads.h"

namespace grpo::rl {
namespace {

GetEnv env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(LaunchEnv, NoLauncherIsOneRank) {
  const auto info = read_launch_env(env_of({}));
  EXPECT_EQ(info.world_size, 1);
  EXPECT_EQ(info.rank, 0);
  EXPECT_FALSE(info.distributed());
  EXPECT_EQ(info.launcher, "single");
}

TEST(LaunchEnv, TorchrunVariables) {
  const auto info = read_launch_env(env_of({{"RANK", "3"},
                                            {"WORLD_SIZE", "8"},
                                            {"LOCAL_RANK", "1"},
                                            {"LOCAL_WORLD_SIZE", "2"},
                                            {"MASTER_ADDR", "node7"},
                                            {"MASTER_PORT", "29555"},
                                            {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                                            {"TORCHELASTIC_RESTART_COUNT", "2"},
                                            {"SLURM_PROCID", "0"}}));  // torchrun inside an sbatch script: torchrun's win
  EXPECT_EQ(info.launcher, "torchrun");
  EXPECT_EQ(info.rank, 3);
  EXPECT_EQ(info.world_size, 8);
  EXPECT_EQ(info.local_rank, 1);
  EXPECT_EQ(info.local_world_size, 2);
  EXPECT_EQ(info.master_addr, "node7");
  EXPECT_EQ(info.master_port, 29555);
  EXPECT_TRUE(info.agent_store);
  EXPECT_EQ(info.restart_count, 2);
}

TEST(LaunchEnv, SlurmVariables) {
  auto info = read_launch_env(env_of({{"SLURM_PROCID", "5"},
                                      {"SLURM_NTASKS", "8"},
                                      {"SLURM_LOCALID", "1"},
                                      {"SLURM_TASKS_PER_NODE", "4(x2)"},
                                      {"SLURM_LAUNCH_NODE_IPADDR", "10.0.0.4"},
                                      {"SLURM_JOB_ID", "123456"}}));
  EXPECT_EQ(info.launcher, "slurm");
  EXPECT_EQ(info.rank, 5);
  EXPECT_EQ(info.world_size, 8);
  EXPECT_EQ(info.local_rank, 1);
  EXPECT_EQ(info.local_world_size, 4);
  EXPECT_EQ(info.master_addr, "10.0.0.4");
  EXPECT_EQ(info.master_port, 20000 + 123456 % 20000);
  EXPECT_FALSE(info.agent_store);
  // MASTER_ADDR and MASTER_PORT, when the batch script exports them, win.
  info = read_launch_env(env_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"MASTER_ADDR", "gpu001"}, {"MASTER_PORT", "30000"}}));
  EXPECT_EQ(info.master_addr, "gpu001");
  EXPECT_EQ(info.master_port, 30000);
}

TEST(LaunchEnv, ImpossibleEnvironmentsAreErrorsNamingTheVariable) {
  auto message = [](std::map<std::string, std::string> vars) {
    try {
      read_launch_env(env_of(std::move(vars)));
    } catch (const LaunchEnvError& error) {
      return std::string(error.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(message({{"RANK", "0"}}).find("WORLD_SIZE is not set"), std::string::npos);
  EXPECT_NE(message({{"RANK", "2"}, {"WORLD_SIZE", "2"}}).find("rank 2 is not below the world size 2"), std::string::npos);
  EXPECT_NE(message({{"RANK", "x"}, {"WORLD_SIZE", "2"}}).find("RANK=\"x\""), std::string::npos);
  EXPECT_NE(message({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}}).find("MASTER_PORT"), std::string::npos);
  EXPECT_NE(message({{"SLURM_PROCID", "0"}}).find("SLURM_NTASKS is not set"), std::string::npos);
  EXPECT_NE(message({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "8"}, {"SLURM_NTASKS_PER_NODE", "4"}}).find("MASTER_ADDR"), std::string::npos);
}

TEST(RankGroup, OneRankCommunicatesNothing) {
  auto group = single_rank_group();
  auto t = torch::tensor({1.0, 2.0});
  group->all_reduce_sum(t, "sum");
  EXPECT_TRUE(torch::equal(t, torch::tensor({1.0, 2.0})));
  EXPECT_TRUE(torch::equal(group->all_gather(t, "gather"), t));
  EXPECT_TRUE(group->any(true, "any"));
  EXPECT_FALSE(group->any(false, "any"));
  EXPECT_EQ(group->all_gather_strings("x", "strings"), std::vector<std::string>{"x"});
  EXPECT_TRUE(torch::equal(group->all_gather_rows(t, "rows"), t));
}

TEST(RankGroup, GlooCollectivesOverLoopback) {
  const auto results = on_ranks(3, [](int rank, RankGroup& group) {
    EXPECT_EQ(group.rank(), rank);
    EXPECT_EQ(group.world_size(), 3);
    auto sum = torch::full({4}, static_cast<double>(rank + 1), torch::kFloat64);
    group.all_reduce_sum(sum, "sum");
    const auto gathered = group.all_gather(torch::full({1, 2}, static_cast<float>(rank)), "gather");
    const auto strings = group.all_gather_strings(std::string(static_cast<std::size_t>(rank), 'a'), "strings");
    const auto rows = group.all_gather_rows(torch::full({rank, 2}, static_cast<double>(rank), torch::kFloat64), "rows");  // rank 0: none
    EXPECT_TRUE(torch::equal(rows, torch::tensor({1.0, 1.0, 2.0, 2.0, 2.0, 2.0}, torch::kFloat64).view({3, 2}))) << rows;
    EXPECT_EQ(group.all_gather_rows(torch::zeros({0, 3}), "no rows").sizes(), (std::vector<std::int64_t>{0, 3}));
    const bool any_of_rank_1 = group.any(rank == 1, "any");
    const bool any_of_none = group.any(false, "none");
    group.barrier("barrier");
    return std::make_tuple(sum, gathered, strings, any_of_rank_1, any_of_none);
  });
  for (const auto& [sum, gathered, strings, any_of_rank_1, any_of_none] : results) {
    EXPECT_TRUE(torch::equal(sum, torch::full({4}, 6.0, torch::kFloat64)));  // 1 + 2 + 3
    EXPECT_TRUE(torch::equal(gathered, torch::tensor({0.0f, 0.0f, 1.0f, 1.0f, 2.0f, 2.0f}).view({3, 2})));
    EXPECT_EQ(strings, (std::vector<std::string>{"", "a", "aa"}));
    EXPECT_TRUE(any_of_rank_1);
    EXPECT_FALSE(any_of_none);
  }
}

TEST(RankGroup, GradientsAreSummedInBucketsAndMissingOnesCountAsZero) {
  const auto results = on_ranks(2, [](int rank, RankGroup& group) {
    // Three parameters of two dtypes; rank 1 has no gradient for the second (its share of a minibatch was empty).
    std::vector<torch::Tensor> params{torch::zeros({3}, torch::requires_grad()), torch::zeros({2, 2}, torch::requires_grad()),
                                      torch::zeros({5}, torch::TensorOptions().dtype(torch::kFloat64).requires_grad(true))};
    params[0].mutable_grad() = torch::arange(3, torch::kFloat32) * (rank + 1);
    if (rank == 0) params[1].mutable_grad() = torch::ones({2, 2});
    params[2].mutable_grad() = torch::full({5}, 0.5 * (rank + 1), torch::kFloat64);
    all_reduce_gradients(group, params, "gradients", /*bucket_bytes=*/16);  // small buckets: several collectives
    return std::vector<torch::Tensor>{params[0].grad(), params[1].grad(), params[2].grad()};
  });
  for (const auto& grads : results) {
    EXPECT_TRUE(torch::equal(grads[0], torch::arange(3, torch::kFloat32) * 3));
    EXPECT_TRUE(torch::equal(grads[1], torch::ones({2, 2})));
    EXPECT_TRUE(torch::allclose(grads[2], torch::full({5}, 1.5, torch::kFloat64)));
  }
}

TEST(RankGroup, ARankThatGoesAwayIsNamed) {
  // Rank 1 leaves after the first collective (its process would have died); rank 0's next collective fails with a
  // message naming rank 1 and where it was last seen, instead of waiting forever.
  const auto messages = on_ranks(
      2,
      [](int rank, RankGroup& group) {
        auto t = torch::ones({1});
        group.all_reduce_sum(t, "first");
        if (rank == 1) return std::string("left");
        try {
          group.all_reduce_sum(t, "second (step 2)");
        } catch (const RankFailure& error) {
          return std::string(error.what());
        }
        return std::string("(no error)");
      },
      std::chrono::seconds(20));
  EXPECT_NE(messages[0].find("rank 0: collective #2 \"second (step 2)\" failed"), std::string::npos) << messages[0];
  EXPECT_NE(messages[0].find("Rank 1 stopped"), std::string::npos) << messages[0];
  EXPECT_NE(messages[0].find("last at collective #1 \"first\""), std::string::npos) << messages[0];
}

TEST(RankGroup, ARankThatNeverComesIsNamed) {
  LaunchInfo info = loopback_rank(0, 3, free_port());
  try {
    join_rank_group(info, torch::kCPU, std::chrono::seconds(2));
    FAIL() << "joined without ranks 1 and 2";
  } catch (const RankFailure& error) {
    EXPECT_NE(std::string(error.what()).find("rank(s) 1, 2 did not join within 2 s"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace grpo::rl
