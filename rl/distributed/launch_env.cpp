// Launch environment (see launch_env.h).
#include "rl/distributed/launch_env.h"

#include <charconv>
#include <cstdlib>

#include <fmt/format.h>

namespace grpo::rl {
namespace {

int parse_int(const std::string& name, const std::string& value, int min, int max) {
  int parsed = 0;
  const auto* end = value.data() + value.size();
  const auto [ptr, ec] = std::from_chars(value.data(), end, parsed);
  if (ec != std::errc{} || ptr != end || parsed < min || parsed > max) {
    throw LaunchEnvError(fmt::format("{}={:?} is not an integer in [{}, {}]", name, value, min, max));
  }
  return parsed;
}

// SLURM_TASKS_PER_NODE looks like "4(x2),3": the count on the first node is what a homogeneous job has everywhere.
int slurm_tasks_per_node(const std::string& value) {
  const auto first = value.substr(0, value.find_first_of("(,"));
  return parse_int("SLURM_TASKS_PER_NODE", first, 1, 1 << 20);
}

}  // namespace

LaunchInfo read_launch_env(const GetEnv& getenv) {
  LaunchInfo info;
  constexpr int kMaxRanks = 1 << 20;
  auto need = [&](const char* name) {
    auto value = getenv(name);
    if (!value) throw LaunchEnvError(fmt::format("{} is not set (the launcher sets RANK and WORLD_SIZE together)", name));
    return *value;
  };
  if (getenv("RANK") || getenv("WORLD_SIZE")) {
    info.launcher = "torchrun";
    info.rank = parse_int("RANK", need("RANK"), 0, kMaxRanks);
    info.world_size = parse_int("WORLD_SIZE", need("WORLD_SIZE"), 1, kMaxRanks);
    if (auto v = getenv("LOCAL_RANK")) info.local_rank = parse_int("LOCAL_RANK", *v, 0, kMaxRanks);
    info.local_world_size = info.world_size;
    if (auto v = getenv("LOCAL_WORLD_SIZE")) info.local_world_size = parse_int("LOCAL_WORLD_SIZE", *v, 1, kMaxRanks);
    if (auto v = getenv("MASTER_ADDR")) info.master_addr = *v;
    if (auto v = getenv("MASTER_PORT")) info.master_port = parse_int("MASTER_PORT", *v, 1, 65535);
    if (auto v = getenv("TORCHELASTIC_USE_AGENT_STORE")) info.agent_store = *v == "True" || *v == "true" || *v == "1";
    if (auto v = getenv("TORCHELASTIC_RESTART_COUNT")) info.restart_count = parse_int("TORCHELASTIC_RESTART_COUNT", *v, 0, kMaxRanks);
  } else if (auto procid = getenv("SLURM_PROCID")) {
    info.launcher = "slurm";
    info.rank = parse_int("SLURM_PROCID", *procid, 0, kMaxRanks);
    info.world_size = parse_int("SLURM_NTASKS", need("SLURM_NTASKS"), 1, kMaxRanks);
    if (auto v = getenv("SLURM_LOCALID")) info.local_rank = parse_int("SLURM_LOCALID", *v, 0, kMaxRanks);
    if (auto v = getenv("SLURM_NTASKS_PER_NODE")) {
      info.local_world_size = parse_int("SLURM_NTASKS_PER_NODE", *v, 1, kMaxRanks);
    } else if (auto tasks = getenv("SLURM_TASKS_PER_NODE")) {
      info.local_world_size = slurm_tasks_per_node(*tasks);
    } else {
      info.local_world_size = info.world_size;
    }
    if (auto v = getenv("MASTER_ADDR")) {
      info.master_addr = *v;
    } else if (auto launch = getenv("SLURM_LAUNCH_NODE_IPADDR")) {
      info.master_addr = *launch;
    } else if (info.world_size > info.local_world_size) {
      throw LaunchEnvError("a multi-node Slurm job needs MASTER_ADDR (the first node's address; see examples/slurm/grpo_train.sbatch)");
    }
    if (auto v = getenv("MASTER_PORT")) {
      info.master_port = parse_int("MASTER_PORT", *v, 1, 65535);
    } else if (auto job = getenv("SLURM_JOB_ID")) {
      info.master_port = 20000 + parse_int("SLURM_JOB_ID", *job, 0, 2147483647) % 20000;
    }
  }
  if (info.rank >= info.world_size) {
    throw LaunchEnvError(fmt::format("rank {} is not below the world size {} ({} environment)", info.rank, info.world_size, info.launcher));
  }
  if (info.local_rank >= info.local_world_size) {
    throw LaunchEnvError(fmt::format("local rank {} is not below the ranks per node {} ({} environment)", info.local_rank,
                                     info.local_world_size, info.launcher));
  }
  return info;
}

LaunchInfo read_launch_env() {
  return read_launch_env([](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  });
}

}  // namespace grpo::rl
