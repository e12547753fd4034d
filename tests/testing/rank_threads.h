// Data-parallel ranks as threads of the test process: each joins a real c10d Gloo group over loopback TCP, so
// collectives, gradient sums and group exchanges are tested on the real transport without starting processes.
#pragma once

#include <chrono>
#include <future>
#include <utility>
#include <vector>

#include "rl/distributed/launch_env.h"
#include "rl/distributed/rank_group.h"
#include "tests/testing/loopback_port.h"

namespace grpo::rl {

inline int free_port() { return fixtures::free_loopback_port(); }

// What torchrun would set for rank `rank` of `world` with the rendezvous on loopback `port`.
inline LaunchInfo loopback_rank(int rank, int world, int port) {
  LaunchInfo info;
  info.rank = rank;
  info.world_size = world;
  info.local_rank = rank;
  info.local_world_size = world;
  info.master_addr = "127.0.0.1";
  info.master_port = port;
  info.launcher = "test";
  return info;
}

// Runs body(rank, group) on `world` threads, one joined group each, and returns what each body returned.
template <typename Body>
auto on_ranks(int world, Body body, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  using Result = decltype(body(0, std::declval<RankGroup&>()));
  const int port = free_port();
  std::vector<std::future<Result>> futures;
  for (int r = 0; r < world; ++r) {
    futures.push_back(std::async(std::launch::async, [=] {
      auto group = join_rank_group(loopback_rank(r, world, port), torch::kCPU, timeout);
      return body(r, *group);
    }));
  }
  std::vector<Result> results;
  for (auto& f : futures) results.push_back(f.get());
  return results;
}

}  // namespace grpo::rl
