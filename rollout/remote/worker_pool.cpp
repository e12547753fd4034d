// The rollout worker pool: connections, sharing out a batch, streaming results, giving up failed workers and
// reassigning their prompts, pushing weights by version (see worker_pool.h).
#include "rollout/remote/worker_pool.h"

#include <algorithm>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <unistd.h>

#include "rollout/remote/rollout_messages.h"
#include "rollout/remote/weight_broadcast.h"
#include "rollout/wire/frame.h"

namespace grpo::rollout {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using tcp = asio::ip::tcp;
using wire::Clock;

// Why a worker is given up: its connection is closed and its unfinished prompts go to the others.
class WorkerFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A request no worker could serve: the batch fails at once.
class RequestRejected : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string what_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& exception) {
    return exception.what();
  } catch (...) {
    return "an unknown error";
  }
}

// A worker that answers STALE_WEIGHTS more often than this in one batch is given up (it is not applying them).
constexpr int kMaxStaleRetries = 2;

}  // namespace

class RolloutWorkerPool::Impl {
 public:
  Impl(WorkerPoolOptions options, std::int64_t vocab_size) : options_(std::move(options)), vocab_size_(vocab_size), work_(io_.get_executor()) {
    if (options_.addresses.empty()) throw std::invalid_argument("rollout worker pool: no worker addresses");
    if (options_.token.empty()) throw std::invalid_argument("rollout worker pool: the token is empty; the workers' --token-file holds it");
    for (const auto& address : options_.addresses) {
      const auto [host, port] = wire::parse_endpoint(address);
      auto worker = std::make_unique<Worker>();
      worker->name = wire::format_endpoint(host, port);
      worker->host = host;
      worker->port = port;
      workers_.push_back(std::move(worker));
    }
    thread_ = std::thread([this] { io_.run(); });
  }
  ~Impl() {
    asio::post(io_, [this] {
      for (auto& worker : workers_) close(*worker);
    });
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
    if (collective_.joinable()) collective_.join();  // a broadcast in progress ends within the group's timeout
    shutting_down_ = true;  // coroutines destroyed with io_ (after workers_) must not touch a Worker
  }

  void connect();
  int live_workers() const;
  double publish(std::shared_ptr<const WeightSnapshot> snapshot);
  std::future<GenerationResult> generate_async(GenerationRequest request, std::int64_t version);
  WorkerPoolBatchStats last_batch_stats() const {
    const std::lock_guard lock(stats_mutex_);
    return last_stats_;
  }
  std::string weight_transport() const;

 private:
  struct Worker {
    std::string name;  // host:port
    std::string host;
    std::uint16_t port = 0;
    std::optional<tcp::socket> socket;  // connected and greeted
    std::int64_t version = -1;          // the weights it holds, as pushed by us; -1: unknown
    std::string last_error;
    int stale_retries = 0;
    std::string device;  // where its model lives, as its HelloReply said ("cpu", "cuda:0")
    // One coroutine at a time talks to a worker (its socket has one reader and one writer): overlapping batches and
    // weight pushes take turns, a chunk or an update at a time.
    bool in_turn = false;
    std::deque<std::shared_ptr<asio::steady_timer>> waiting_turns;
  };

  // A worker's turn, held until destroyed (see Worker::in_turn).
  class Turn {
   public:
    Turn(Impl* pool, Worker* worker) : pool_(pool), worker_(worker) {}
    Turn(Turn&& other) noexcept : pool_(other.pool_), worker_(std::exchange(other.worker_, nullptr)) {}
    Turn& operator=(Turn&&) = delete;
    ~Turn() {
      if (worker_ != nullptr) pool_->end_turn(*worker_);
    }

   private:
    Impl* pool_;
    Worker* worker_;
  };
  asio::awaitable<Turn> take_turn(Worker& worker);
  void end_turn(Worker& worker);

  struct Batch {
    GenerationRequest request;
    std::int64_t version = 0;
    std::vector<std::vector<Completion>> groups;  // [P], filled as results arrive
    std::vector<bool> done;
    std::deque<std::int64_t> queue;  // prompts waiting for a worker
    std::int64_t remaining = 0;      // prompts not yet delivered
    int active = 0;                  // worker loops still running
    int busy = 0;                    // of those, the ones generating a chunk
    std::optional<asio::steady_timer> wake;  // cancelled when the queue or `remaining` changes
    std::promise<GenerationResult> promise;
    std::optional<std::string> rejected;     // a RequestRejected message
    std::vector<std::string> failures;       // "host:port: why" of workers given up in this batch
    WorkerPoolBatchStats stats;
    Clock::time_point start;
    std::uint64_t next_request_id = 1;
  };

  void log(std::string_view line) const {
    if (options_.log) {
      options_.log(line);
    } else {
      fmt::print(stderr, "{}\n", line);
    }
  }
  static void close(Worker& worker) {
    if (!worker.socket) return;
    error_code ignored;
    worker.socket->shutdown(tcp::socket::shutdown_both, ignored);
    worker.socket->close(ignored);
    worker.socket.reset();
    worker.version = -1;
  }
  void give_up(Worker& worker, const std::string& why) {
    log(fmt::format("rollout worker {}: {}; giving it up", worker.name, why));
    worker.last_error = why;
    close(worker);
    if (std::find(group_members_.begin(), group_members_.end(), &worker) != group_members_.end()) {
      abandon_weight_group(fmt::format("its member {} failed", worker.name));
    }
  }

  asio::awaitable<void> send(Worker& worker, const proto::TrainerMessage& message);
  asio::awaitable<proto::WorkerMessage> receive(Worker& worker, Clock::time_point deadline);
  asio::awaitable<void> connect_worker(Worker& worker);
  asio::awaitable<double> push_weights(Worker& worker, std::int64_t version);
  // Weights by broadcast (see weight_broadcast.h): forming the group once, and pushing a version to all of it.
  asio::awaitable<void> form_weight_group();
  bool broadcast_usable() const;
  // A group given up (or never formed) is formed again at an eager publish once every worker is connected, at most
  // once per broadcast_retry_interval.
  bool should_reform_weight_group() const;
  asio::awaitable<double> broadcast_weights(std::int64_t version);
  // Pushes `version` over TCP to every connected worker that does not hold it, all at once.
  asio::awaitable<double> push_to_each(std::int64_t version);
  void abandon_weight_group(const std::string& why);
  // Runs `job` on the collective thread (c10d calls block) and returns what it threw, without blocking the io thread.
  // `job` is a named std::function taken by reference: GCC 12 destroys a lambda with captures written inside a
  // co_await expression twice (seen here as a shared_ptr capture freeing the group mid-broadcast; tremotesf2 #551
  // works around the same double free).
  asio::awaitable<std::exception_ptr> run_collective(const std::function<void()>& job);
  asio::awaitable<void> worker_loop(Worker& worker, std::shared_ptr<Batch> batch);
  asio::awaitable<void> run_chunk(Worker& worker, Batch& batch, const std::vector<std::int64_t>& chunk);
  void settle_if_finished(const std::shared_ptr<Batch>& batch);
  void start_worker_loops(const std::shared_ptr<Batch>& batch);
  void prune_snapshots();

  const WorkerPoolOptions options_;
  const std::int64_t vocab_size_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::unique_ptr<Worker>> workers_;  // io thread
  std::map<std::int64_t, std::shared_ptr<const WeightSnapshot>> snapshots_;  // by version; io thread
  std::int64_t latest_version_ = -1;
  std::multiset<std::int64_t> in_flight_versions_;  // versions of batches being generated
  mutable std::mutex stats_mutex_;
  WorkerPoolBatchStats last_stats_;
  // io thread; a broadcast holds its own reference, so that giving the group up midway leaves it intact until then.
  std::shared_ptr<WeightBroadcastGroup> weight_group_;
  std::vector<Worker*> group_members_;                  // rank r + 1 is group_members_[r]
  bool group_attempted_ = false;
  Clock::time_point next_group_attempt_{};
  std::thread thread_;
  std::thread collective_;
  bool shutting_down_ = false;
};

asio::awaitable<RolloutWorkerPool::Impl::Turn> RolloutWorkerPool::Impl::take_turn(Worker& worker) {
  while (worker.in_turn) {
    auto wake = std::make_shared<asio::steady_timer>(io_, asio::steady_timer::time_point::max());
    worker.waiting_turns.push_back(wake);
    error_code ignored;
    co_await wake->async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  worker.in_turn = true;
  co_return Turn(this, &worker);
}

void RolloutWorkerPool::Impl::end_turn(Worker& worker) {
  if (shutting_down_) return;
  worker.in_turn = false;
  if (!worker.waiting_turns.empty()) {
    worker.waiting_turns.front()->cancel();
    worker.waiting_turns.pop_front();
  }
}

asio::awaitable<void> RolloutWorkerPool::Impl::send(Worker& worker, const proto::TrainerMessage& message) {
  try {
    co_await wire::async_write_frame(*worker.socket, wire::serialize_payload(message, options_.max_frame_bytes), options_.max_frame_bytes,
                                     Clock::now() + options_.stall_timeout);
  } catch (const wire::WireError& error) {
    throw WorkerFailure(fmt::format("sending failed: {}", error.what()));
  }
}

asio::awaitable<proto::WorkerMessage> RolloutWorkerPool::Impl::receive(Worker& worker, Clock::time_point deadline) {
  proto::WorkerMessage message;
  try {
    const auto payload = co_await wire::async_read_frame(*worker.socket, options_.max_frame_bytes, deadline);
    wire::parse_payload(payload, message);
  } catch (const wire::WireError& error) {
    if (error.kind() == wire::WireErrorKind::kTimeout) {
      throw WorkerFailure(fmt::format("no message for {} ms (stalled or unreachable)", options_.stall_timeout.count()));
    }
    if (error.kind() == wire::WireErrorKind::kClosed || error.kind() == wire::WireErrorKind::kIo) {
      throw WorkerFailure(fmt::format("the connection was lost ({})", error.what()));
    }
    throw WorkerFailure(fmt::format("sent something unreadable: {}", error.what()));
  }
  if (message.has_error() && message.error().fatal()) {
    throw WorkerFailure(fmt::format("the worker closed the connection: {}", message.error().message()));
  }
  co_return message;
}

asio::awaitable<void> RolloutWorkerPool::Impl::connect_worker(Worker& worker) {
  const auto deadline = Clock::now() + options_.connect_timeout;
  try {
    worker.socket.emplace(co_await wire::async_connect(worker.host, worker.port, deadline));
  } catch (const wire::WireError& error) {
    worker.socket.reset();
    throw WorkerFailure(error.what());
  }
  worker.version = -1;  // its weights are unknown until we push ours
  proto::TrainerMessage hello;
  hello.mutable_hello()->set_protocol_version(proto::PROTOCOL_VERSION_CURRENT);
  hello.mutable_hello()->set_token(options_.token);
  hello.mutable_hello()->set_client(fmt::format("{} (pid {})", options_.client_name, ::getpid()));
  co_await send(worker, hello);
  const auto reply = co_await receive(worker, deadline);
  if (reply.has_error()) throw WorkerFailure(fmt::format("refused the connection: {}", reply.error().message()));
  if (!reply.has_hello_reply()) throw WorkerFailure("answered Hello with something else (not a rollout worker?)");
  const auto& info = reply.hello_reply();
  if (info.vocab_size() != vocab_size_) {
    throw WorkerFailure(fmt::format("serves a model with a vocabulary of {}, the trainer's has {}: start it with the trainer's model",
                                    info.vocab_size(), vocab_size_));
  }
  worker.device = info.device();
  log(fmt::format("rollout worker {}: connected ({}, {} parameters, {} on {})", worker.name, info.architecture(), info.num_parameters(),
                  info.dtype(), info.device()));
}

asio::awaitable<double> RolloutWorkerPool::Impl::push_weights(Worker& worker, std::int64_t version) {
  if (worker.version == version) co_return 0.0;
  const auto it = snapshots_.find(version);
  if (it == snapshots_.end()) throw std::logic_error(fmt::format("rollout worker pool: no weights were published for version {}", version));
  const auto snapshot = it->second;  // keeps it alive across the awaits below
  const auto start = Clock::now();
  WeightUpdateStream stream(*snapshot, options_.weight_chunk_bytes);
  while (const auto message = stream.next()) co_await send(worker, *message);
  for (;;) {
    const auto reply = co_await receive(worker, Clock::now() + options_.stall_timeout);
    if (reply.has_weights_applied() && reply.weights_applied().version() == version) break;
    if (reply.has_error()) throw WorkerFailure(fmt::format("rejected weights of version {}: {}", version, reply.error().message()));
    if (reply.has_pong() || reply.has_progress()) continue;
    throw WorkerFailure("answered a weight update with an unexpected message");
  }
  worker.version = version;
  co_return std::chrono::duration<double>(Clock::now() - start).count();
}

void RolloutWorkerPool::Impl::connect() {
  std::promise<void> finished;
  auto future = finished.get_future();
  asio::post(io_, [this, &finished] {
    auto pending = std::make_shared<std::size_t>(workers_.size());
    for (auto& worker : workers_) {
      asio::co_spawn(
          io_,
          [this, &worker = *worker]() -> asio::awaitable<void> {
            try {
              if (!worker.socket) co_await connect_worker(worker);
            } catch (const WorkerFailure& failure) {
              give_up(worker, failure.what());
            }
          },
          [this, pending, &finished](std::exception_ptr) {
            if (--*pending > 0) return;
            if (std::none_of(workers_.begin(), workers_.end(), [](const auto& w) { return w->socket.has_value(); })) {
              std::string why;
              for (const auto& w : workers_) why += fmt::format("\n  {}: {}", w->name, w->last_error);
              finished.set_exception(std::make_exception_ptr(std::runtime_error("no rollout worker could be reached:" + why)));
            } else {
              finished.set_value();
            }
          });
    }
  });
  future.get();
  if (options_.weight_transport != WeightTransport::kBroadcast || group_attempted_) return;
  std::promise<void> formed;
  auto formed_future = formed.get_future();
  asio::co_spawn(io_, form_weight_group(), [&formed](std::exception_ptr failure) {
    if (failure) {
      formed.set_exception(failure);
    } else {
      formed.set_value();
    }
  });
  formed_future.get();
}

asio::awaitable<std::exception_ptr> RolloutWorkerPool::Impl::run_collective(const std::function<void()>& job) {
  struct Outcome {
    explicit Outcome(asio::io_context& io) : finished_signal(io, asio::steady_timer::time_point::max()) {}
    asio::steady_timer finished_signal;
    bool finished = false;
    std::exception_ptr error;
  };
  auto outcome = std::make_shared<Outcome>(io_);
  if (collective_.joinable()) collective_.join();  // the previous job has finished: it was awaited like this one
  collective_ = std::thread([this, outcome, job] {
    std::exception_ptr error;
    try {
      job();
    } catch (...) {
      error = std::current_exception();
    }
    asio::post(io_, [outcome, error] {
      outcome->error = error;
      outcome->finished = true;
      outcome->finished_signal.cancel();
    });
  });
  while (!outcome->finished) {
    error_code ignored;
    co_await outcome->finished_signal.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  co_return outcome->error;
}

asio::awaitable<void> RolloutWorkerPool::Impl::form_weight_group() {
  group_attempted_ = true;
  next_group_attempt_ = Clock::now() + options_.broadcast_retry_interval;  // a failing group is not retried at once
  std::vector<Worker*> members;
  std::vector<Turn> turns;
  for (auto& worker : workers_) {
    turns.push_back(co_await take_turn(*worker));
    if (!worker->socket) {
      log(fmt::format("rollout worker pool: no weight broadcast group: worker {} is not connected; weights go over TCP", worker->name));
      co_return;
    }
    members.push_back(worker.get());
  }
  const bool all_cuda = std::all_of(members.begin(), members.end(), [](const Worker* w) { return w->device.starts_with("cuda"); });
  const auto backend = all_cuda && nccl_available() ? BroadcastBackend::kNccl : BroadcastBackend::kGloo;
  const auto world_size = static_cast<int>(members.size()) + 1;
  std::unique_ptr<WeightBroadcastGroup> group;
  try {
    group = WeightBroadcastGroup::serve(options_.broadcast_host, world_size, backend, options_.broadcast_timeout);
  } catch (const std::exception& error) {
    log(fmt::format("rollout worker pool: no weight broadcast group: {}; weights go over TCP", error.what()));
    co_return;
  }
  // Every worker is asked to join, then our end forms; each worker answers once the whole group has formed.
  const auto& address = group->address();
  bool formed = true;
  for (std::size_t r = 0; r < members.size(); ++r) {
    proto::TrainerMessage message;
    auto* join = message.mutable_join_weight_group();
    join->set_store_host(address.host);
    join->set_store_port(address.port);
    join->set_rank(static_cast<int>(r) + 1);
    join->set_world_size(world_size);
    join->set_backend(std::string(backend_name(backend)));
    join->set_timeout_ms(address.timeout.count());
    join->set_group_id(address.group_id);
    try {
      co_await send(*members[r], message);
    } catch (const WorkerFailure& failure) {
      give_up(*members[r], failure.what());
      formed = false;
    }
  }
  std::string why;
  const std::function<void()> form = [g = group.get()] { g->form(); };
  if (const auto error = co_await run_collective(form)) {
    formed = false;
    why = what_of(error);
  }
  for (auto* member : members) {
    if (!member->socket) continue;
    try {
      for (;;) {
        const auto reply = co_await receive(*member, Clock::now() + options_.broadcast_timeout + options_.stall_timeout);
        if (reply.has_pong() || reply.has_progress()) continue;
        if (reply.has_weight_group_joined()) break;
        if (reply.has_error()) {
          formed = false;
          why = fmt::format("worker {}: {}", member->name, reply.error().message());
          break;
        }
        throw WorkerFailure("answered JoinWeightGroup with an unexpected message");
      }
    } catch (const WorkerFailure& failure) {
      give_up(*member, failure.what());
      formed = false;
    }
  }
  if (!formed) {
    log(fmt::format("rollout worker pool: the weight broadcast group did not form ({}); weights go over TCP",
                    why.empty() ? "a worker failed" : why));
    co_return;
  }
  log(fmt::format("rollout worker pool: weights go by broadcast ({})", group->describe()));
  weight_group_ = std::move(group);
  group_members_ = std::move(members);
}

bool RolloutWorkerPool::Impl::should_reform_weight_group() const {
  return options_.weight_transport == WeightTransport::kBroadcast && group_attempted_ && !weight_group_ && Clock::now() >= next_group_attempt_ &&
         std::all_of(workers_.begin(), workers_.end(), [](const auto& w) { return w->socket.has_value(); });
}

bool RolloutWorkerPool::Impl::broadcast_usable() const {
  return weight_group_ && std::all_of(group_members_.begin(), group_members_.end(), [](const Worker* w) { return w->socket.has_value(); });
}

void RolloutWorkerPool::Impl::abandon_weight_group(const std::string& why) {
  if (!weight_group_) return;
  log(fmt::format("rollout worker pool: the weight broadcast group is given up ({}); weights go over TCP from now on", why));
  weight_group_.reset();
}

asio::awaitable<double> RolloutWorkerPool::Impl::broadcast_weights(std::int64_t version) {
  const auto members = group_members_;  // a copy: giving a member up midway must not change what we iterate
  if (std::all_of(members.begin(), members.end(), [&](const Worker* w) { return w->version == version; })) co_return 0.0;
  const auto snapshot = snapshots_.at(version);
  const auto group = weight_group_;
  const auto start = Clock::now();
  std::vector<Turn> turns;  // every member's, so that nothing else talks to them during the update
  for (auto* member : members) turns.push_back(co_await take_turn(*member));
  if (!broadcast_usable()) {  // a member was given up while we waited: nobody has been told, the caller pushes over TCP
    abandon_weight_group("a member was given up");
    co_return 0.0;
  }
  proto::TrainerMessage message;
  *message.mutable_weights_begin() = broadcast_weights_begin(*snapshot, options_.broadcast_bucket_bytes);
  std::vector<Worker*> told;
  std::string why;
  for (auto* member : members) {
    try {
      co_await send(*member, message);
      told.push_back(member);
    } catch (const WorkerFailure& failure) {
      give_up(*member, failure.what());
      why = fmt::format("worker {}: {}", member->name, failure.what());
    }
  }
  // Even with a member gone the broadcast runs: the others are waiting in it, and fail there within the timeout.
  const auto bucket_bytes = options_.broadcast_bucket_bytes;
  const std::function<void()> send_all = [group, snapshot, bucket_bytes] {
    std::vector<torch::Tensor> tensors;
    for (const auto& tensor : snapshot->tensors) tensors.push_back(tensor.value);
    group->broadcast(tensors, bucket_bytes);
  };
  if (const auto error = co_await run_collective(send_all)) {
    why = what_of(error);
  }
  for (auto* member : told) {
    if (!member->socket) continue;
    try {
      for (;;) {
        const auto reply = co_await receive(*member, Clock::now() + options_.broadcast_timeout + options_.stall_timeout);
        if (reply.has_pong() || reply.has_progress()) continue;
        if (reply.has_weights_applied() && reply.weights_applied().version() == version) {
          member->version = version;
          break;
        }
        if (reply.has_error()) {
          member->version = -1;  // it kept its old weights: the TCP push that follows brings these
          why = fmt::format("worker {}: {}", member->name, reply.error().message());
          break;
        }
        throw WorkerFailure("answered a broadcast weight update with an unexpected message");
      }
    } catch (const WorkerFailure& failure) {
      give_up(*member, failure.what());
      why = fmt::format("worker {}: {}", member->name, failure.what());
    }
  }
  if (!why.empty() || told.size() != members.size()) abandon_weight_group(why);
  co_return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string RolloutWorkerPool::Impl::weight_transport() const {
  std::promise<std::string> text;
  auto future = text.get_future();
  asio::post(const_cast<asio::io_context&>(io_), [this, &text] {
    text.set_value(broadcast_usable() ? fmt::format("broadcast ({})", weight_group_->describe()) : std::string("TCP chunks"));
  });
  return future.get();
}

int RolloutWorkerPool::Impl::live_workers() const {
  std::promise<int> count;
  auto future = count.get_future();
  asio::post(const_cast<asio::io_context&>(io_), [this, &count] {
    count.set_value(static_cast<int>(std::count_if(workers_.begin(), workers_.end(), [](const auto& w) { return w->socket.has_value(); })));
  });
  return future.get();
}

void RolloutWorkerPool::Impl::prune_snapshots() {
  // Keep the latest version and every version a batch in flight may still need (a worker that reconnects).
  for (auto it = snapshots_.begin(); it != snapshots_.end();) {
    if (it->first != latest_version_ && in_flight_versions_.count(it->first) == 0) {
      it = snapshots_.erase(it);
    } else {
      ++it;
    }
  }
}

double RolloutWorkerPool::Impl::publish(std::shared_ptr<const WeightSnapshot> snapshot) {
  std::promise<double> finished;
  auto future = finished.get_future();
  asio::post(io_, [this, snapshot = std::move(snapshot), &finished] {
    const auto version = snapshot->version;
    snapshots_[version] = snapshot;
    latest_version_ = std::max(latest_version_, version);
    prune_snapshots();
    if (!in_flight_versions_.empty()) {  // workers are busy: each gets the weights before its next chunk
      finished.set_value(0.0);
      return;
    }
    asio::co_spawn(
        io_,
        [this, version]() -> asio::awaitable<double> {
          if (should_reform_weight_group()) co_await form_weight_group();  // every worker is idle: no batch runs
          double broadcast_seconds = 0.0;
          if (broadcast_usable()) broadcast_seconds = co_await broadcast_weights(version);
          co_return broadcast_seconds + co_await push_to_each(version);
        },
        [&finished](std::exception_ptr failure, double seconds) {
          if (failure) {
            finished.set_exception(failure);
          } else {
            finished.set_value(seconds);
          }
        });
  });
  return future.get();
}

asio::awaitable<double> RolloutWorkerPool::Impl::push_to_each(std::int64_t version) {
  // Concurrently, over each connection; a no-op for workers that hold `version` (the broadcast reached them).
  auto pending = std::make_shared<std::size_t>(1);
  auto seconds = std::make_shared<double>(0.0);
  asio::steady_timer all_done(io_, asio::steady_timer::time_point::max());
  auto done = [pending, &all_done] {
    if (--*pending == 0) all_done.cancel();
  };
  for (auto& worker : workers_) {
    if (!worker->socket || worker->version == version) continue;
    ++*pending;
    asio::co_spawn(
        io_,
        [this, &worker = *worker, version, seconds]() -> asio::awaitable<void> {
          const auto turn = co_await take_turn(worker);
          if (!worker.socket) co_return;
          try {
            *seconds = std::max(*seconds, co_await push_weights(worker, version));
          } catch (const WorkerFailure& failure) {
            give_up(worker, failure.what());
          }
        },
        [done](std::exception_ptr) { done(); });
  }
  done();
  while (*pending > 0) {
    error_code ignored;
    co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  co_return *seconds;
}

std::future<GenerationResult> RolloutWorkerPool::Impl::generate_async(GenerationRequest request, std::int64_t version) {
  auto batch = std::make_shared<Batch>();
  auto future = batch->promise.get_future();
  const auto prompts = static_cast<std::int64_t>(request.prompts.size());
  batch->request = std::move(request);
  batch->version = version;
  batch->groups.resize(static_cast<std::size_t>(prompts));
  batch->done.assign(static_cast<std::size_t>(prompts), false);
  for (std::int64_t p = 0; p < prompts; ++p) batch->queue.push_back(p);
  batch->remaining = prompts;
  batch->start = Clock::now();
  asio::post(io_, [this, batch] {
    if (snapshots_.count(batch->version) == 0) {
      batch->promise.set_exception(std::make_exception_ptr(
          std::logic_error(fmt::format("rollout worker pool: generate with policy version {}, which was never published", batch->version))));
      return;
    }
    batch->wake.emplace(io_, asio::steady_timer::time_point::max());
    // A broadcast needs every member idle: only when no other batch is being generated (else each worker gets the
    // weights over TCP before its first chunk).
    const bool broadcast = in_flight_versions_.empty() && broadcast_usable();
    in_flight_versions_.insert(batch->version);
    batch->active = static_cast<int>(workers_.size());
    if (!broadcast) {
      start_worker_loops(batch);
      return;
    }
    asio::co_spawn(
        io_, [this, batch]() -> asio::awaitable<void> { batch->stats.weight_push_seconds += co_await broadcast_weights(batch->version); },
        [this, batch](std::exception_ptr failure) {
          if (failure) log(fmt::format("rollout worker pool: weight broadcast: unexpected error: {}", what_of(failure)));
          start_worker_loops(batch);
        });
  });
  return future;
}

void RolloutWorkerPool::Impl::start_worker_loops(const std::shared_ptr<Batch>& batch) {
  for (auto& worker : workers_) {
    worker->stale_retries = 0;
    asio::co_spawn(io_, worker_loop(*worker, batch), [this, batch](std::exception_ptr failure) {
      if (failure) {
        try {
          std::rethrow_exception(failure);
        } catch (const std::exception& error) {
          batch->rejected = batch->rejected.value_or(fmt::format("rollout worker pool: unexpected error: {}", error.what()));
        }
      }
      --batch->active;
      batch->wake->cancel();
      settle_if_finished(batch);
    });
  }
}

asio::awaitable<void> RolloutWorkerPool::Impl::worker_loop(Worker& worker, std::shared_ptr<Batch> batch) {
  try {
    const auto turn = co_await take_turn(worker);
    if (!worker.socket) co_await connect_worker(worker);
  } catch (const WorkerFailure& failure) {
    give_up(worker, failure.what());
    co_return;
  }
  bool used = false;
  while (batch->remaining > 0 && !batch->rejected) {
    if (batch->queue.empty()) {
      error_code ignored;
      batch->wake->expires_at(asio::steady_timer::time_point::max());
      co_await batch->wake->async_wait(asio::redirect_error(asio::use_awaitable, ignored));
      continue;
    }
    // Another batch or a weight update may hold the worker: wait for its turn, then look at the queue again.
    const auto turn = co_await take_turn(worker);
    if (!worker.socket) co_return;  // given up meanwhile (by another batch): the others take the prompts
    if (batch->queue.empty() || batch->remaining == 0 || batch->rejected) continue;
    // An equal share of what waits among the loops that have no chunk: the first round splits the batch evenly,
    // and a failed worker's prompts are spread over the idle survivors.
    const auto idle = static_cast<std::size_t>(std::max(batch->active - batch->busy, 1));
    const auto share = (batch->queue.size() + idle - 1) / idle;
    std::vector<std::int64_t> chunk(batch->queue.begin(), batch->queue.begin() + static_cast<std::ptrdiff_t>(share));
    batch->queue.erase(batch->queue.begin(), batch->queue.begin() + static_cast<std::ptrdiff_t>(share));
    if (!used) {
      used = true;
      ++batch->stats.workers_used;
    }
    ++batch->busy;
    struct BusyGuard {
      int& busy;
      ~BusyGuard() { --busy; }
    } busy_guard{batch->busy};
    try {
      batch->stats.weight_push_seconds += co_await push_weights(worker, batch->version);
      co_await run_chunk(worker, *batch, chunk);
    } catch (const RequestRejected& rejected) {
      batch->rejected = rejected.what();
      batch->wake->cancel();
      co_return;
    } catch (const WorkerFailure& failure) {
      give_up(worker, failure.what());
      batch->failures.push_back(fmt::format("{}: {}", worker.name, failure.what()));
      ++batch->stats.workers_failed;
      std::int64_t requeued = 0;
      for (const auto p : chunk) {
        if (!batch->done[static_cast<std::size_t>(p)]) {
          batch->queue.push_back(p);
          ++requeued;
        }
      }
      batch->stats.reassigned_prompts += requeued;
      if (requeued > 0) log(fmt::format("rollout worker pool: {} prompts of {} go to the other workers", requeued, worker.name));
      batch->wake->cancel();
      co_return;
    }
  }
}

asio::awaitable<void> RolloutWorkerPool::Impl::run_chunk(Worker& worker, Batch& batch, const std::vector<std::int64_t>& chunk) {
  const auto request_id = batch.next_request_id++;
  proto::TrainerMessage message;
  *message.mutable_generate() = to_proto(batch.request, chunk, request_id, batch.version);
  co_await send(worker, message);
  std::set<std::int64_t> waiting(chunk.begin(), chunk.end());
  for (;;) {
    const auto reply = co_await receive(worker, Clock::now() + options_.stall_timeout);
    switch (reply.body_case()) {
      case proto::WorkerMessage::kGroupResult: {
        const auto& group = reply.group_result();
        if (group.request_id() != request_id) throw WorkerFailure(fmt::format("sent a result for request {}, expected {}", group.request_id(), request_id));
        const auto p = static_cast<std::int64_t>(group.prompt_index());
        if (waiting.erase(p) == 0) throw WorkerFailure(fmt::format("sent a result for prompt {}, which it was not asked for or sent twice", p));
        if (group.policy_version() != batch.version) {
          throw WorkerFailure(fmt::format("generated with policy version {}, the batch needs {}", group.policy_version(), batch.version));
        }
        std::vector<Completion> completions;
        try {
          completions = from_proto(group, batch.request.samples_per_prompt, batch.request.max_new_tokens, vocab_size_);
        } catch (const ProtocolViolation& violation) {
          throw WorkerFailure(fmt::format("sent a malformed result: {}", violation.what()));
        }
        if (!batch.done[static_cast<std::size_t>(p)]) {
          batch.groups[static_cast<std::size_t>(p)] = std::move(completions);
          batch.done[static_cast<std::size_t>(p)] = true;
          if (--batch.remaining == 0) batch.wake->cancel();
        }
        break;
      }
      case proto::WorkerMessage::kProgress:
      case proto::WorkerMessage::kPong:
        break;
      case proto::WorkerMessage::kGenerateDone:
        if (reply.generate_done().request_id() != request_id) throw WorkerFailure("finished a request it was not asked for");
        if (!waiting.empty()) throw WorkerFailure(fmt::format("finished without {} of the prompts it was given", waiting.size()));
        co_return;
      case proto::WorkerMessage::kError: {
        const auto& error = reply.error();
        if (error.code() == proto::ERROR_CODE_BAD_REQUEST) {
          throw RequestRejected(fmt::format("rollout worker {} rejected the request: {}", worker.name, error.message()));
        }
        if (error.code() == proto::ERROR_CODE_STALE_WEIGHTS && waiting.size() == chunk.size() && ++worker.stale_retries <= kMaxStaleRetries) {
          // It lost our weights (restarted behind the same address?): push them and ask again.
          worker.version = -1;
          co_await push_weights(worker, batch.version);
          co_await send(worker, message);
          break;
        }
        throw WorkerFailure(fmt::format("failed the request: {}", error.message()));
      }
      default:
        throw WorkerFailure("sent an unexpected message during generation");
    }
  }
}

void RolloutWorkerPool::Impl::settle_if_finished(const std::shared_ptr<Batch>& batch) {
  if (batch->active > 0) return;
  in_flight_versions_.erase(in_flight_versions_.find(batch->version));
  prune_snapshots();
  {
    const std::lock_guard lock(stats_mutex_);
    last_stats_ = batch->stats;
  }
  if (batch->rejected) {
    batch->promise.set_exception(std::make_exception_ptr(std::runtime_error(*batch->rejected)));
    return;
  }
  if (batch->remaining > 0) {
    std::string why;
    for (const auto& worker : workers_) {
      if (!worker->socket) why += fmt::format("\n  {}: {}", worker->name, worker->last_error);
    }
    batch->promise.set_exception(std::make_exception_ptr(std::runtime_error(
        fmt::format("every rollout worker failed; {} of {} prompts were not generated:{}", batch->remaining, batch->groups.size(), why))));
    return;
  }
  GenerationResult result;
  for (auto& group : batch->groups) {
    for (auto& completion : group) {
      result.generated_tokens += static_cast<std::int64_t>(completion.tokens.size());
      result.completions.push_back(std::move(completion));
    }
  }
  result.seconds = std::chrono::duration<double>(Clock::now() - batch->start).count();
  batch->promise.set_value(std::move(result));
}

RolloutWorkerPool::RolloutWorkerPool(WorkerPoolOptions options, std::int64_t vocab_size)
    : impl_(std::make_unique<Impl>(std::move(options), vocab_size)) {}
RolloutWorkerPool::~RolloutWorkerPool() = default;
void RolloutWorkerPool::connect() { impl_->connect(); }
int RolloutWorkerPool::live_workers() const { return impl_->live_workers(); }
double RolloutWorkerPool::publish(std::shared_ptr<const WeightSnapshot> snapshot) { return impl_->publish(std::move(snapshot)); }
std::future<GenerationResult> RolloutWorkerPool::generate_async(GenerationRequest request, std::int64_t version) {
  return impl_->generate_async(std::move(request), version);
}
WorkerPoolBatchStats RolloutWorkerPool::last_batch_stats() const { return impl_->last_batch_stats(); }
std::string RolloutWorkerPool::weight_transport() const { return impl_->weight_transport(); }

}  // namespace grpo::rollout
