// A grader that lives in another process, on this machine or another: completions go to a grader server over TCP
// (reward/remote/grader_service.proto in grpo wire frames) and scores come back. The server may be `grpo
// grader-server` or a program in any language (examples/remote_grader/server.py).
//
// Whatever the server does (refuses connections, resets them, hangs, sends garbage, a wrong or NaN answer), the
// trainer gets "cannot score" for the affected samples with a reason naming the server and what happened, after
// bounded retries and never later than the samples' deadline; grade_batch never throws because of the server.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "reward/grader.h"

namespace grpo::reward {

struct RemoteGraderOptions {
  std::string host = "127.0.0.1";  // a name or an address
  std::uint16_t port = 0;          // required
  std::string grader = {};         // the grader's name on the server, e.g. "math" or "palindrome"; required
  // How long one attempt (connect, send, reply) may take; each attempt is also bounded by the earliest deadline of
  // the samples it carries.
  std::chrono::milliseconds request_timeout{30000};
  int retries = 2;  // further attempts after a transient failure (refused, reset, timeout, garbage reply)
  // Wait before the first retry; doubled before each further one, never past the samples' deadline.
  std::chrono::milliseconds retry_backoff{200};
  int max_in_flight = 4;  // requests outstanding at once, across all grade_batch calls on this grader
  int max_batch = 64;     // samples per request; a batch is split into requests of at most this many
  std::size_t max_frame_bytes = std::size_t{64} << 20;  // largest request sent and reply accepted (64 MiB, as the
                                                        // wire default, wire::kDefaultMaxFrameBytes)
};

class RemoteGrader final : public Grader {
 public:
  // Throws std::invalid_argument for options that cannot work (no port, no grader name, non-positive limits).
  // Connects lazily: constructing a grader for a server that is not up yet is fine.
  explicit RemoteGrader(RemoteGraderOptions options);
  ~RemoteGrader() override;
  RemoteGrader(const RemoteGrader&) = delete;
  RemoteGrader& operator=(const RemoteGrader&) = delete;

  // "remote:<grader>", e.g. "remote:palindrome".
  std::string_view name() const override;
  GradeResult grade(const GradeInput& input) const override;
  // Splits `inputs` into requests of at most max_batch samples (fewer when the samples are large: each request fits
  // in max_frame_bytes) and sends up to max_in_flight at once. Thread-safe.
  std::vector<GradeResult> grade_batch(std::span<const GradeInput> inputs) const override;

  const RemoteGraderOptions& options() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace grpo::reward
