// Where this process sits in a multi-process job, read from the environment its launcher set: torchrun (RANK,
// WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, as torch.distributed's env:// init reads them)
// or Slurm's srun (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NTASKS_PER_NODE or SLURM_TASKS_PER_NODE). With
// neither, the process is the single rank of a one-process job.
#pragma once

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

namespace grpo::rl {

struct LaunchInfo {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;        // this process's index among the ranks of its node (its GPU on a GPU node)
  int local_world_size = 1;  // ranks on this node
  std::string master_addr = "127.0.0.1";  // where rank 0 hosts the rendezvous store
  int master_port = 29500;
  std::string launcher = "single";  // "single", "torchrun" (or any env:// launcher) or "slurm"
  // torchrun's agent already serves the rendezvous store at MASTER_ADDR:MASTER_PORT (TORCHELASTIC_USE_AGENT_STORE):
  // rank 0 then connects to it like every other rank instead of starting one.
  bool agent_store = false;
  int restart_count = 0;  // TORCHELASTIC_RESTART_COUNT: each restart of the job rendezvous under its own prefix

  bool distributed() const { return world_size > 1; }
};

// A launch environment that cannot be right (a rank at or past the world size, a number that is not one, a world
// size without a rank): the message names the variables.
class LaunchEnvError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reads the variables through `getenv` (a test passes a map). torchrun's variables win over Slurm's, so torchrun
// inside an sbatch script works. Under Slurm without MASTER_ADDR the store is on SLURM_LAUNCH_NODE_IPADDR (the node
// srun was started from, the batch host) and without MASTER_PORT on a port derived from SLURM_JOB_ID, so two jobs
// sharing a node do not collide.
using GetEnv = std::function<std::optional<std::string>(const std::string& name)>;
LaunchInfo read_launch_env(const GetEnv& getenv);
LaunchInfo read_launch_env();  // the process environment

}  // namespace grpo::rl
