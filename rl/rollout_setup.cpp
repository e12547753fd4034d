// The rollout backend of a run (see rollout_setup.h).
#include "rl/rollout_setup.h"

#include <fstream>
#include <stdexcept>

#include <fmt/format.h>

#include "rl/runtime.h"

namespace grpo::rl {

std::string read_token_file(const std::filesystem::path& path) {
  if (path.empty()) throw std::runtime_error("no token file given");
  std::ifstream in(path);
  if (!in) throw std::runtime_error(fmt::format("cannot read '{}'", path.string()));
  std::string line;
  std::getline(in, line);
  const auto begin = line.find_first_not_of(" \t\r\n");
  const auto end = line.find_last_not_of(" \t\r\n");
  if (begin == std::string::npos) throw std::runtime_error(fmt::format("'{}' holds no token (its first line is empty)", path.string()));
  return line.substr(begin, end - begin + 1);
}

std::unique_ptr<rollout::RolloutBackend> make_rollout_backend(const config::LoadedConfig& loaded, policy::Policy& policy,
                                                              const std::filesystem::path& log_dir) {
  const auto& r = loaded.config.rollout();
  if (r.workers_size() == 0 && r.local_workers() == 0) {
    return r.overlap() ? rollout::make_threaded_rollout(policy) : rollout::make_inline_rollout(policy);
  }
  rollout::WorkerPoolOptions options;
  options.connect_timeout = std::chrono::milliseconds(r.worker_connect_timeout_ms());
  options.stall_timeout = std::chrono::milliseconds(r.worker_stall_timeout_ms());
  options.weight_transport = r.weight_transport() == config::C10D_BROADCAST ? rollout::WeightTransport::kBroadcast : rollout::WeightTransport::kTcp;
  options.broadcast_host = r.weight_broadcast_host();
  const auto weight_dtype = r.weight_sync_dtype() == "model" ? std::nullopt : parse_dtype(r.weight_sync_dtype());
  std::unique_ptr<rollout::LocalWorkerProcesses> processes;
  if (r.local_workers() > 0) {
    rollout::LocalWorkerOptions local;
    local.count = r.local_workers();
    local.grpo_binary = std::filesystem::read_symlink("/proc/self/exe");
    local.model = loaded.config.model().path();
    local.dtype = loaded.config.model().dtype();
    local.device = resolve_device(loaded.config.runtime().device()).is_cuda() ? "cuda" : "cpu";
    local.threads = r.local_worker_threads();
    local.log_dir = log_dir;
    processes = std::make_unique<rollout::LocalWorkerProcesses>(local);
    options.addresses = processes->addresses();
    options.token = processes->token();
  } else {
    options.addresses.assign(r.workers().begin(), r.workers().end());
    try {
      options.token = read_token_file(r.worker_token_file());
    } catch (const std::runtime_error& error) {
      config::fail_at(loaded, "rollout.worker_token_file", error.what());
    }
  }
  return rollout::make_remote_rollout(std::move(options), policy, std::move(processes), weight_dtype);
}

}  // namespace grpo::rl
