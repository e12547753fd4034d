// A rollout worker: serves the rollout protocol (rollout_service.proto) over TCP for one policy. Trainers connect,
// authenticate with the shared token, push weights by version and send generate requests; each prompt's samples are
// streamed back as soon as they are done. `grpo rollout-worker` runs one.
//
// Threads: one Asio thread reads and writes every connection; one engine thread owns the model and runs generation
// and weight updates one after another, so a weight update never lands in the middle of a generation. A connection
// that breaks the protocol (garbage, an oversized frame, a wrong token or version) gets an Error frame and is
// closed, with a line on the log; the others are served on. A connection that drops while its request is being
// generated cancels that generation at the next decode step.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "policy/checkpoint.h"

namespace grpo::rollout {

struct RolloutWorkerOptions {
  std::string host = "127.0.0.1";  // loopback by default; "0.0.0.0" or "::" to serve other machines
  std::uint16_t port = 0;          // 0: any free port (port() says which)
  // The shared secret every trainer must present in its Hello. Required (an empty token is refused).
  std::string token;
  std::size_t max_frame_bytes = std::size_t{64} << 20;
  // A connection that has not said Hello within this time is closed.
  std::chrono::milliseconds hello_timeout{10000};
  // While generating, a Progress frame goes out at least this often (the trainer's stall deadline relies on it).
  std::chrono::milliseconds progress_interval{1000};
  // Where log lines go (one per call, no newline, from any thread); empty: stderr.
  std::function<void(std::string_view line)> log = {};
};

class RolloutWorkerServer {
 public:
  // Takes the policy (model and tokenizer) it serves. Throws std::invalid_argument for unusable options.
  RolloutWorkerServer(RolloutWorkerOptions options, policy::Policy policy);
  ~RolloutWorkerServer();  // stop()
  RolloutWorkerServer(const RolloutWorkerServer&) = delete;
  RolloutWorkerServer& operator=(const RolloutWorkerServer&) = delete;

  // Binds, listens and starts serving on background threads. Throws std::runtime_error naming the address when it
  // cannot listen.
  void start();
  std::uint16_t port() const;
  // The version of the weights being served: 0 until the first weight update is applied.
  std::int64_t policy_version() const;
  // Stops accepting, closes every connection, cancels a running generation and joins the threads. Idempotent.
  void stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// `grpo rollout-worker`: serves until SIGINT or SIGTERM. Prints "rollout worker listening on HOST:PORT" on standard
// output once it accepts connections (a parent that started it with port 0 reads the port from it).
int run_rollout_worker(const RolloutWorkerOptions& options, policy::Policy policy);

}  // namespace grpo::rollout
