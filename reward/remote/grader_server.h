// Serves graders to remote clients (RemoteGrader, or any program speaking reward/remote/grader_service.proto): the
// `grpo grader-server` subcommand, and a building block for tests and embedding programs.
//
// Connections are handled on one Asio thread; grading runs on a separate pool of threads, so a slow grader holds up
// only its own request. A client that sends something other than grpo frames of GradeRequests gets one error reply
// (when it can take one) and its connection closed, with a line on the log; every other client is served on.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "reward/grader.h"

namespace grpo::reward {

// Finds the grader a request names. Returns null, or throws an exception whose message says what is wrong (e.g. the
// registry's "unknown grader 'x'; registered graders: ..."), when there is none: the client gets that as the reply's
// error. Called on the grading threads, possibly concurrently; the grader it returns must stay alive while the server
// runs, and its grade_batch must be safe to call from several threads at once (const graders are).
using GraderLookup = std::function<const Grader*(std::string_view name)>;

struct GraderServerOptions {
  std::string host = "127.0.0.1";                       // address to listen on; "0.0.0.0" or "::" for every interface
  std::uint16_t port = 9000;                            // 0: any free port (GraderServer::port() says which)
  std::size_t max_frame_bytes = std::size_t{64} << 20;  // largest request accepted and reply sent
  int grading_threads = 4;                              // requests graded at once
  // A connection that brings no request for this long is closed (clients reconnect when they need to).
  std::chrono::milliseconds idle_timeout{300000};
  // run_grader_server only: the registered graders to serve (make_grader names); empty serves every registered one.
  std::vector<std::string> graders = {};
  // Where log lines go (one line per call, without a newline, from any of the server's threads); empty: stderr.
  std::function<void(std::string_view line)> log = {};
};

class GraderServer {
 public:
  // Throws std::invalid_argument for unusable options (empty host, no lookup, non-positive limits).
  GraderServer(GraderServerOptions options, GraderLookup lookup);
  ~GraderServer();  // stop()
  GraderServer(const GraderServer&) = delete;
  GraderServer& operator=(const GraderServer&) = delete;

  // Binds, listens and starts serving on background threads; logs "grader server listening on HOST:PORT". Throws
  // std::runtime_error when it cannot listen (address in use, not a local address), saying which address failed.
  void start();

  // The port listened on (the chosen one when options.port was 0). Valid after start().
  std::uint16_t port() const;

  // Stops accepting, closes every connection and waits for the grading threads to finish the requests they are
  // grading. Idempotent; a stopped server cannot be started again.
  void stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// A lookup over the grader registry (make_grader): each grader is made the first time a request names it and kept.
// With `allowed` non-empty, only those names are served; other names get an error listing the allowed ones.
GraderLookup registered_grader_lookup(std::vector<std::string> allowed = {});

// `grpo grader-server`: serves registered graders (options.graders, or all) until SIGINT or SIGTERM, then stops and
// returns 0. Throws std::runtime_error when it cannot listen, std::invalid_argument for bad options or an unknown
// grader name in options.graders.
int run_grader_server(const GraderServerOptions& options);

}  // namespace grpo::reward
