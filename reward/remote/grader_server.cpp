// The server side of the remote grader protocol: accepts connections, reads GradeRequests, grades them on a thread
// pool through the graders the lookup finds, and answers GradeReplies; `grpo grader-server` on top of it.
#include "reward/remote/grader_server.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "reward/grader_registry.h"
#include "reward/remote/grader_service.pb.h"
#include "rollout/wire/frame.h"

namespace grpo::reward {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using tcp = asio::ip::tcp;
using wire::Clock;

// How long an error reply to a misbehaving client may take before the connection is closed anyway.
constexpr std::chrono::seconds kErrorReplyTimeout{1};
// After accept fails (e.g. out of file descriptors), wait this long before accepting again instead of spinning.
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};

void validate(const GraderServerOptions& options, const GraderLookup& lookup) {
  auto fail = [](std::string_view problem) { throw std::invalid_argument(fmt::format("grader server: {}", problem)); };
  if (options.host.empty()) fail("host is empty; set the address to listen on, e.g. \"127.0.0.1\" or \"0.0.0.0\"");
  if (options.max_frame_bytes < 1024) fail("max_frame_bytes must be at least 1024");
  if (options.grading_threads < 1) fail("grading_threads must be at least 1");
  if (options.idle_timeout <= std::chrono::milliseconds::zero()) fail("idle_timeout must be positive");
  if (!lookup) fail("the grader lookup function is empty");
}

}  // namespace

class GraderServer::Impl {
 public:
  Impl(GraderServerOptions options, GraderLookup lookup)
      : options_(std::move(options)),
        lookup_(std::move(lookup)),
        acceptor_(io_),
        pool_(static_cast<std::size_t>(options_.grading_threads)) {}

  ~Impl() { stop(); }

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  void start();
  std::uint16_t port() const { return port_; }
  void stop();

 private:
  // Registers a connection's socket for the lifetime of its coroutine, so that stop() can close it.
  class ConnectionRegistration {
   public:
    ConnectionRegistration(std::set<tcp::socket*>& connections, tcp::socket& socket)
        : connections_(connections), socket_(&socket) {
      connections_.insert(socket_);
    }
    ~ConnectionRegistration() { connections_.erase(socket_); }
    ConnectionRegistration(const ConnectionRegistration&) = delete;
    ConnectionRegistration& operator=(const ConnectionRegistration&) = delete;

   private:
    std::set<tcp::socket*>& connections_;
    tcp::socket* socket_;
  };

  void log(std::string_view line) const;
  void run_io();
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> serve(tcp::socket socket);
  asio::awaitable<void> refuse(tcp::socket& socket, const std::string& peer, const std::string& problem);
  asio::awaitable<wire::GradeReply> grade_on_pool(std::shared_ptr<const wire::GradeRequest> request,
                                                  Clock::time_point received);
  wire::GradeReply grade(const wire::GradeRequest& request, Clock::time_point received) const;

  // Declaration order is destruction order in reverse: the pool and the io_context destroy coroutine frames that
  // still use `connections_`, the lookup and the options, so those are declared first.
  const GraderServerOptions options_;
  const GraderLookup lookup_;
  std::set<tcp::socket*> connections_;  // open connections; only on the io thread, or after it has stopped
  asio::io_context io_;
  tcp::acceptor acceptor_;
  asio::thread_pool pool_;
  std::thread thread_;
  std::uint16_t port_ = 0;
  std::mutex state_mutex_;  // serialises start() and stop()
  bool started_ = false;
  bool stopped_ = false;
};

void GraderServer::Impl::log(std::string_view line) const {
  if (options_.log) {
    options_.log(line);
  } else {
    fmt::print(stderr, "{}\n", line);
  }
}

void GraderServer::Impl::start() {
  const std::lock_guard lock(state_mutex_);
  if (started_) throw std::logic_error("GraderServer::start: the server was already started");
  started_ = true;

  const std::string where = wire::format_endpoint(options_.host, options_.port);
  error_code error;
  tcp::endpoint endpoint;
  const asio::ip::address address = asio::ip::make_address(options_.host, error);
  if (!error) {
    endpoint = tcp::endpoint(address, options_.port);
  } else {
    tcp::resolver resolver(io_);
    const tcp::resolver::results_type results = resolver.resolve(options_.host, std::to_string(options_.port), error);
    if (error || results.empty()) {
      throw std::runtime_error(
          fmt::format("grader server: cannot listen on {}: cannot resolve '{}': {}; give a "
                      "local address such as 127.0.0.1 or 0.0.0.0",
                      where, options_.host, error ? error.message() : "no addresses"));
    }
    endpoint = results.begin()->endpoint();
  }

  const auto check = [&](std::string_view step) {
    if (!error) return;
    const std::string hint = error == asio::error::address_in_use
                                 ? "; another process listens there: pick another port, or 0 for any free one"
                                 : "";
    throw std::runtime_error(
        fmt::format("grader server: cannot listen on {}: {} failed: {}{}", where, step, error.message(), hint));
  };
  acceptor_.open(endpoint.protocol(), error);
  check("open");
  acceptor_.set_option(tcp::acceptor::reuse_address(true), error);
  check("setting SO_REUSEADDR");
  acceptor_.bind(endpoint, error);
  check("bind");
  acceptor_.listen(asio::socket_base::max_listen_connections, error);
  check("listen");
  port_ = acceptor_.local_endpoint(error).port();
  check("reading the bound port");

  asio::co_spawn(io_, accept_loop(), [this](std::exception_ptr failure) {
    if (!failure) return;
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& exception) {
      log(fmt::format("grader server: stopped accepting connections: {}", exception.what()));
    } catch (...) {
      log("grader server: stopped accepting connections: non-standard exception");
    }
  });
  thread_ = std::thread([this] { run_io(); });
  log(fmt::format("grader server listening on {}", wire::format_endpoint(options_.host, port_)));
}

void GraderServer::Impl::stop() {
  const std::lock_guard lock(state_mutex_);
  if (stopped_) return;
  stopped_ = true;
  io_.stop();
  if (thread_.joinable()) thread_.join();
  // The io thread has stopped, so the sockets can be closed from here; their coroutines are destroyed with io_.
  error_code ignored;
  acceptor_.close(ignored);
  for (tcp::socket* socket : connections_) socket->close(ignored);
  // Requests being graded finish; queued ones are dropped (their clients already see the connection closed).
  pool_.stop();
  pool_.join();
}

void GraderServer::Impl::run_io() {
  for (;;) {
    try {
      io_.run();
      return;
    } catch (const std::exception& error) {
      log(fmt::format("grader server: unexpected error on the network thread: {}", error.what()));
    }
  }
}

asio::awaitable<void> GraderServer::Impl::accept_loop() {
  for (;;) {
    error_code error;
    tcp::socket socket = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, error));
    if (error == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
    if (error) {
      log(fmt::format("grader server: accepting a connection failed: {}", error.message()));
      asio::steady_timer timer(io_, kAcceptRetryDelay);
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, error));
      continue;
    }
    asio::co_spawn(io_, serve(std::move(socket)), [this](std::exception_ptr failure) {
      if (!failure) return;
      try {
        std::rethrow_exception(failure);
      } catch (const std::exception& exception) {
        log(fmt::format("grader server: a connection ended on an unexpected error: {}", exception.what()));
      } catch (...) {
        log("grader server: a connection ended on a non-standard exception");
      }
    });
  }
}

asio::awaitable<void> GraderServer::Impl::serve(tcp::socket socket) {
  const ConnectionRegistration registration(connections_, socket);
  error_code error;
  const tcp::endpoint remote = socket.remote_endpoint(error);
  const std::string peer = error ? std::string("a client") : wire::format_endpoint(remote);
  socket.set_option(tcp::no_delay(true), error);  // best effort: only latency depends on it

  for (;;) {
    std::string payload;
    std::optional<wire::WireError> read_error;
    try {
      payload = co_await wire::async_read_frame(socket, options_.max_frame_bytes, Clock::now() + options_.idle_timeout);
    } catch (const wire::WireError& exception) {
      read_error = exception;
    }
    if (read_error) {
      switch (read_error->kind()) {
        case wire::WireErrorKind::kClosed:   // the client is done
        case wire::WireErrorKind::kTimeout:  // idle; a client reconnects when it needs to
        case wire::WireErrorKind::kIo:       // reset: the client went away
          co_return;
        case wire::WireErrorKind::kTruncated:
          log(fmt::format("grader server: {}: {}", peer, read_error->what()));
          co_return;
        case wire::WireErrorKind::kBadMagic:
        case wire::WireErrorKind::kFrameTooLarge:
        case wire::WireErrorKind::kBadPayload:
        case wire::WireErrorKind::kConnectFailed:
          co_await refuse(socket, peer, read_error->what());
          co_return;
      }
      co_return;
    }

    auto request = std::make_shared<wire::GradeRequest>();
    std::optional<wire::WireError> parse_error;
    try {
      wire::parse_payload(payload, *request);
    } catch (const wire::WireError& exception) {
      parse_error = exception;
    }
    if (parse_error) {
      co_await refuse(socket, peer, parse_error->what());
      co_return;
    }
    payload = {};

    const Clock::time_point received = Clock::now();
    wire::GradeReply reply = co_await grade_on_pool(std::move(request), received);
    std::string reply_payload;
    try {
      reply_payload = wire::serialize_payload(reply, options_.max_frame_bytes);
    } catch (const wire::WireError& exception) {
      wire::GradeReply too_large;
      too_large.set_request_id(reply.request_id());
      too_large.set_error(
          fmt::format("the reply is too large to send: {} (the server's max_frame_bytes); send "
                      "fewer samples per request",
                      exception.what()));
      reply_payload = too_large.SerializeAsString();
    }
    std::optional<wire::WireError> write_error;
    try {
      co_await wire::async_write_frame(socket, reply_payload, options_.max_frame_bytes,
                                       Clock::now() + options_.idle_timeout);
    } catch (const wire::WireError& exception) {
      write_error = exception;
    }
    if (write_error) {
      log(fmt::format("grader server: {}: sending a reply failed: {}", peer, write_error->what()));
      co_return;
    }
  }
}

// A client that sent something unreadable: log it, tell it why if it is still listening, and close the connection
// (the stream is out of step, so nothing after it could be read anyway).
asio::awaitable<void> GraderServer::Impl::refuse(tcp::socket& socket, const std::string& peer,
                                                 const std::string& problem) {
  log(fmt::format("grader server: {}: {}; closing the connection", peer, problem));
  wire::GradeReply reply;
  reply.set_error(fmt::format("grader server could not read the request: {}", problem));
  try {
    co_await wire::async_write_frame(socket, reply.SerializeAsString(), options_.max_frame_bytes,
                                     Clock::now() + kErrorReplyTimeout);
  } catch (const wire::WireError&) {  // the client is not listening: nothing more to do
  }
  error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

// Runs grade() on the pool and resumes the calling coroutine on its own executor with the reply.
asio::awaitable<wire::GradeReply> GraderServer::Impl::grade_on_pool(std::shared_ptr<const wire::GradeRequest> request,
                                                                    Clock::time_point received) {
  return asio::async_initiate<decltype(asio::use_awaitable), void(std::exception_ptr, wire::GradeReply)>(
      [this, request = std::move(request), received](auto handler) mutable {
        asio::post(pool_, [this, request = std::move(request), received, handler = std::move(handler)]() mutable {
          wire::GradeReply reply = grade(*request, received);
          const auto executor = asio::get_associated_executor(handler);
          asio::post(executor, [handler = std::move(handler), reply = std::move(reply)]() mutable {
            std::move(handler)(std::exception_ptr(), std::move(reply));
          });
        });
      },
      asio::use_awaitable);
}

wire::GradeReply GraderServer::Impl::grade(const wire::GradeRequest& request, Clock::time_point received) const {
  wire::GradeReply reply;
  reply.set_request_id(request.request_id());
  const std::string& name = request.grader();
  try {
    if (name.empty()) {
      reply.set_error("the request names no grader; set GradeRequest.grader");
      return reply;
    }
    const Grader* grader = nullptr;
    try {
      grader = lookup_(name);
    } catch (const std::exception& exception) {
      reply.set_error(exception.what());
      return reply;
    }
    if (grader == nullptr) {
      reply.set_error(fmt::format("this server has no grader named '{}'", name));
      return reply;
    }

    const Clock::time_point deadline =
        request.deadline_ms() == 0 ? wire::kNoDeadline : received + std::chrono::milliseconds(request.deadline_ms());
    std::vector<GradeInput> inputs;
    inputs.reserve(static_cast<std::size_t>(request.items_size()));
    for (const wire::GradeItem& item : request.items()) {
      inputs.push_back({.prompt = item.prompt(),
                        .completion = item.completion(),
                        .reference = item.reference(),
                        .metadata = item.metadata(),
                        .deadline = deadline});
    }
    const std::vector<GradeResult> results = grader->grade_batch(inputs);
    if (results.size() != inputs.size()) {
      throw std::runtime_error(
          fmt::format("grade_batch returned {} results for {} samples", results.size(), inputs.size()));
    }
    for (const GradeResult& result : results) {
      wire::GradeItemResult& item = *reply.add_results();
      if (std::isfinite(result.score)) {
        item.set_score(result.score);
        item.set_cannot_score(!result.scorable);
        item.set_reason(result.reason);
      } else {
        // The client would reject the whole reply as garbage; the fault is this one sample's, so say so there.
        item.set_cannot_score(true);
        item.set_reason(fmt::format("grader '{}' returned a non-finite score ({})", name, result.score));
      }
      item.set_extracted(result.extracted);
      for (const GradeComponent& component : result.components) {
        wire::Component& out = *item.add_components();
        out.set_name(component.name);
        out.set_score(component.score);
      }
      for (const TestOutcome& test : result.tests) {
        wire::TestOutcome& out = *item.add_tests();
        out.set_verdict(test.verdict);
        out.set_detail(test.detail);
        out.set_seconds(test.seconds);
      }
    }
  } catch (const std::exception& exception) {
    const std::string message = fmt::format("grader '{}' failed: {}", name, exception.what());
    log(fmt::format("grader server: {}", message));
    reply.Clear();
    reply.set_request_id(request.request_id());
    reply.set_error(message);
  }
  return reply;
}

GraderServer::GraderServer(GraderServerOptions options, GraderLookup lookup) {
  validate(options, lookup);
  impl_ = std::make_unique<Impl>(std::move(options), std::move(lookup));
}

GraderServer::~GraderServer() = default;

void GraderServer::start() { impl_->start(); }

std::uint16_t GraderServer::port() const { return impl_->port(); }

void GraderServer::stop() { impl_->stop(); }

GraderLookup registered_grader_lookup(std::vector<std::string> allowed) {
  struct Cache {
    std::vector<std::string> allowed;
    std::mutex mutex;
    std::map<std::string, std::unique_ptr<Grader>, std::less<>> graders;
  };
  auto cache = std::make_shared<Cache>();
  std::sort(allowed.begin(), allowed.end());
  cache->allowed = std::move(allowed);
  return [cache](std::string_view name) -> const Grader* {
    if (!cache->allowed.empty() && !std::binary_search(cache->allowed.begin(), cache->allowed.end(), name)) {
      throw std::invalid_argument(
          fmt::format("this server does not serve grader '{}'; it serves: {}", name, fmt::join(cache->allowed, ", ")));
    }
    const std::lock_guard lock(cache->mutex);
    const auto found = cache->graders.find(name);
    if (found != cache->graders.end()) return found->second.get();
    std::unique_ptr<Grader> grader = make_grader(name);  // throws "unknown grader 'x'; registered graders: ..."
    const Grader* pointer = grader.get();
    cache->graders.emplace(std::string(name), std::move(grader));
    return pointer;
  };
}

int run_grader_server(const GraderServerOptions& options) {
  // Unknown names fail now, with the registry's list, rather than on the first request.
  const std::vector<std::string> registered = registered_grader_names();
  for (const std::string& name : options.graders) {
    if (!std::binary_search(registered.begin(), registered.end(), name)) {
      throw std::invalid_argument(
          fmt::format("grader server: unknown grader '{}'; registered graders: {}", name, fmt::join(registered, ", ")));
    }
  }

  // The signal handlers are installed before the server starts, so a Ctrl-C during startup is not lost.
  asio::io_context signal_io;
  asio::signal_set signals(signal_io, SIGINT, SIGTERM);
  int received = 0;
  signals.async_wait([&received](const error_code& error, int signal_number) {
    if (!error) received = signal_number;
  });

  GraderServer server(options, registered_grader_lookup(options.graders));
  server.start();
  signal_io.run();
  const std::string line =
      fmt::format("grader server: {} received; stopping", received == SIGINT ? "SIGINT" : "SIGTERM");
  if (options.log) {
    options.log(line);
  } else {
    fmt::print(stderr, "{}\n", line);
  }
  server.stop();
  return 0;
}

}  // namespace grpo::reward
