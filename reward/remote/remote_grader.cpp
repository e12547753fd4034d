// The client side of the remote grader protocol: batching, the connection pool, deadlines and retries, and turning
// every way a server can fail into "cannot score" with a reason.
//
// All network work runs on one Asio thread owned by the grader; grade_batch hands its requests to that thread and
// waits. State shared between requests (the queue, the in-flight count, idle connections, request ids) is touched only
// on that thread, so it needs no locks.
#include "reward/remote/remote_grader.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <exception>
#include <future>
#include <limits>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "reward/remote/grader_service.pb.h"
#include "rollout/wire/frame.h"

namespace grpo::reward {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using wire::Clock;
using Milliseconds = std::chrono::milliseconds;

// Room in a request for what is not an item (request_id, grader name, deadline): the grader name's length plus this.
constexpr std::size_t kRequestOverheadBytes = 32;
// The backoff doubles per retry up to this many doublings, so a large `retries` cannot overflow the duration.
constexpr int kMaxBackoffDoublings = 10;

std::size_t varint_bytes(std::size_t value) {
  std::size_t bytes = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++bytes;
  }
  return bytes;
}

// Bytes of a length-delimited field (tag, length, data); proto3 leaves empty strings out.
std::size_t string_field_bytes(std::string_view text) {
  return text.empty() ? 0 : 1 + varint_bytes(text.size()) + text.size();
}

// What `input` adds to a serialized GradeRequest, computed without copying its strings, so that a batch can be split
// into requests that fit the frame limit before any is built.
std::size_t request_item_bytes(const GradeInput& input) {
  const std::size_t item = string_field_bytes(input.prompt) + string_field_bytes(input.completion) +
                           string_field_bytes(input.reference) + string_field_bytes(input.metadata);
  return 1 + varint_bytes(item) + item;
}

std::string count_attempts(int attempts) { return fmt::format("{} attempt{}", attempts, attempts == 1 ? "" : "s"); }

long long whole_milliseconds(Clock::duration duration) { return std::chrono::ceil<Milliseconds>(duration).count(); }

void validate(const RemoteGraderOptions& options) {
  const std::string where =
      fmt::format("remote grader '{}' at {}", options.grader, wire::format_endpoint(options.host, options.port));
  auto fail = [&](std::string_view problem) { throw std::invalid_argument(fmt::format("{}: {}", where, problem)); };
  if (options.host.empty()) fail("host is empty; set the server's name or address, e.g. \"127.0.0.1\"");
  if (options.port == 0) fail("port is 0; set the port the grader server listens on");
  if (options.grader.empty()) fail("grader is empty; set the name of the grader on the server, e.g. \"math\"");
  if (options.request_timeout <= Milliseconds::zero()) fail("request_timeout must be positive");
  if (options.retries < 0) fail("retries must be 0 or more");
  if (options.retry_backoff < Milliseconds::zero()) fail("retry_backoff must be 0 or more");
  if (options.max_in_flight < 1) fail("max_in_flight must be at least 1");
  if (options.max_batch < 1) fail("max_batch must be at least 1");
  if (options.max_frame_bytes < 1024) fail("max_frame_bytes must be at least 1024");
}

}  // namespace

class RemoteGrader::Impl {
 public:
  explicit Impl(RemoteGraderOptions options)
      : options_(std::move(options)),
        name_("remote:" + options_.grader),
        server_(wire::format_endpoint(options_.host, options_.port)),
        work_(asio::make_work_guard(io_)),
        thread_([this] { run_io(); }) {}

  ~Impl() {
    work_.reset();
    io_.stop();
    thread_.join();
  }

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  const RemoteGraderOptions& options() const { return options_; }
  std::string_view name() const { return name_; }

  std::vector<GradeResult> grade_batch(std::span<const GradeInput> inputs);

 private:
  // One grade_batch call: its inputs, its results (each written by the one request that carries it) and a count of
  // requests still running; the caller waits on `done`.
  struct BatchJob {
    std::span<const GradeInput> inputs;
    std::vector<GradeResult> results;
    std::size_t requests_left = 0;
    std::promise<void> done;
  };

  // One request: inputs [begin, end) of a job.
  struct Chunk {
    BatchJob* job = nullptr;
    std::size_t begin = 0;
    std::size_t end = 0;
  };

  struct AttemptOutcome {
    enum class Status { kOk, kServerError, kFailed };
    Status status = Status::kFailed;
    std::string message = {};  // for kServerError and kFailed
    std::vector<GradeResult> results = {};
  };

  void run_io();
  std::vector<Chunk> split(BatchJob& job) const;
  void pump();
  void finish(const Chunk& chunk, std::exception_ptr error);
  void fail_chunk(const Chunk& chunk, const std::string& reason);
  asio::awaitable<void> run_chunk(Chunk chunk);
  asio::awaitable<AttemptOutcome> attempt(const std::string& payload, std::uint64_t request_id, std::size_t items,
                                          Clock::time_point deadline, Clock::duration budget);
  AttemptOutcome read_reply(std::string_view reply_bytes, std::uint64_t request_id, std::size_t items) const;
  void keep_idle(tcp::socket socket);

  const RemoteGraderOptions options_;
  const std::string name_;
  const std::string server_;  // "HOST:PORT", for reasons

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  // Only on the io thread:
  std::deque<Chunk> pending_;
  int in_flight_ = 0;
  std::vector<tcp::socket> idle_;  // connections in step (the last reply read whole), kept for the next request
  std::uint64_t next_request_id_ = 1;
  std::thread thread_;  // last: it starts running with the members above already constructed
};

void RemoteGrader::Impl::run_io() {
  // Every coroutine catches its own exceptions (see finish), so run() ends only when the grader is destroyed; an
  // exception escaping a handler anyway is reported and the loop goes on rather than leaving callers waiting forever.
  for (;;) {
    try {
      io_.run();
      return;
    } catch (const std::exception& error) {
      fmt::print(stderr, "remote grader {}: unexpected error on the network thread: {}\n", server_, error.what());
    }
  }
}

std::vector<GradeResult> RemoteGrader::Impl::grade_batch(std::span<const GradeInput> inputs) {
  if (inputs.empty()) return {};
  BatchJob job;
  job.inputs = inputs;
  job.results.resize(inputs.size());
  std::vector<Chunk> chunks = split(job);
  job.requests_left = chunks.size();
  std::future<void> done = job.done.get_future();
  asio::post(io_, [this, chunks = std::move(chunks)] {
    pending_.insert(pending_.end(), chunks.begin(), chunks.end());
    pump();
  });
  done.wait();
  return std::move(job.results);
}

// Consecutive runs of at most max_batch inputs whose request fits in max_frame_bytes. An input too large for a
// request on its own gets a request of its own, which run_chunk refuses to send with a reason.
std::vector<RemoteGrader::Impl::Chunk> RemoteGrader::Impl::split(BatchJob& job) const {
  const std::size_t budget =
      options_.max_frame_bytes - std::min(options_.max_frame_bytes, kRequestOverheadBytes + options_.grader.size());
  const auto max_batch = static_cast<std::size_t>(options_.max_batch);
  std::vector<Chunk> chunks;
  std::size_t begin = 0;
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < job.inputs.size(); ++i) {
    const std::size_t item = request_item_bytes(job.inputs[i]);
    if (i > begin && (i - begin == max_batch || bytes + item > budget)) {
      chunks.push_back({.job = &job, .begin = begin, .end = i});
      begin = i;
      bytes = 0;
    }
    bytes += item;
  }
  chunks.push_back({.job = &job, .begin = begin, .end = job.inputs.size()});
  return chunks;
}

void RemoteGrader::Impl::pump() {
  while (in_flight_ < options_.max_in_flight && !pending_.empty()) {
    const Chunk chunk = pending_.front();
    pending_.pop_front();
    ++in_flight_;
    asio::co_spawn(io_, run_chunk(chunk), [this, chunk](std::exception_ptr error) { finish(chunk, error); });
  }
}

void RemoteGrader::Impl::finish(const Chunk& chunk, std::exception_ptr error) {
  if (error) {
    // Not the server's doing (run_chunk turns everything the server does into reasons): memory, or a bug here.
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& exception) {
      fail_chunk(chunk, fmt::format("remote grader {}: internal error: {}", server_, exception.what()));
    } catch (...) {
      fail_chunk(chunk, fmt::format("remote grader {}: internal error (non-standard exception)", server_));
    }
  }
  --in_flight_;
  BatchJob& job = *chunk.job;
  if (--job.requests_left == 0) job.done.set_value();  // the caller may destroy `job` from here on
  pump();
}

void RemoteGrader::Impl::fail_chunk(const Chunk& chunk, const std::string& reason) {
  for (std::size_t i = chunk.begin; i < chunk.end; ++i) {
    chunk.job->results[i] = GradeResult{.score = 0.0, .scorable = false, .reason = reason};
  }
}

asio::awaitable<void> RemoteGrader::Impl::run_chunk(Chunk chunk) {
  BatchJob& job = *chunk.job;
  const std::span<const GradeInput> inputs = job.inputs.subspan(chunk.begin, chunk.end - chunk.begin);

  wire::GradeRequest request;
  request.set_grader(options_.grader);
  Clock::time_point samples_deadline = wire::kNoDeadline;
  for (const GradeInput& input : inputs) {
    wire::GradeItem& item = *request.add_items();
    item.set_prompt(std::string(input.prompt));
    item.set_completion(std::string(input.completion));
    item.set_reference(std::string(input.reference));
    item.set_metadata(std::string(input.metadata));
    samples_deadline = std::min(samples_deadline, input.deadline);
  }

  const int max_attempts = options_.retries + 1;
  int attempts = 0;
  std::string failure;
  bool out_of_time = false;
  for (;;) {
    const Clock::time_point now = Clock::now();
    if (now >= samples_deadline) {
      out_of_time = true;
      break;
    }
    const Clock::time_point deadline =
        samples_deadline - now < options_.request_timeout ? samples_deadline : now + options_.request_timeout;
    const std::uint64_t request_id = next_request_id_++;
    request.set_request_id(request_id);
    request.set_deadline_ms(static_cast<std::uint32_t>(
        std::clamp<long long>(whole_milliseconds(deadline - now), 1, std::numeric_limits<std::uint32_t>::max())));
    std::string payload;
    try {
      payload = wire::serialize_payload(request, options_.max_frame_bytes);
    } catch (const wire::WireError& error) {
      fail_chunk(chunk, fmt::format("remote grader {}: the {} too large to send: {} (max_frame_bytes)", server_,
                                    inputs.size() == 1 ? "sample is" : "samples are", error.what()));
      co_return;
    }

    ++attempts;
    AttemptOutcome outcome = co_await attempt(payload, request_id, inputs.size(), deadline, deadline - now);
    if (outcome.status == AttemptOutcome::Status::kOk) {
      std::move(outcome.results.begin(), outcome.results.end(),
                job.results.begin() + static_cast<std::ptrdiff_t>(chunk.begin));
      co_return;
    }
    if (outcome.status == AttemptOutcome::Status::kServerError) {
      // The server understood the request and refused it (unknown grader, the grader failing as a whole): asking
      // again would get the same answer.
      fail_chunk(chunk, fmt::format("remote grader {}: server error: {}", server_, outcome.message));
      co_return;
    }
    failure = std::move(outcome.message);
    if (attempts >= max_attempts) break;

    const auto backoff = options_.retry_backoff * (1 << std::min(attempts - 1, kMaxBackoffDoublings));
    if (samples_deadline - Clock::now() <= backoff) {
      out_of_time = true;
      break;
    }
    asio::steady_timer timer(co_await asio::this_coro::executor, backoff);
    co_await timer.async_wait(asio::use_awaitable);
  }

  if (attempts == 0) {
    fail_chunk(chunk,
               fmt::format("remote grader {}: the samples' deadline passed before the request was sent", server_));
  } else if (out_of_time) {
    fail_chunk(chunk, fmt::format("remote grader {}: {} ({}; the samples' deadline left no time for more)", server_,
                                  failure, count_attempts(attempts)));
  } else {
    fail_chunk(chunk, fmt::format("remote grader {}: {} ({})", server_, failure, count_attempts(attempts)));
  }
}

// One request and its reply on one connection: a pooled one when there is one, else a new one.
asio::awaitable<RemoteGrader::Impl::AttemptOutcome> RemoteGrader::Impl::attempt(const std::string& payload,
                                                                                std::uint64_t request_id,
                                                                                std::size_t items,
                                                                                Clock::time_point deadline,
                                                                                Clock::duration budget) {
  const auto failed = [](std::string message) {
    return AttemptOutcome{.status = AttemptOutcome::Status::kFailed, .message = std::move(message)};
  };
  for (;;) {
    const bool reused = !idle_.empty();
    std::optional<tcp::socket> socket;
    if (reused) {
      socket.emplace(std::move(idle_.back()));
      idle_.pop_back();
    } else {
      std::optional<wire::WireError> connect_error;
      try {
        socket.emplace(co_await wire::async_connect(options_.host, options_.port, deadline));
      } catch (const wire::WireError& error) {
        connect_error = error;
      }
      if (connect_error) {
        if (connect_error->kind() == wire::WireErrorKind::kTimeout) {
          co_return failed(fmt::format("could not connect within {} ms", whole_milliseconds(budget)));
        }
        co_return failed(connect_error->what());
      }
    }

    std::string reply_bytes;
    std::optional<wire::WireError> wire_error;
    try {
      co_await wire::async_write_frame(*socket, payload, options_.max_frame_bytes, deadline);
      reply_bytes = co_await wire::async_read_frame(*socket, options_.max_frame_bytes, deadline);
    } catch (const wire::WireError& error) {
      wire_error = error;
    }
    if (!wire_error) {
      AttemptOutcome outcome = read_reply(reply_bytes, request_id, items);
      // A reply that was read whole leaves the connection in step, whatever it said.
      if (outcome.status != AttemptOutcome::Status::kFailed) keep_idle(std::move(*socket));
      co_return outcome;
    }

    switch (wire_error->kind()) {
      case wire::WireErrorKind::kClosed:
      case wire::WireErrorKind::kIo:
        // A pooled connection the server has closed since (idle timeout, restart) fails like this before it has
        // carried anything: try again on a new connection, without counting it as an attempt.
        if (reused) continue;
        if (wire_error->kind() == wire::WireErrorKind::kClosed) co_return failed("connection closed before a reply");
        co_return failed(wire_error->what());
      case wire::WireErrorKind::kTimeout:
        co_return failed(fmt::format("no reply within {} ms", whole_milliseconds(budget)));
      case wire::WireErrorKind::kBadMagic:
      case wire::WireErrorKind::kFrameTooLarge:
      case wire::WireErrorKind::kBadPayload:
        co_return failed(fmt::format("garbage reply: {}", wire_error->what()));
      case wire::WireErrorKind::kTruncated:
      case wire::WireErrorKind::kConnectFailed:
        co_return failed(wire_error->what());
    }
    co_return failed(wire_error->what());
  }
}

RemoteGrader::Impl::AttemptOutcome RemoteGrader::Impl::read_reply(std::string_view reply_bytes,
                                                                  std::uint64_t request_id, std::size_t items) const {
  const auto garbage = [](std::string message) {
    return AttemptOutcome{.status = AttemptOutcome::Status::kFailed, .message = "garbage reply: " + message};
  };
  wire::GradeReply reply;
  try {
    wire::parse_payload(reply_bytes, reply);
  } catch (const wire::WireError& error) {
    return garbage(error.what());
  }
  // request_id 0 with an error: the server could not read the request at all (e.g. over its frame limit).
  if (reply.request_id() != request_id && !(reply.request_id() == 0 && !reply.error().empty())) {
    return garbage(fmt::format("request_id {} does not match the request's {}", reply.request_id(), request_id));
  }
  if (!reply.error().empty()) {
    return AttemptOutcome{.status = AttemptOutcome::Status::kServerError, .message = reply.error()};
  }
  if (static_cast<std::size_t>(reply.results_size()) != items) {
    return garbage(fmt::format("{} results for {} samples", reply.results_size(), items));
  }
  AttemptOutcome outcome{.status = AttemptOutcome::Status::kOk};
  outcome.results.reserve(items);
  for (int i = 0; i < reply.results_size(); ++i) {
    wire::GradeItemResult& item = *reply.mutable_results(i);
    if (!std::isfinite(item.score())) return garbage(fmt::format("score of sample {} is {}", i, item.score()));
    GradeResult result{.score = item.score(),
                       .scorable = !item.cannot_score(),
                       .extracted = std::move(*item.mutable_extracted()),
                       .reason = std::move(*item.mutable_reason())};
    for (wire::Component& component : *item.mutable_components()) {
      result.components.push_back({.name = std::move(*component.mutable_name()), .score = component.score()});
    }
    for (wire::TestOutcome& test : *item.mutable_tests()) {
      result.tests.push_back({.verdict = std::move(*test.mutable_verdict()),
                              .detail = std::move(*test.mutable_detail()),
                              .seconds = test.seconds()});
    }
    outcome.results.push_back(std::move(result));
  }
  return outcome;
}

void RemoteGrader::Impl::keep_idle(tcp::socket socket) {
  // Up to one idle connection per possible request in flight; more would never be used at once.
  if (idle_.size() < static_cast<std::size_t>(options_.max_in_flight)) idle_.push_back(std::move(socket));
}

RemoteGrader::RemoteGrader(RemoteGraderOptions options) {
  validate(options);
  impl_ = std::make_unique<Impl>(std::move(options));
}

RemoteGrader::~RemoteGrader() = default;

std::string_view RemoteGrader::name() const { return impl_->name(); }

GradeResult RemoteGrader::grade(const GradeInput& input) const {
  std::vector<GradeResult> results = impl_->grade_batch(std::span(&input, 1));
  return std::move(results.front());
}

std::vector<GradeResult> RemoteGrader::grade_batch(std::span<const GradeInput> inputs) const {
  return impl_->grade_batch(inputs);
}

const RemoteGraderOptions& RemoteGrader::options() const { return impl_->options(); }

}  // namespace grpo::reward
