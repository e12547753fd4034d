// The rollout worker's server side: connections and the protocol on the Asio thread, generation and weight updates
// on the engine thread (see worker_server.h).
#include "rollout/remote/worker_server.h"

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <deque>
#include <exception>
#include <iostream>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "rollout/remote/rollout_messages.h"
#include "rollout/remote/weight_broadcast.h"
#include "rollout/wire/frame.h"

namespace grpo::rollout {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using tcp = asio::ip::tcp;
using wire::Clock;

// Bounds on what a trainer may ask of the engine thread when it joins a weight group.
constexpr std::chrono::milliseconds kMaxWeightGroupTimeout{600000};
constexpr int kMaxWeightGroupMembers = 4096;

// How long a write may take before the connection is given up (a trainer that stopped reading).
constexpr std::chrono::seconds kWriteTimeout{60};
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};

// Compares secrets in time that does not depend on where they first differ.
bool same_token(std::string_view a, std::string_view b) {
  unsigned char difference = a.size() == b.size() ? 0 : 1;
  const auto n = std::max(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    const auto x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const auto y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    difference |= static_cast<unsigned char>(x ^ y);
  }
  return difference == 0;
}

// A single thread that runs jobs in order: the only thread that touches the model.
class EngineThread {
 public:
  EngineThread() : thread_([this] { run(); }) {}
  ~EngineThread() { stop(); }
  void post(std::function<void()> job) {
    {
      const std::lock_guard lock(mutex_);
      if (stopped_) return;
      jobs_.push_back(std::move(job));
    }
    ready_.notify_one();
  }
  void stop() {
    {
      const std::lock_guard lock(mutex_);
      if (stopped_) return;
      stopped_ = true;
      jobs_.clear();
    }
    ready_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [this] { return stopped_ || !jobs_.empty(); });
        if (stopped_) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  bool stopped_ = false;
  std::thread thread_;
};

proto::WorkerMessage error_message(std::uint64_t request_id, proto::ErrorCode code, const std::string& text, bool fatal) {
  proto::WorkerMessage message;
  auto* error = message.mutable_error();
  error->set_request_id(request_id);
  error->set_code(code);
  error->set_message(text);
  error->set_fatal(fatal);
  return message;
}

}  // namespace

class RolloutWorkerServer::Impl {
 public:
  Impl(RolloutWorkerOptions options, policy::Policy policy)
      : options_(std::move(options)), policy_(std::move(policy)), shapes_(parameter_shapes(policy_.model)), acceptor_(io_) {
    if (options_.token.empty()) throw std::invalid_argument("rollout worker: the token is empty; give a shared secret (--token-file)");
    if (options_.host.empty()) throw std::invalid_argument("rollout worker: the host is empty");
    if (options_.max_frame_bytes < 4096) throw std::invalid_argument("rollout worker: max_frame_bytes must be at least 4096");
    std::int64_t parameters = 0;
    for (const auto& p : policy_.model->parameters()) parameters += p.numel();
    num_parameters_ = parameters;
  }
  ~Impl() { stop(); }

  void start();
  void stop();
  std::uint16_t port() const { return port_; }
  std::int64_t policy_version() const { return version_.load(); }

 private:
  struct Connection {
    explicit Connection(tcp::socket s) : socket(std::move(s)), wake(socket.get_executor()) {}
    tcp::socket socket;
    std::string peer;
    std::deque<std::string> outbox;
    asio::steady_timer wake;       // cancelled to wake the writer
    bool closing = false;          // no more frames are read; the writer closes after the outbox
    bool generating = false;       // a generate request of this connection is queued or running
    std::atomic<bool> cancel{false};  // read by the engine thread between decode steps
    std::unique_ptr<WeightStaging> staging;
    bool in_weight_group = false;  // io thread: this trainer's weight group has formed (broadcast updates allowed)
    bool joining = false;           // io thread: a JoinWeightGroup is queued or running on the engine thread
    bool receiving_broadcast = false;  // io thread: a broadcast update is queued or running
    std::unique_ptr<WeightBroadcastGroup> weight_group;  // engine thread only
  };
  using ConnectionPtr = std::shared_ptr<Connection>;

  void log(std::string_view line) const {
    if (options_.log) {
      options_.log(line);
    } else {
      fmt::print(stderr, "{}\n", line);
    }
  }
  // Io thread only.
  void send(const ConnectionPtr& connection, const proto::WorkerMessage& message);
  void close_after_outbox(const ConnectionPtr& connection);
  void fail(const ConnectionPtr& connection, proto::ErrorCode code, const std::string& problem);
  // Any thread.
  void post_send(const ConnectionPtr& connection, proto::WorkerMessage message) {
    asio::post(io_, [this, connection, message = std::move(message)] { send(connection, message); });
  }

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> serve(ConnectionPtr connection);
  asio::awaitable<void> write_loop(ConnectionPtr connection);
  bool handshake(const ConnectionPtr& connection, const std::string& payload);
  void handle(const ConnectionPtr& connection, const proto::TrainerMessage& message);
  void start_generation(const ConnectionPtr& connection, const proto::GenerateRequest& message);
  void join_weight_group(const ConnectionPtr& connection, const proto::JoinWeightGroup& message);
  void receive_broadcast_weights(const ConnectionPtr& connection, const proto::WeightsBegin& message);
  void run_generation(const ConnectionPtr& connection, const proto::GenerateRequest& message, const GenerationRequest& request);

  const RolloutWorkerOptions options_;
  policy::Policy policy_;  // the model is touched on the engine thread only
  const ParameterShapes shapes_;
  std::int64_t num_parameters_ = 0;
  std::atomic<std::int64_t> version_{0};
  std::set<ConnectionPtr> connections_;  // io thread
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread io_thread_;
  std::unique_ptr<EngineThread> engine_;
  std::uint16_t port_ = 0;
  std::mutex state_mutex_;
  bool started_ = false;
  bool stopped_ = false;
};

void RolloutWorkerServer::Impl::start() {
  const std::lock_guard lock(state_mutex_);
  if (started_) throw std::logic_error("RolloutWorkerServer::start: already started");
  started_ = true;
  const std::string where = wire::format_endpoint(options_.host, options_.port);
  error_code error;
  const auto address = asio::ip::make_address(options_.host, error);
  if (error) throw std::runtime_error(fmt::format("rollout worker: cannot listen on {}: '{}' is not an IP address", where, options_.host));
  const tcp::endpoint endpoint(address, options_.port);
  const auto check = [&](std::string_view step) {
    if (!error) return;
    const std::string hint = error == asio::error::address_in_use ? "; another process listens there: pick another port, or 0" : "";
    throw std::runtime_error(fmt::format("rollout worker: cannot listen on {}: {} failed: {}{}", where, step, error.message(), hint));
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
  engine_ = std::make_unique<EngineThread>();
  asio::co_spawn(io_, accept_loop(), asio::detached);
  io_thread_ = std::thread([this] {
    for (;;) {
      try {
        io_.run();
        return;
      } catch (const std::exception& exception) {
        log(fmt::format("rollout worker: unexpected error on the network thread: {}", exception.what()));
      }
    }
  });
}

void RolloutWorkerServer::Impl::stop() {
  const std::lock_guard lock(state_mutex_);
  if (stopped_ || !started_) {
    stopped_ = true;
    return;
  }
  stopped_ = true;
  for (const auto& connection : connections_) connection->cancel = true;  // racy read is fine: a hint to stop early
  io_.stop();
  if (io_thread_.joinable()) io_thread_.join();
  error_code ignored;
  acceptor_.close(ignored);
  for (const auto& connection : connections_) {
    connection->cancel = true;
    connection->socket.close(ignored);
  }
  engine_->stop();  // a running generation sees its cancel flag at the next decode step
}

asio::awaitable<void> RolloutWorkerServer::Impl::accept_loop() {
  for (;;) {
    error_code error;
    tcp::socket socket = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, error));
    if (error == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
    if (error) {
      log(fmt::format("rollout worker: accepting a connection failed: {}", error.message()));
      asio::steady_timer timer(io_, kAcceptRetryDelay);
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, error));
      continue;
    }
    auto connection = std::make_shared<Connection>(std::move(socket));
    const auto remote = connection->socket.remote_endpoint(error);
    connection->peer = error ? std::string("a trainer") : wire::format_endpoint(remote);
    connection->socket.set_option(tcp::no_delay(true), error);
    connection->wake.expires_at(asio::steady_timer::time_point::max());
    connections_.insert(connection);
    asio::co_spawn(io_, write_loop(connection), asio::detached);
    asio::co_spawn(io_, serve(connection), [this, connection](std::exception_ptr failure) {
      if (failure) {
        try {
          std::rethrow_exception(failure);
        } catch (const std::exception& exception) {
          log(fmt::format("rollout worker: {}: unexpected error: {}", connection->peer, exception.what()));
        }
      }
      connection->cancel = true;
      close_after_outbox(connection);
    });
  }
}

void RolloutWorkerServer::Impl::send(const ConnectionPtr& connection, const proto::WorkerMessage& message) {
  if (!connection->socket.is_open()) return;
  try {
    connection->outbox.push_back(wire::serialize_payload(message, options_.max_frame_bytes));
  } catch (const wire::WireError& error) {
    // A result too large for one frame (huge G × max_new_tokens): say so instead.
    const auto request_id = message.has_group_result() ? message.group_result().request_id() : 0;
    connection->outbox.push_back(
        error_message(request_id, proto::ERROR_CODE_BAD_REQUEST,
                      fmt::format("a reply exceeds the frame limit ({}); ask for fewer samples or tokens per request", error.what()), false)
            .SerializeAsString());
  }
  connection->wake.cancel();
}

void RolloutWorkerServer::Impl::close_after_outbox(const ConnectionPtr& connection) {
  connection->closing = true;
  connection->wake.cancel();
}

void RolloutWorkerServer::Impl::fail(const ConnectionPtr& connection, proto::ErrorCode code, const std::string& problem) {
  log(fmt::format("rollout worker: {}: {}; closing the connection", connection->peer, problem));
  send(connection, error_message(0, code, problem, /*fatal=*/true));
  connection->cancel = true;
  close_after_outbox(connection);
}

asio::awaitable<void> RolloutWorkerServer::Impl::write_loop(ConnectionPtr connection) {
  for (;;) {
    while (!connection->outbox.empty() && connection->socket.is_open()) {
      const std::string frame = std::move(connection->outbox.front());
      connection->outbox.pop_front();
      try {
        co_await wire::async_write_frame(connection->socket, frame, options_.max_frame_bytes, Clock::now() + kWriteTimeout);
      } catch (const wire::WireError& error) {
        if (error.kind() != wire::WireErrorKind::kIo) log(fmt::format("rollout worker: {}: writing failed: {}", connection->peer, error.what()));
        connection->outbox.clear();
        connection->cancel = true;
        connection->closing = true;
      }
    }
    if (connection->closing || !connection->socket.is_open()) {
      error_code ignored;
      connection->socket.shutdown(tcp::socket::shutdown_both, ignored);
      connection->socket.close(ignored);
      connections_.erase(connection);
      co_return;
    }
    error_code ignored;
    connection->wake.expires_at(asio::steady_timer::time_point::max());
    co_await connection->wake.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
}

bool RolloutWorkerServer::Impl::handshake(const ConnectionPtr& connection, const std::string& payload) {
  proto::TrainerMessage message;
  try {
    wire::parse_payload(payload, message);
  } catch (const wire::WireError& error) {
    fail(connection, proto::ERROR_CODE_PROTOCOL, error.what());
    return false;
  }
  if (!message.has_hello()) {
    fail(connection, proto::ERROR_CODE_PROTOCOL, "the first message must be Hello");
    return false;
  }
  const auto& hello = message.hello();
  if (hello.protocol_version() != proto::PROTOCOL_VERSION_CURRENT) {
    fail(connection, proto::ERROR_CODE_PROTOCOL,
         fmt::format("protocol version {} is not supported; this worker speaks version {} (update grpo on one side)", hello.protocol_version(),
                     static_cast<int>(proto::PROTOCOL_VERSION_CURRENT)));
    return false;
  }
  if (!same_token(hello.token(), options_.token)) {
    fail(connection, proto::ERROR_CODE_AUTH, "authentication failed: the token does not match the worker's --token-file");
    return false;
  }
  const auto& config = policy_.model->config();
  proto::WorkerMessage reply;
  auto* r = reply.mutable_hello_reply();
  r->set_protocol_version(proto::PROTOCOL_VERSION_CURRENT);
  r->set_policy_version(version_.load());
  r->set_architecture(config.architecture);
  r->set_num_parameters(num_parameters_);
  r->set_vocab_size(config.vocab_size);
  r->set_max_position_embeddings(config.max_position_embeddings);
  r->set_dtype(dtype_name(policy_.model->dtype()));
  r->set_device(policy_.model->device().str());
  send(connection, reply);
  log(fmt::format("rollout worker: {} connected ({})", connection->peer, hello.client().empty() ? "no name" : hello.client()));
  return true;
}

asio::awaitable<void> RolloutWorkerServer::Impl::serve(ConnectionPtr connection) {
  bool greeted = false;
  while (!connection->closing) {
    std::string payload;
    std::optional<wire::WireError> read_error;
    try {
      const auto deadline = greeted ? wire::kNoDeadline : Clock::now() + options_.hello_timeout;
      payload = co_await wire::async_read_frame(connection->socket, options_.max_frame_bytes, deadline);
    } catch (const wire::WireError& error) {
      read_error = error;
    }
    if (read_error) {
      switch (read_error->kind()) {
        case wire::WireErrorKind::kClosed:
        case wire::WireErrorKind::kIo:
          break;
        case wire::WireErrorKind::kTimeout:
          fail(connection, proto::ERROR_CODE_PROTOCOL, fmt::format("no Hello within {} ms", options_.hello_timeout.count()));
          break;
        default:
          fail(connection, proto::ERROR_CODE_PROTOCOL, read_error->what());
      }
      co_return;
    }
    if (!greeted) {
      if (!handshake(connection, payload)) co_return;
      greeted = true;
      continue;
    }
    proto::TrainerMessage message;
    try {
      wire::parse_payload(payload, message);
    } catch (const wire::WireError& error) {
      fail(connection, proto::ERROR_CODE_PROTOCOL, error.what());
      co_return;
    }
    try {
      handle(connection, message);
    } catch (const ProtocolViolation& violation) {
      fail(connection, proto::ERROR_CODE_PROTOCOL, violation.what());
      co_return;
    }
  }
}

void RolloutWorkerServer::Impl::handle(const ConnectionPtr& connection, const proto::TrainerMessage& message) {
  switch (message.body_case()) {
    case proto::TrainerMessage::kGenerate:
      start_generation(connection, message.generate());
      return;
    case proto::TrainerMessage::kWeightsBegin:
      if (connection->staging) throw ProtocolViolation("WeightsBegin while another weight update is still arriving");
      if (message.weights_begin().broadcast()) {
        receive_broadcast_weights(connection, message.weights_begin());
        return;
      }
      connection->staging = std::make_unique<WeightStaging>(shapes_, message.weights_begin());
      return;
    case proto::TrainerMessage::kJoinWeightGroup:
      join_weight_group(connection, message.join_weight_group());
      return;
    case proto::TrainerMessage::kWeightChunk:
      if (!connection->staging) throw ProtocolViolation("a WeightChunk outside a weight update (no WeightsBegin)");
      connection->staging->add(message.weight_chunk());
      return;
    case proto::TrainerMessage::kWeightsEnd: {
      if (!connection->staging) throw ProtocolViolation("WeightsEnd without WeightsBegin");
      connection->staging->finish(message.weights_end());
      std::shared_ptr<const WeightStaging> staged = std::move(connection->staging);
      engine_->post([this, connection, staged] {
        const auto start = Clock::now();
        try {
          staged->apply(policy_.model);
        } catch (const std::exception& error) {
          post_send(connection, error_message(0, proto::ERROR_CODE_INTERNAL, fmt::format("applying weights failed: {}", error.what()), false));
          return;
        }
        version_ = staged->version();
        proto::WorkerMessage reply;
        reply.mutable_weights_applied()->set_version(staged->version());
        reply.mutable_weights_applied()->set_seconds(std::chrono::duration<double>(Clock::now() - start).count());
        post_send(connection, std::move(reply));
      });
      return;
    }
    case proto::TrainerMessage::kPing: {
      proto::WorkerMessage reply;
      auto* pong = reply.mutable_pong();
      pong->set_nonce(message.ping().nonce());
      pong->set_policy_version(version_.load());
      pong->set_generating(connection->generating);
      send(connection, reply);
      return;
    }
    case proto::TrainerMessage::kHello:
      throw ProtocolViolation("a second Hello on the same connection");
    case proto::TrainerMessage::BODY_NOT_SET:
      throw ProtocolViolation("a TrainerMessage with no body (not a rollout protocol peer, or a newer one)");
  }
  throw ProtocolViolation("an unknown TrainerMessage");
}

void RolloutWorkerServer::Impl::join_weight_group(const ConnectionPtr& connection, const proto::JoinWeightGroup& message) {
  WeightGroupAddress address;
  address.host = message.store_host();
  if (address.host.empty() || message.store_port() == 0 || message.store_port() > 65535) {
    throw ProtocolViolation(fmt::format("JoinWeightGroup names no usable rendezvous store ('{}', port {})", address.host, message.store_port()));
  }
  address.port = static_cast<std::uint16_t>(message.store_port());
  address.world_size = message.world_size();
  const auto backend = parse_backend_name(message.backend());
  if (!backend) throw ProtocolViolation(fmt::format("JoinWeightGroup: unknown backend '{}' (gloo or nccl)", message.backend()));
  address.backend = *backend;
  // The join runs on the engine thread, which also generates for every other connection: bounded waits only.
  if (message.timeout_ms() <= 0 || message.timeout_ms() > kMaxWeightGroupTimeout.count()) {
    throw ProtocolViolation(fmt::format("JoinWeightGroup: the timeout must be in 1..{} ms, got {}", kMaxWeightGroupTimeout.count(), message.timeout_ms()));
  }
  if (message.world_size() > kMaxWeightGroupMembers) {
    throw ProtocolViolation(fmt::format("JoinWeightGroup: {} members exceed the {} a group may have", message.world_size(), kMaxWeightGroupMembers));
  }
  if (connection->joining) throw ProtocolViolation("JoinWeightGroup while an earlier one is still joining");
  address.timeout = std::chrono::milliseconds(message.timeout_ms());
  address.group_id = message.group_id();
  const int rank = message.rank();
  if (address.world_size < 2 || rank < 1 || rank >= address.world_size) {
    throw ProtocolViolation(fmt::format("JoinWeightGroup: rank {} of {} members (the trainer is rank 0)", rank, address.world_size));
  }
  connection->in_weight_group = false;
  connection->joining = true;
  engine_->post([this, connection, address, rank] {
    try {
      connection->weight_group = WeightBroadcastGroup::join(address, rank, policy_.model->device());
    } catch (const std::exception& error) {
      log(fmt::format("rollout worker: {}: {}", connection->peer, error.what()));
      asio::post(io_, [this, connection, why = std::string(error.what())] {
        connection->joining = false;
        send(connection, error_message(0, proto::ERROR_CODE_INTERNAL, why, false));
      });
      return;
    }
    log(fmt::format("rollout worker: {}: joined the weight group as rank {} ({})", connection->peer, rank, connection->weight_group->describe()));
    asio::post(io_, [this, connection, rank, backend = std::string(backend_name(address.backend))] {
      connection->joining = false;
      connection->in_weight_group = true;
      proto::WorkerMessage reply;
      reply.mutable_weight_group_joined()->set_rank(rank);
      reply.mutable_weight_group_joined()->set_backend(backend);
      send(connection, reply);
    });
  });
}

void RolloutWorkerServer::Impl::receive_broadcast_weights(const ConnectionPtr& connection, const proto::WeightsBegin& message) {
  if (!connection->in_weight_group) throw ProtocolViolation("a broadcast weight update without a weight group (JoinWeightGroup first)");
  if (connection->receiving_broadcast) throw ProtocolViolation("a broadcast weight update while the previous one is still arriving");
  // Checked here, against the model; the receiving tensors (one copy of the model) are allocated by the engine job.
  auto receipt = std::make_shared<BroadcastReceipt>(shapes_, message);
  connection->receiving_broadcast = true;
  engine_->post([this, connection, receipt] {
    const auto start = Clock::now();
    const auto done = [this, connection](std::optional<proto::WorkerMessage> error) {
      asio::post(io_, [this, connection, error = std::move(error)] {
        connection->receiving_broadcast = false;
        if (error) {
          connection->in_weight_group = false;
          send(connection, *error);
        }
      });
    };
    try {
      if (!connection->weight_group) throw std::runtime_error("this worker left the weight group after an earlier failure");
      receipt->allocate(policy_.model->device());
      connection->weight_group->broadcast(receipt->tensors(), receipt->bucket_bytes());
      receipt->apply(policy_.model);
    } catch (const std::exception& error) {
      // The model is untouched (nothing is applied before every byte arrived). The group is unusable now.
      connection->weight_group.reset();
      log(fmt::format("rollout worker: {}: weight update {} by broadcast failed: {}; left the weight group", connection->peer, receipt->version(),
                      error.what()));
      receipt->release();
      done(error_message(0, proto::ERROR_CODE_INTERNAL,
                         fmt::format("weight update {} by broadcast failed: {}; this worker left the weight group", receipt->version(), error.what()),
                         false));
      return;
    }
    receipt->release();
    version_ = receipt->version();
    proto::WorkerMessage reply;
    reply.mutable_weights_applied()->set_version(receipt->version());
    reply.mutable_weights_applied()->set_seconds(std::chrono::duration<double>(Clock::now() - start).count());
    post_send(connection, std::move(reply));
    done(std::nullopt);
  });
}

void RolloutWorkerServer::Impl::start_generation(const ConnectionPtr& connection, const proto::GenerateRequest& message) {
  const auto request_id = message.request_id();
  if (connection->generating) {
    send(connection, error_message(request_id, proto::ERROR_CODE_BUSY, "a generate request is already running on this connection", false));
    return;
  }
  GenerationRequest request;
  try {
    request = from_proto(message);
  } catch (const ProtocolViolation& violation) {
    send(connection, error_message(request_id, proto::ERROR_CODE_BAD_REQUEST, violation.what(), false));
    return;
  }
  connection->generating = true;
  engine_->post([this, connection, message, request = std::move(request)] { run_generation(connection, message, request); });
}

void RolloutWorkerServer::Impl::run_generation(const ConnectionPtr& connection, const proto::GenerateRequest& message,
                                               const GenerationRequest& request) {
  const auto request_id = message.request_id();
  // The request's last word (GenerateDone or an Error) goes out in the same io-thread handler that marks the
  // connection idle: a trainer that answers it at once with the next request must find the connection free.
  auto finish = [this, connection](std::optional<proto::WorkerMessage> last) {
    asio::post(io_, [this, connection, last = std::move(last)] {
      connection->generating = false;
      if (last) send(connection, *last);
    });
  };
  if (connection->cancel) return finish(std::nullopt);
  const auto version = version_.load();
  if (message.policy_version() != version) {
    return finish(error_message(request_id, proto::ERROR_CODE_STALE_WEIGHTS,
                                fmt::format("the request needs policy version {}; this worker holds version {}", message.policy_version(), version),
                                false));
  }
  GenerationHooks hooks;
  hooks.tokenizer = policy_.tokenizer.get();
  std::int64_t generated = 0;
  auto last_progress = Clock::now();
  hooks.on_group_finished = [&](std::int64_t p, std::span<const Completion> group) {
    for (const auto& completion : group) generated += static_cast<std::int64_t>(completion.tokens.size());
    proto::WorkerMessage reply;
    *reply.mutable_group_result() = to_proto(request_id, message.prompts(static_cast<int>(p)).index(), version, group);
    post_send(connection, std::move(reply));
    last_progress = Clock::now();
  };
  hooks.cancelled = [&] {
    if (connection->cancel) return true;
    if (Clock::now() - last_progress >= options_.progress_interval) {
      proto::WorkerMessage reply;
      reply.mutable_progress()->set_request_id(request_id);
      reply.mutable_progress()->set_generated_tokens(generated);
      post_send(connection, std::move(reply));
      last_progress = Clock::now();
    }
    return false;
  };
  try {
    const auto result = generate(policy_.model, request, hooks);
    proto::WorkerMessage done;
    done.mutable_generate_done()->set_request_id(request_id);
    done.mutable_generate_done()->set_generated_tokens(result.generated_tokens);
    done.mutable_generate_done()->set_seconds(result.seconds);
    finish(std::move(done));
  } catch (const GenerationCancelled&) {
    log(fmt::format("rollout worker: {}: request {} cancelled (the connection closed)", connection->peer, request_id));
    finish(std::nullopt);
  } catch (const std::invalid_argument& error) {
    finish(error_message(request_id, proto::ERROR_CODE_BAD_REQUEST, error.what(), false));
  } catch (const std::exception& error) {
    log(fmt::format("rollout worker: {}: request {} failed: {}", connection->peer, request_id, error.what()));
    finish(error_message(request_id, proto::ERROR_CODE_INTERNAL, error.what(), false));
  }
}

RolloutWorkerServer::RolloutWorkerServer(RolloutWorkerOptions options, policy::Policy policy)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(policy))) {}
RolloutWorkerServer::~RolloutWorkerServer() = default;
void RolloutWorkerServer::start() { impl_->start(); }
std::uint16_t RolloutWorkerServer::port() const { return impl_->port(); }
std::int64_t RolloutWorkerServer::policy_version() const { return impl_->policy_version(); }
void RolloutWorkerServer::stop() { impl_->stop(); }

int run_rollout_worker(const RolloutWorkerOptions& options, policy::Policy policy) {
  // Block the signals in every thread, then wait for them here, so that Asio's threads never run a handler.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  RolloutWorkerServer server(options, std::move(policy));
  server.start();
  std::cout << fmt::format("rollout worker listening on {}", wire::format_endpoint(options.host, server.port())) << std::endl;
  int received = 0;
  sigwait(&signals, &received);
  std::cerr << fmt::format("rollout worker: {} received, stopping\n", received == SIGINT ? "SIGINT" : "SIGTERM");
  server.stop();
  return 0;
}

}  // namespace grpo::rollout
