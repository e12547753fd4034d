// Rollout workers as child processes on this machine: `rollout { local_workers: N }` starts N `grpo rollout-worker`
// processes on loopback with a fresh shared token, reads the port each one chose, and stops them when the trainer
// ends (they also die with it: the kernel sends them SIGTERM when their parent exits).
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include <sys/types.h>

namespace grpo::rollout {

struct LocalWorkerOptions {
  int count = 1;
  std::filesystem::path grpo_binary;  // the grpo executable (the trainer's own: /proc/self/exe)
  std::filesystem::path model;        // --model: the checkpoint the trainer starts from (its weights are pushed anyway)
  std::string dtype = "float32";
  std::string device = "cpu";
  int threads = 1;                    // --threads of each worker
  // Each worker's standard error goes to log_dir/rollout-worker-<i>.log; empty: the trainer's standard error.
  std::filesystem::path log_dir;
  std::chrono::milliseconds start_timeout{120000};
};

class LocalWorkerProcesses {
 public:
  // Starts the workers and waits until each listens. Throws std::runtime_error naming the worker and the end of its
  // log when one exits or stays silent past start_timeout (the ones already started are stopped).
  explicit LocalWorkerProcesses(const LocalWorkerOptions& options);
  ~LocalWorkerProcesses();  // stop()
  LocalWorkerProcesses(const LocalWorkerProcesses&) = delete;
  LocalWorkerProcesses& operator=(const LocalWorkerProcesses&) = delete;

  const std::vector<std::string>& addresses() const { return addresses_; }
  const std::string& token() const { return token_; }
  const std::filesystem::path& token_file() const { return token_file_; }
  const std::vector<pid_t>& pids() const { return pids_; }
  // SIGKILLs worker i (tests and the failover benchmark use it to simulate a crash).
  void kill_worker(std::size_t i);
  // SIGTERM to every worker, SIGKILL to those still running after 5 s; removes the token file. Idempotent.
  void stop();

 private:
  std::vector<std::string> addresses_;
  std::vector<pid_t> pids_;
  std::string token_;
  std::filesystem::path token_dir_;
  std::filesystem::path token_file_;
};

// A fresh random token (64 hex digits from /dev/urandom).
std::string random_token();

}  // namespace grpo::rollout
