// Remote graders: the grpo wire framing, GraderServer and RemoteGrader together, RemoteGrader against servers that
// misbehave in each way a real one can (garbage, hang-ups, silence, wrong answers), GraderServer against clients that
// send garbage, and the Python example server.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <future>
#include <limits>
#include <mutex>
#include <optional>
#include <ostream>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "reward/grader.h"
#include "reward/grader_registry.h"
#include "reward/remote/grader_server.h"
#include "reward/remote/grader_service.pb.h"
#include "reward/remote/remote_grader.h"
#include "rollout/wire/frame.h"

extern char** environ;

namespace grpo::reward {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// ---- POSIX socket helpers: the misbehaving peers are written without Asio, byte by byte --------------------------

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    reset(std::exchange(other.fd_, -1));
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

Fd listen_loopback(std::uint16_t& port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM, 0));
  if (fd.get() < 0) throw std::runtime_error("socket() failed");
  sockaddr_in address = loopback(0);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(fd.get(), 16) != 0) {
    throw std::runtime_error(fmt::format("cannot listen on 127.0.0.1: {}", std::strerror(errno)));
  }
  socklen_t length = sizeof address;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length);
  port = ntohs(address.sin_port);
  return fd;
}

Fd connect_loopback(std::uint16_t port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM, 0));
  const sockaddr_in address = loopback(port);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    throw std::runtime_error(fmt::format("cannot connect to 127.0.0.1:{}: {}", port, std::strerror(errno)));
  }
  return fd;
}

// A port nothing listens on: bound, then closed again.
std::uint16_t unused_port() {
  std::uint16_t port = 0;
  listen_loopback(port);
  return port;
}

void send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t sent = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent <= 0) return;  // the other side is gone; the test looks at what it saw
    bytes.remove_prefix(static_cast<std::size_t>(sent));
  }
}

bool recv_exact(int fd, char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t got = ::recv(fd, data, size, 0);
    if (got <= 0) return false;
    data += got;
    size -= static_cast<std::size_t>(got);
  }
  return true;
}

// One frame's payload, or nothing when the connection ends first.
std::optional<std::string> recv_frame(int fd) {
  std::array<char, wire::kFrameHeaderBytes> header{};
  if (!recv_exact(fd, header.data(), header.size())) return std::nullopt;
  std::string payload(wire::decode_frame_header(header), '\0');
  if (!recv_exact(fd, payload.data(), payload.size())) return std::nullopt;
  return payload;
}

// True when the peer has closed the connection (recv sees end of stream or a reset) within `timeout`.
bool closed_by_peer(int fd, std::chrono::milliseconds timeout) {
  pollfd entry{.fd = fd, .events = POLLIN, .revents = 0};
  if (::poll(&entry, 1, static_cast<int>(timeout.count())) <= 0) return false;
  char byte = 0;
  return ::recv(fd, &byte, 1, 0) <= 0;
}

// The tests link GoogleTest without GoogleMock: this stands in for EXPECT_THAT(text, HasSubstr(part)).
testing::AssertionResult contains(std::string_view text, std::string_view part) {
  if (text.find(part) != std::string_view::npos) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

double elapsed_ms(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// A client of a test server: short timeouts and backoff, so failure paths run in milliseconds.
RemoteGraderOptions client_options(std::uint16_t port, std::string grader = "anything") {
  return {.host = "127.0.0.1",
          .port = port,
          .grader = std::move(grader),
          .request_timeout = 200ms,
          .retries = 2,
          .retry_backoff = 10ms};
}

// ---- Framing --------------------------------------------------------------------------------------------------

TEST(WireFrame, EncodesMagicAndLittleEndianLength) {
  const std::string frame = wire::encode_frame("abc");
  EXPECT_EQ(frame, std::string("GRPW\x03\x00\x00\x00", 8) + "abc");
  EXPECT_EQ(wire::decode_frame_header(frame), 3u);
  EXPECT_EQ(wire::decode_frame_header(wire::encode_frame(std::string(70000, 'x'))), 70000u);
  EXPECT_EQ(wire::decode_frame_header(wire::encode_frame("")), 0u);
}

TEST(WireFrame, RejectsBadMagicNamingWhatArrived) {
  try {
    wire::decode_frame_header(std::string_view("HTTP/1.1"));
    FAIL() << "no exception";
  } catch (const wire::WireError& error) {
    EXPECT_EQ(error.kind(), wire::WireErrorKind::kBadMagic);
    EXPECT_STREQ(error.what(), "peer sent 'HTTP' where a grpo frame starts (is this a grpo port?)");
  }
  try {
    wire::decode_frame_header(std::string_view("\x16\x03\x01\x02\x00\x01\x00\x01", 8));  // a TLS hello
    FAIL() << "no exception";
  } catch (const wire::WireError& error) {
    EXPECT_TRUE(contains(error.what(), "'\\x16\\x03\\x01\\x02'"));
  }
}

TEST(WireFrame, RejectsOversizedLengthBeforeReading) {
  try {
    wire::decode_frame_header(std::string_view("GRPW\xff\xff\xff\xff", 8));
    FAIL() << "no exception";
  } catch (const wire::WireError& error) {
    EXPECT_EQ(error.kind(), wire::WireErrorKind::kFrameTooLarge);
    EXPECT_STREQ(error.what(), "frame of 4294967295 bytes exceeds the 67108864-byte limit");
  }
  EXPECT_THROW(wire::decode_frame_header(wire::encode_frame(std::string(2000, 'x')), 1999), wire::WireError);
  EXPECT_THROW(wire::encode_frame(std::string(2000, 'x'), 1999), wire::WireError);
}

TEST(WireFrame, ParsesAndSerializesMessages) {
  wire::GradeRequest request;
  request.set_request_id(7);
  request.set_grader("math");
  request.add_items()->set_completion("\\boxed{4}");
  wire::GradeRequest parsed;
  wire::parse_payload(wire::serialize_payload(request), parsed);
  EXPECT_EQ(parsed.request_id(), 7u);
  EXPECT_EQ(parsed.items(0).completion(), "\\boxed{4}");
  try {
    wire::parse_payload(std::string_view("\xff\xff\xff", 3), parsed);
    FAIL() << "no exception";
  } catch (const wire::WireError& error) {
    EXPECT_EQ(error.kind(), wire::WireErrorKind::kBadPayload);
    EXPECT_STREQ(error.what(), "frame payload of 3 bytes is not a valid grpo.wire.GradeRequest message");
  }
  EXPECT_THROW(wire::serialize_payload(request, 4), wire::WireError);
}

struct ReadOutcome {
  std::optional<std::string> payload;
  std::optional<wire::WireError> error;
  double ms = 0;
};

// async_read_frame on a connection whose peer sends `bytes`, then closes (`then_close`) or waits for the read to end.
ReadOutcome read_frame_from_peer(std::string bytes, bool then_close, std::size_t max_frame_bytes = 1 << 20,
                                 std::chrono::milliseconds timeout = 2000ms) {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const std::uint16_t port = acceptor.local_endpoint().port();
  std::promise<void> read_done;
  std::thread peer([&, done = read_done.get_future()] {
    Fd fd = connect_loopback(port);
    send_all(fd.get(), bytes);
    if (!then_close) done.wait();
  });
  tcp::socket socket = acceptor.accept();
  ReadOutcome outcome;
  const Clock::time_point start = Clock::now();
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        try {
          outcome.payload = co_await wire::async_read_frame(socket, max_frame_bytes, Clock::now() + timeout);
        } catch (const wire::WireError& error) {
          outcome.error = error;
        }
      },
      asio::detached);
  io.run();
  outcome.ms = elapsed_ms(start);
  read_done.set_value();
  peer.join();
  return outcome;
}

TEST(WireFrame, AsyncReadAndWriteRoundTrip) {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const std::uint16_t port = acceptor.local_endpoint().port();
  const std::vector<std::string> payloads = {"hello", "", std::string(3 << 20, 'z')};
  std::vector<std::string> received;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
        for (std::size_t i = 0; i < payloads.size(); ++i) {
          received.push_back(co_await wire::async_read_frame(socket, wire::kDefaultMaxFrameBytes, Clock::now() + 5s));
        }
      },
      asio::detached);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        tcp::socket socket = co_await wire::async_connect("127.0.0.1", port, Clock::now() + 5s);
        for (const std::string& payload : payloads) {
          co_await wire::async_write_frame(socket, payload, wire::kDefaultMaxFrameBytes, Clock::now() + 5s);
        }
      },
      asio::detached);
  io.run();
  EXPECT_EQ(received, payloads);
}

TEST(WireFrame, AsyncReadReportsEachMalformedStream) {
  ReadOutcome outcome = read_frame_from_peer(wire::encode_frame("payload"), true);
  EXPECT_EQ(outcome.payload, "payload");

  outcome = read_frame_from_peer("", true);
  ASSERT_TRUE(outcome.error);
  EXPECT_EQ(outcome.error->kind(), wire::WireErrorKind::kClosed);

  outcome = read_frame_from_peer("GRP", true);
  ASSERT_TRUE(outcome.error);
  EXPECT_EQ(outcome.error->kind(), wire::WireErrorKind::kTruncated);
  EXPECT_STREQ(outcome.error->what(), "connection closed after 3 of 8 header bytes");

  outcome = read_frame_from_peer(wire::encode_frame("0123456789").substr(0, 12), true);
  ASSERT_TRUE(outcome.error);
  EXPECT_EQ(outcome.error->kind(), wire::WireErrorKind::kTruncated);
  EXPECT_STREQ(outcome.error->what(), "connection closed after 4 of 10 payload bytes");

  outcome = read_frame_from_peer(std::string("GRPW\xff\xff\xff\xff", 8), false);
  ASSERT_TRUE(outcome.error);
  EXPECT_EQ(outcome.error->kind(), wire::WireErrorKind::kFrameTooLarge);
  EXPECT_STREQ(outcome.error->what(), "frame of 4294967295 bytes exceeds the 1048576-byte limit");

  // Caught on the first bytes, although the peer then waits (as an HTTP client would), long before the deadline.
  outcome = read_frame_from_peer("GE", false);
  ASSERT_TRUE(outcome.error);
  EXPECT_EQ(outcome.error->kind(), wire::WireErrorKind::kBadMagic);
  EXPECT_STREQ(outcome.error->what(), "peer sent 'GE' where a grpo frame starts (is this a grpo port?)");
  EXPECT_LT(outcome.ms, 1000);

  outcome = read_frame_from_peer("GRPW\x05", false, 1 << 20, 100ms);
  ASSERT_TRUE(outcome.error);
  EXPECT_EQ(outcome.error->kind(), wire::WireErrorKind::kTimeout);
  EXPECT_TRUE(contains(outcome.error->what(), "5 of 8 header bytes received"));
  EXPECT_GE(outcome.ms, 90);
  EXPECT_LT(outcome.ms, 1000);
}

TEST(WireFrame, AsyncConnectReportsRefusal) {
  asio::io_context io;
  std::optional<wire::WireError> failure;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        try {
          co_await wire::async_connect("127.0.0.1", unused_port(), Clock::now() + 2s);
        } catch (const wire::WireError& error) {
          failure = error;
        }
      },
      asio::detached);
  io.run();
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->kind(), wire::WireErrorKind::kConnectFailed);
  EXPECT_TRUE(contains(failure->what(), "cannot connect: Connection refused"));
}

// ---- GraderServer and RemoteGrader together ---------------------------------------------------------------------

// Scores 1 when the completion equals the reference; counts batches and how many are graded at once, and can be
// slowed down, to check the client's batching and concurrency limit.
class EchoGrader final : public Grader {
 public:
  explicit EchoGrader(std::chrono::milliseconds delay = 0ms) : delay_(delay) {}
  std::string_view name() const override { return "echo"; }
  GradeResult grade(const GradeInput& input) const override {
    const bool same = input.completion == input.reference;
    return {.score = same ? 1.0 : 0.0,
            .extracted = std::string(input.completion),
            .reason = same ? "" : "differs",
            .components = {{.name = "same", .score = same ? 1.0 : 0.0}}};
  }
  std::vector<GradeResult> grade_batch(std::span<const GradeInput> inputs) const override {
    const int now_active = ++active_;
    int seen = max_active_.load();
    while (now_active > seen && !max_active_.compare_exchange_weak(seen, now_active)) {
    }
    ++batches_;
    largest_batch_ = std::max(largest_batch_.load(), inputs.size());
    std::this_thread::sleep_for(delay_);
    std::vector<GradeResult> results = Grader::grade_batch(inputs);
    --active_;
    return results;
  }
  int batches() const { return batches_; }
  int max_active() const { return max_active_; }
  std::size_t largest_batch() const { return largest_batch_; }

 private:
  std::chrono::milliseconds delay_;
  mutable std::atomic<int> active_{0};
  mutable std::atomic<int> max_active_{0};
  mutable std::atomic<int> batches_{0};
  mutable std::atomic<std::size_t> largest_batch_{0};
};

// A grader that fails as a whole, and one that returns a NaN score.
class ThrowingGrader final : public Grader {
 public:
  std::string_view name() const override { return "thrower"; }
  GradeResult grade(const GradeInput&) const override { return {}; }
  std::vector<GradeResult> grade_batch(std::span<const GradeInput>) const override {
    throw std::runtime_error("checker crashed");
  }
};

class NanGrader final : public Grader {
 public:
  std::string_view name() const override { return "nan"; }
  GradeResult grade(const GradeInput&) const override { return {.score = std::numeric_limits<double>::quiet_NaN()}; }
};

// Log lines a server wrote, kept for assertions.
class LogCapture {
 public:
  std::function<void(std::string_view)> sink() {
    return [this](std::string_view line) {
      const std::lock_guard lock(mutex_);
      lines_.emplace_back(line);
    };
  }
  std::string text() const {
    const std::lock_guard lock(mutex_);
    return fmt::format("{}", fmt::join(lines_, "\n"));
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

// A GraderServer on an ephemeral loopback port serving "math" (from the registry), "echo", "slow_echo", "thrower"
// and "nan", counting lookups.
class ServerFixture : public testing::Test {
 protected:
  void SetUp() override {
    GraderServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.log = log_.sink();
    GraderLookup registry = registered_grader_lookup();
    server_ = std::make_unique<GraderServer>(options, [this, registry](std::string_view name) -> const Grader* {
      ++lookups_;
      if (name == "echo") return &echo_;
      if (name == "slow_echo") return &slow_echo_;
      if (name == "thrower") return &thrower_;
      if (name == "nan") return &nan_;
      return registry(name);
    });
    server_->start();
  }

  RemoteGraderOptions options(std::string grader) const {
    return {.host = "127.0.0.1",
            .port = server_->port(),
            .grader = std::move(grader),
            .request_timeout = 5000ms,
            .retries = 2,
            .retry_backoff = 10ms};
  }

  LogCapture log_;
  EchoGrader echo_;
  EchoGrader slow_echo_{30ms};
  ThrowingGrader thrower_;
  NanGrader nan_;
  std::atomic<int> lookups_{0};
  std::unique_ptr<GraderServer> server_;
};

TEST_F(ServerFixture, LogsWhereItListens) {
  EXPECT_TRUE(contains(log_.text(), fmt::format("grader server listening on 127.0.0.1:{}", server_->port())));
}

TEST_F(ServerFixture, MathGraderGivesTheSameResultsRemotelyAsLocally) {
  const std::vector<std::pair<std::string, std::string>> cases = {{"\\boxed{4}", "4"},
                                                                  {"\\boxed{5}", "4"},
                                                                  {"the answer is \\boxed{1/2}", "0.5"},
                                                                  {"no answer here", "4"},
                                                                  {"\\boxed{4}", "not a number ((("},
                                                                  {"\\boxed{\\frac{3}{6}}", "1/2"}};
  std::vector<GradeInput> inputs;
  for (int repeat = 0; repeat < 25; ++repeat) {  // 150 samples: several requests of max_batch
    for (const auto& [completion, reference] : cases)
      inputs.push_back({.completion = completion, .reference = reference});
  }
  RemoteGraderOptions remote_options = options("math");
  remote_options.max_batch = 16;
  const RemoteGrader remote(remote_options);
  EXPECT_EQ(remote.name(), "remote:math");
  const std::vector<GradeResult> remote_results = remote.grade_batch(inputs);
  const std::vector<GradeResult> local_results = make_grader("math")->grade_batch(inputs);
  ASSERT_EQ(remote_results.size(), inputs.size());
  EXPECT_EQ(remote_results[0].score, 1.0);
  EXPECT_TRUE(remote_results[0].scorable);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    SCOPED_TRACE(fmt::format("sample {}: {} vs {}", i, inputs[i].completion, inputs[i].reference));
    EXPECT_EQ(remote_results[i].score, local_results[i].score);
    EXPECT_EQ(remote_results[i].scorable, local_results[i].scorable);
    EXPECT_EQ(remote_results[i].extracted, local_results[i].extracted);
    EXPECT_EQ(remote_results[i].reason, local_results[i].reason);
  }
}

TEST_F(ServerFixture, SplitsBatchesAndKeepsAtMostMaxInFlightRequests) {
  std::vector<std::string> texts;
  for (int i = 0; i < 100; ++i) texts.push_back(fmt::format("sample {}", i));
  std::vector<GradeInput> inputs;
  for (int i = 0; i < 100; ++i) {
    inputs.push_back({.completion = texts[i], .reference = i % 3 == 0 ? std::string_view(texts[i]) : ""});
  }
  RemoteGraderOptions remote_options = options("slow_echo");
  remote_options.max_batch = 8;
  remote_options.max_in_flight = 3;
  const RemoteGrader remote(remote_options);
  const std::vector<GradeResult> results = remote.grade_batch(inputs);
  ASSERT_EQ(results.size(), 100u);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(results[i].score, i % 3 == 0 ? 1.0 : 0.0) << i;
    EXPECT_EQ(results[i].extracted, texts[i]);
    ASSERT_EQ(results[i].components.size(), 1u);
    EXPECT_EQ(results[i].components[0].name, "same");
  }
  EXPECT_EQ(slow_echo_.batches(), 13);  // ceil(100 / 8)
  EXPECT_EQ(slow_echo_.largest_batch(), 8u);
  EXPECT_LE(slow_echo_.max_active(), 3);
  EXPECT_GE(slow_echo_.max_active(), 2);
}

TEST_F(ServerFixture, SplitsRequestsToFitTheFrameLimit) {
  const std::string big(3000, 'x');
  std::vector<GradeInput> inputs(10, GradeInput{.completion = big, .reference = big});
  RemoteGraderOptions remote_options = options("echo");
  remote_options.max_frame_bytes = 16 * 1024;  // about 2 samples per request (each is sent with its reference)
  const RemoteGrader remote(remote_options);
  const std::vector<GradeResult> results = remote.grade_batch(inputs);
  for (const GradeResult& result : results) EXPECT_EQ(result.score, 1.0) << result.reason;
  EXPECT_GE(echo_.batches(), 4);

  // A sample too large for any request cannot be scored, and says why; the others are graded.
  const std::string huge(20 * 1024, 'y');
  inputs[3] = {.completion = huge, .reference = huge};
  const std::vector<GradeResult> mixed = remote.grade_batch(inputs);
  EXPECT_FALSE(mixed[3].scorable);
  EXPECT_TRUE(contains(mixed[3].reason, "exceeds the 16384-byte limit"));
  EXPECT_EQ(mixed[2].score, 1.0);
  EXPECT_EQ(mixed[4].score, 1.0);
}

TEST_F(ServerFixture, ConcurrentCallersShareOneGrader) {
  const RemoteGrader remote(options("echo"));
  std::vector<std::thread> callers;
  std::atomic<int> correct{0};
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&, t] {
      const std::string text = fmt::format("caller {}", t);
      const std::vector<GradeInput> inputs(40, GradeInput{.completion = text, .reference = text});
      for (const GradeResult& result : remote.grade_batch(inputs)) correct += result.score == 1.0 ? 1 : 0;
    });
  }
  for (std::thread& caller : callers) caller.join();
  EXPECT_EQ(correct, 160);
}

TEST_F(ServerFixture, UnknownGraderIsCannotScoreWithTheServersErrorAndNoRetry) {
  const RemoteGrader remote(options("no_such_grader"));
  const std::vector<GradeInput> inputs(3, GradeInput{.completion = "x"});
  const std::vector<GradeResult> results = remote.grade_batch(inputs);
  for (const GradeResult& result : results) {
    EXPECT_FALSE(result.scorable);
    EXPECT_TRUE(contains(result.reason, fmt::format("remote grader 127.0.0.1:{}: server error: unknown grader "
                                                    "'no_such_grader'; registered graders: ",
                                                    server_->port())));
  }
  EXPECT_EQ(lookups_, 1);
}

TEST_F(ServerFixture, GraderFailuresOnTheServerAreCannotScore) {
  const GradeResult thrown = RemoteGrader(options("thrower")).grade({.completion = "x"});
  EXPECT_FALSE(thrown.scorable);
  EXPECT_TRUE(contains(thrown.reason, "server error: grader 'thrower' failed: checker crashed"));
  EXPECT_TRUE(contains(log_.text(), "grader 'thrower' failed: checker crashed"));

  const GradeResult nan = RemoteGrader(options("nan")).grade({.completion = "x"});
  EXPECT_FALSE(nan.scorable);
  EXPECT_TRUE(contains(nan.reason, "grader 'nan' returned a non-finite score (nan)"));
}

// What a raw client sees when it sends `bytes` to the server: the error reply, if any, and whether the server then
// closed the connection.
struct GarbageOutcome {
  std::string error;
  bool closed = false;
};

GarbageOutcome send_garbage(std::uint16_t port, std::string_view bytes) {
  Fd fd = connect_loopback(port);
  send_all(fd.get(), bytes);
  GarbageOutcome outcome;
  if (const std::optional<std::string> payload = recv_frame(fd.get())) {
    wire::GradeReply reply;
    wire::parse_payload(*payload, reply);
    outcome.error = reply.error();
  }
  outcome.closed = closed_by_peer(fd.get(), 2000ms);
  return outcome;
}

TEST_F(ServerFixture, ClosesGarbageConnectionsWithAnErrorAndServesOthers) {
  // A client already connected and idle is not disturbed by the garbage on other connections.
  const RemoteGrader remote(options("echo"));
  EXPECT_EQ(remote.grade({.completion = "a", .reference = "a"}).score, 1.0);

  GarbageOutcome outcome = send_garbage(server_->port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(contains(outcome.error, "peer sent 'GET ' where a grpo frame starts (is this a grpo port?)"));
  EXPECT_TRUE(outcome.closed);

  outcome = send_garbage(server_->port(), std::string("GRPW\xff\xff\xff\xff", 8));
  EXPECT_TRUE(contains(outcome.error, "frame of 4294967295 bytes exceeds the 67108864-byte limit"));
  EXPECT_TRUE(outcome.closed);

  outcome = send_garbage(server_->port(), wire::encode_frame(std::string_view("\xff\xff\xff", 3)));
  EXPECT_TRUE(contains(outcome.error, "is not a valid grpo.wire.GradeRequest message"));
  EXPECT_TRUE(outcome.closed);

  {  // half a frame, then gone
    Fd fd = connect_loopback(server_->port());
    send_all(fd.get(), "GRPW\x10");
  }

  const std::vector<GradeInput> inputs(5, GradeInput{.completion = "b", .reference = "b"});
  for (const GradeResult& result : remote.grade_batch(inputs)) EXPECT_EQ(result.score, 1.0) << result.reason;
  EXPECT_EQ(RemoteGrader(options("echo")).grade({.completion = "c", .reference = "c"}).score, 1.0);
  const std::string log = log_.text();
  EXPECT_TRUE(contains(log,
                       "peer sent 'GET ' where a grpo frame starts (is this a grpo port?); closing the "
                       "connection"));
  EXPECT_TRUE(contains(log, "exceeds the 67108864-byte limit; closing the connection"));
}

TEST_F(ServerFixture, StopClosesConnectionsAndClientsThenCannotScore) {
  RemoteGraderOptions remote_options = options("echo");
  remote_options.retries = 1;
  const RemoteGrader remote(remote_options);
  EXPECT_EQ(remote.grade({.completion = "a", .reference = "a"}).score, 1.0);  // leaves a pooled connection
  server_->stop();
  server_->stop();  // idempotent
  const GradeResult result = remote.grade({.completion = "a", .reference = "a"});
  EXPECT_FALSE(result.scorable);
  EXPECT_TRUE(contains(result.reason, "cannot connect: Connection refused (2 attempts)"));
}

TEST(GraderServer, SaysWhyItCannotListen) {
  std::uint16_t port = 0;
  const Fd taken = listen_loopback(port);
  GraderServer server({.host = "127.0.0.1", .port = port}, registered_grader_lookup());
  try {
    server.start();
    FAIL() << "no exception";
  } catch (const std::runtime_error& error) {
    EXPECT_TRUE(
        contains(error.what(), fmt::format("grader server: cannot listen on 127.0.0.1:{}: bind failed: ", port)));
    EXPECT_TRUE(contains(error.what(), "pick another port, or 0 for any free one"));
  }
}

TEST(GraderServerCommand, ServesRegisteredGradersUntilSigterm) {
  std::promise<std::string> listening;
  LogCapture log;
  GraderServerOptions options;
  options.port = 0;
  options.graders = {"math"};
  std::atomic<bool> announced{false};  // the sink is copied into the server, so the flag lives out here
  options.log = [&, sink = log.sink()](std::string_view line) {
    sink(line);
    if (!announced.exchange(true)) listening.set_value(std::string(line));
  };
  std::atomic<int> exit_code{-1};
  std::thread command([&] {
    try {
      exit_code = run_grader_server(options);
    } catch (const std::exception& error) {
      if (!announced.exchange(true)) listening.set_value(error.what());
    }
  });
  std::future<std::string> first_line = listening.get_future();
  const bool started = first_line.wait_for(10s) == std::future_status::ready;
  const std::string line = started ? first_line.get() : "";
  std::optional<GradeResult> math;
  std::optional<GradeResult> format;
  if (line.starts_with("grader server listening on 127.0.0.1:")) {
    const auto port = static_cast<std::uint16_t>(std::stoi(line.substr(line.rfind(':') + 1)));
    math = RemoteGrader(client_options(port, "math")).grade({.completion = "\\boxed{4}", .reference = "4"});
    format = RemoteGrader(client_options(port, "format")).grade({.completion = "x"});
  }
  // Unless run_grader_server threw (and has returned), its handler is installed by now and catches the signal.
  const bool threw = started && !line.starts_with("grader server listening");
  if (!threw) ::kill(::getpid(), SIGTERM);
  command.join();

  ASSERT_TRUE(started);
  ASSERT_TRUE(math) << line;
  EXPECT_EQ(math->score, 1.0) << math->reason;
  EXPECT_FALSE(format->scorable);
  EXPECT_TRUE(contains(format->reason, "server error: this server does not serve grader 'format'; it serves: math"));
  EXPECT_EQ(exit_code, 0);
  EXPECT_TRUE(contains(log.text(), "grader server: SIGTERM received; stopping"));
}

TEST(GraderServerCommand, RefusesUnknownGraderNamesAtStart) {
  GraderServerOptions options;
  options.port = 0;
  options.graders = {"math", "no_such_grader"};
  try {
    run_grader_server(options);
    FAIL() << "no exception";
  } catch (const std::invalid_argument& error) {
    EXPECT_TRUE(contains(error.what(), "grader server: unknown grader 'no_such_grader'; registered graders: "));
  }
}

// ---- RemoteGrader against misbehaving servers -------------------------------------------------------------------

enum class Misbehaviour { kGood, kGarbage, kCloseMidFrame, kCloseWithoutReply, kSilent, kWrongId, kNaN, kWrongCount };

// A grader server written with plain sockets that reads requests properly and answers them in a chosen wrong way:
// the next `times` requests misbehave as told (all of them when negative), later ones get a good answer (score 1
// for every sample, the completion as `extracted`).
class FakeServer {
 public:
  FakeServer() : listener_(listen_loopback(port_)), acceptor_([this] { accept_loop(); }) {}

  ~FakeServer() {
    stopping_ = true;
    acceptor_.join();
    const std::lock_guard lock(mutex_);
    for (const int fd : connection_fds_) ::shutdown(fd, SHUT_RDWR);  // wakes handlers blocked in recv
    for (std::thread& handler : handlers_) handler.join();
  }

  std::uint16_t port() const { return port_; }
  int requests() const { return requests_; }
  int connections() const { return connections_; }

  void misbehave(Misbehaviour mode, int times = -1) {
    const std::lock_guard lock(mutex_);
    mode_ = mode;
    times_left_ = times;
  }

 private:
  void accept_loop() {
    while (!stopping_) {
      pollfd entry{.fd = listener_.get(), .events = POLLIN, .revents = 0};
      if (::poll(&entry, 1, 20) <= 0) continue;
      const int fd = ::accept(listener_.get(), nullptr, nullptr);
      if (fd < 0) continue;
      ++connections_;
      const std::lock_guard lock(mutex_);
      connection_fds_.push_back(fd);
      handlers_.emplace_back([this, fd] { serve(fd); });
    }
  }

  Misbehaviour next_mode() {
    const std::lock_guard lock(mutex_);
    if (times_left_ == 0) return Misbehaviour::kGood;
    if (times_left_ > 0) --times_left_;
    return mode_;
  }

  void serve(int fd) {
    Fd owned(fd);
    while (!stopping_) {
      const std::optional<std::string> payload = recv_frame(fd);
      if (!payload) break;
      wire::GradeRequest request;
      wire::parse_payload(*payload, request);
      ++requests_;
      wire::GradeReply reply;
      reply.set_request_id(request.request_id());
      for (const wire::GradeItem& item : request.items()) {
        wire::GradeItemResult& result = *reply.add_results();
        result.set_score(1.0);
        result.set_extracted(item.completion());
      }
      switch (next_mode()) {
        case Misbehaviour::kGood:
          break;
        case Misbehaviour::kGarbage:
          send_all(fd, "HTTP/1.1 400 Bad Request\r\n\r\n");
          return;
        case Misbehaviour::kCloseMidFrame:
          send_all(fd, wire::encode_frame(reply.SerializeAsString()).substr(0, 5));
          return;
        case Misbehaviour::kCloseWithoutReply:
          return;
        case Misbehaviour::kSilent: {
          char byte = 0;
          while (!stopping_ && ::recv(fd, &byte, 1, 0) > 0) {
          }
          return;
        }
        case Misbehaviour::kWrongId:
          reply.set_request_id(request.request_id() + 1000);
          break;
        case Misbehaviour::kNaN:
          reply.mutable_results(0)->set_score(std::numeric_limits<double>::quiet_NaN());
          break;
        case Misbehaviour::kWrongCount:
          reply.mutable_results()->RemoveLast();
          break;
      }
      send_all(fd, wire::encode_frame(reply.SerializeAsString()));
    }
  }

  std::uint16_t port_ = 0;
  Fd listener_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> requests_{0};
  std::atomic<int> connections_{0};
  std::mutex mutex_;
  Misbehaviour mode_ = Misbehaviour::kGood;
  int times_left_ = 0;
  std::vector<int> connection_fds_;
  std::vector<std::thread> handlers_;
  std::thread acceptor_;  // last: it starts with everything above constructed
};

const std::vector<GradeInput> kTwoSamples = {{.completion = "one"}, {.completion = "two"}};

struct MisbehaviourCase {
  const char* name;
  Misbehaviour mode;
  const char* reason;  // what the reason must say after "remote grader 127.0.0.1:PORT: "
  double min_ms;
  double max_ms;
};

// How ctest and failure messages show a case (instead of its bytes).
void PrintTo(const MisbehaviourCase& test_case, std::ostream* out) { *out << test_case.name; }

class MisbehavingServer : public testing::TestWithParam<MisbehaviourCase> {};

TEST_P(MisbehavingServer, GivesCannotScoreWithTheReasonThenRecovers) {
  const MisbehaviourCase& test_case = GetParam();
  FakeServer server;
  server.misbehave(test_case.mode);
  const RemoteGrader remote(client_options(server.port()));

  const Clock::time_point start = Clock::now();
  const std::vector<GradeResult> results = remote.grade_batch(kTwoSamples);
  const double ms = elapsed_ms(start);
  ASSERT_EQ(results.size(), 2u);
  for (const GradeResult& result : results) {
    EXPECT_FALSE(result.scorable);
    EXPECT_TRUE(
        contains(result.reason, fmt::format("remote grader 127.0.0.1:{}: {}", server.port(), test_case.reason)));
    EXPECT_TRUE(contains(result.reason, "(3 attempts)"));
  }
  EXPECT_EQ(server.requests(), 3);  // the first attempt and two retries
  EXPECT_GE(ms, test_case.min_ms);
  EXPECT_LT(ms, test_case.max_ms);

  // The same grader works again as soon as the server does.
  server.misbehave(Misbehaviour::kGood, 0);
  const std::vector<GradeResult> good = remote.grade_batch(kTwoSamples);
  EXPECT_TRUE(good[0].scorable) << good[0].reason;
  EXPECT_EQ(good[0].score, 1.0);
  EXPECT_EQ(good[1].extracted, "two");
}

INSTANTIATE_TEST_SUITE_P(
    RemoteGrader, MisbehavingServer,
    testing::Values(MisbehaviourCase{"Garbage", Misbehaviour::kGarbage,
                                     "garbage reply: peer sent 'HTTP' where a grpo frame starts (is this a grpo port?)",
                                     0, 1500},
                    MisbehaviourCase{"CloseMidFrame", Misbehaviour::kCloseMidFrame,
                                     "connection closed after 5 of 8 header bytes", 0, 1500},
                    MisbehaviourCase{"CloseWithoutReply", Misbehaviour::kCloseWithoutReply,
                                     "connection closed before a reply", 0, 1500},
                    // 3 attempts of 200 ms and backoffs of 10 and 20 ms.
                    MisbehaviourCase{"Silent", Misbehaviour::kSilent, "no reply within 200 ms", 620, 1500},
                    MisbehaviourCase{"WrongRequestId", Misbehaviour::kWrongId, "garbage reply: request_id", 0, 1500},
                    MisbehaviourCase{"NaN", Misbehaviour::kNaN, "garbage reply: score of sample 0 is nan", 0, 1500},
                    MisbehaviourCase{"WrongResultCount", Misbehaviour::kWrongCount,
                                     "garbage reply: 1 results for 2 samples", 0, 1500}),
    [](const testing::TestParamInfo<MisbehaviourCase>& param_info) { return std::string(param_info.param.name); });

TEST(RemoteGrader, RetriesATransientFailureAndSucceeds) {
  FakeServer server;
  server.misbehave(Misbehaviour::kGarbage, 1);
  const std::vector<GradeResult> results = RemoteGrader(client_options(server.port())).grade_batch(kTwoSamples);
  EXPECT_TRUE(results[0].scorable) << results[0].reason;
  EXPECT_EQ(results[0].score, 1.0);
  EXPECT_EQ(server.requests(), 2);
}

TEST(RemoteGrader, ReusesConnections) {
  FakeServer server;
  const RemoteGrader remote(client_options(server.port()));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(remote.grade({.completion = "x"}).score, 1.0);
  EXPECT_EQ(server.connections(), 1);
  EXPECT_EQ(server.requests(), 5);
}

TEST(RemoteGrader, ConnectionRefusedIsCannotScoreAfterRetries) {
  const std::uint16_t port = unused_port();
  const Clock::time_point start = Clock::now();
  const std::vector<GradeResult> results = RemoteGrader(client_options(port)).grade_batch(kTwoSamples);
  const double ms = elapsed_ms(start);
  for (const GradeResult& result : results) {
    EXPECT_FALSE(result.scorable);
    EXPECT_EQ(result.reason,
              fmt::format("remote grader 127.0.0.1:{}: cannot connect: Connection refused (3 attempts)", port));
  }
  EXPECT_GE(ms, 29);  // backoffs of 10 and 20 ms
  EXPECT_LT(ms, 1500);
}

TEST(RemoteGrader, SampleDeadlineBoundsTheWait) {
  FakeServer server;
  server.misbehave(Misbehaviour::kSilent);
  RemoteGraderOptions options = client_options(server.port());
  options.request_timeout = 10000ms;
  const RemoteGrader remote(options);
  const Clock::time_point start = Clock::now();
  const GradeResult result = remote.grade({.completion = "x", .deadline = start + 150ms});
  const double ms = elapsed_ms(start);
  EXPECT_FALSE(result.scorable);
  // The attempt's budget is what was left of the 150 ms when it started: a few ms less on a busy machine.
  EXPECT_TRUE(contains(result.reason, "no reply within 1"));
  EXPECT_TRUE(contains(result.reason, " ms (1 attempt; the samples' deadline left no time for more)"));
  EXPECT_GE(ms, 140);
  EXPECT_LT(ms, 1000);

  const GradeResult late = remote.grade({.completion = "x", .deadline = Clock::now() - 1ms});
  EXPECT_FALSE(late.scorable);
  EXPECT_TRUE(contains(late.reason, "the samples' deadline passed before the request was sent"));
}

TEST(RemoteGrader, RejectsUnusableOptions) {
  RemoteGraderOptions options = client_options(9000);
  options.grader = "";
  EXPECT_THROW(RemoteGrader{options}, std::invalid_argument);
  options = client_options(0);
  EXPECT_THROW(RemoteGrader{options}, std::invalid_argument);
  options = client_options(9000);
  options.max_in_flight = 0;
  EXPECT_THROW(RemoteGrader{options}, std::invalid_argument);
}

// ---- The Python example server --------------------------------------------------------------------------------

// A child process; killed (SIGTERM, then SIGKILL) and reaped when this goes away.
class ChildProcess {
 public:
  // Starts `argv`; with `capture_stdout` its stdout comes through read_line(); with `quiet` its stderr is dropped.
  ChildProcess(const std::vector<std::string>& argv, bool capture_stdout, bool quiet) {
    std::vector<char*> args;
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    int pipe_fds[2] = {-1, -1};
    if (capture_stdout) {
      if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
      posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
    }
    if (quiet) posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    const int failed = ::posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (capture_stdout) {
      ::close(pipe_fds[1]);
      stdout_.reset(pipe_fds[0]);
    }
    if (failed != 0) {
      pid_ = -1;
      throw std::runtime_error(fmt::format("cannot start {}: {}", argv[0], std::strerror(failed)));
    }
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  ~ChildProcess() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    if (!wait_for_exit(2000ms)) {
      ::kill(pid_, SIGKILL);
      wait_for_exit(std::chrono::milliseconds::max());
    }
  }

  // The exit status, or nothing when it is still running after `timeout`.
  std::optional<int> wait_for_exit(std::chrono::milliseconds timeout) {
    const Clock::time_point deadline =
        timeout == std::chrono::milliseconds::max() ? Clock::time_point::max() : Clock::now() + timeout;
    for (;;) {
      int status = 0;
      const pid_t done = ::waitpid(pid_, &status, WNOHANG);
      if (done == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      if (done < 0 || Clock::now() >= deadline) return done < 0 ? std::optional<int>(-1) : std::nullopt;
      std::this_thread::sleep_for(10ms);
    }
  }

  // The next line of the child's stdout, without the newline; nothing when it ends or `timeout` passes first.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout) {
    const Clock::time_point deadline = Clock::now() + timeout;
    std::string line;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      pollfd entry{.fd = stdout_.get(), .events = POLLIN, .revents = 0};
      if (left <= 0ms || ::poll(&entry, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
      char c = 0;
      if (::read(stdout_.get(), &c, 1) != 1) return std::nullopt;
      if (c == '\n') return line;
      line += c;
    }
  }

 private:
  pid_t pid_ = -1;
  Fd stdout_;
};

TEST(PythonExampleServer, GradesThroughRemoteGrader) {
  const std::string python = GRPO_PYTHON;
  if (python.empty()) GTEST_SKIP() << "GRPO_PYTHON is not set: configure with -DGRPO_PYTHON=/path/to/.venv/bin/python";
  {
    ChildProcess check({python, "-c", "import google.protobuf"}, false, true);
    if (check.wait_for_exit(30000ms) != 0) {
      GTEST_SKIP() << python << " cannot import google.protobuf: pip install protobuf==4.21.12 (scripts/setup does)";
    }
  }
  ChildProcess server({python, std::string(GRPO_SOURCE_DIR) + "/examples/remote_grader/server.py", "--port", "0"}, true,
                      false);
  const std::optional<std::string> line = server.read_line(20000ms);
  ASSERT_TRUE(line) << "the example server printed no 'listening on HOST:PORT' line (see its stderr above)";
  ASSERT_TRUE(line->starts_with("listening on 127.0.0.1:")) << *line;
  const auto port = static_cast<std::uint16_t>(std::stoi(line->substr(line->rfind(':') + 1)));

  RemoteGraderOptions options{.host = "127.0.0.1", .port = port, .grader = "palindrome", .request_timeout = 5000ms};
  options.max_batch = 2;
  const RemoteGrader palindrome(options);
  const std::vector<GradeInput> inputs = {{.completion = "<think>hm</think> <answer>Racecar</answer>"},
                                          {.completion = "<answer>abc</answer>"},
                                          {.completion = "no tags"},
                                          {.completion = "<answer>A man, a plan, a canal: Panama</answer>"},
                                          {.completion = "<answer>12321</answer>"}};
  const std::vector<GradeResult> results = palindrome.grade_batch(inputs);
  ASSERT_EQ(results.size(), 5u);
  for (const GradeResult& result : results) EXPECT_TRUE(result.scorable) << result.reason;
  EXPECT_EQ(results[0].score, 1.0);
  EXPECT_EQ(results[0].extracted, "Racecar");
  EXPECT_EQ(results[1].score, 0.0);
  EXPECT_EQ(results[1].reason, "'abc' does not read the same backwards");
  EXPECT_EQ(results[2].score, 0.0);
  EXPECT_TRUE(contains(results[2].reason, "no <answer>"));
  EXPECT_EQ(results[3].score, 1.0);
  EXPECT_EQ(results[4].score, 1.0);

  options.grader = "length_penalty";
  const GradeResult long_answer =
      RemoteGrader(options).grade({.completion = std::string(150, 'x'), .metadata = R"({"max_chars": 100})"});
  EXPECT_DOUBLE_EQ(long_answer.score, 0.5);

  options.grader = "no_such_grader";
  const GradeResult unknown = RemoteGrader(options).grade({.completion = "x"});
  EXPECT_FALSE(unknown.scorable);
  EXPECT_TRUE(contains(unknown.reason,
                       "server error: unknown grader 'no_such_grader'; this server has: "
                       "length_penalty, palindrome"));

  const GarbageOutcome garbage = send_garbage(port, "GET / HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(contains(garbage.error, "peer sent 'GET ' where a grpo frame starts (is this a grpo port?)"));
  EXPECT_TRUE(garbage.closed);
  const GarbageOutcome oversized = send_garbage(port, std::string("GRPW\xff\xff\xff\xff", 8));
  EXPECT_TRUE(contains(oversized.error, "frame of 4294967295 bytes exceeds the 67108864-byte limit"));
  EXPECT_EQ(palindrome.grade({.completion = "<answer>noon</answer>"}).score, 1.0);  // still serving
}

}  // namespace
}  // namespace grpo::reward
