// The rollout protocol over real loopback sockets: rollout workers (RolloutWorkerServer) and the trainer's pool
// (RolloutWorkerPool) give the same batch as generating in-process; weights travel by version; hostile peers (garbage,
// oversized frames, wrong token or version, malformed weights) get an error frame and are disconnected while the
// worker keeps serving; the pool gives up stalled workers and ones that send malformed results, reassigns their
// prompts and counts every prompt once.
#include <gtest/gtest.h>

#include <array>
#include <iostream>
#include <cmath>
#include <mutex>
#include <optional>
#include <set>
#include <functional>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "policy/char_tokenizer.h"
#include "rollout/remote/rollout_messages.h"
#include "rollout/remote/worker_pool.h"
#include "rollout/remote/worker_server.h"
#include "rollout/wire/frame.h"
#include "tests/testing/tiny_model.h"

namespace grpo::rollout {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

constexpr std::string_view kToken = "s3cret-token";
constexpr std::int64_t kVocab = 103;  // the embedded character tokenizer's, so stop strings can be decoded

policy::LlamaForCausalLM trainer_model(std::uint64_t seed = 5) {
  auto model = fixtures::tiny_model({.vocab_size = kVocab, .num_key_value_heads = 2, .seed = seed, .weight_scale = 3.0});
  model->eval();
  return model;
}

policy::Policy worker_policy(std::uint64_t seed) {
  return policy::make_policy(trainer_model(seed), std::make_shared<policy::CharTokenizer>(policy::CharTokenizer::make_embedded()));
}

// A worker in this process on a free loopback port. Its model starts from other weights than the trainer's: only a
// weight push makes its samples match.
struct Worker {
  explicit Worker(std::uint64_t seed = 99, std::chrono::milliseconds hello_timeout = std::chrono::milliseconds(2000), std::uint16_t port = 0) {
    RolloutWorkerOptions options;
    options.port = port;
    options.token = std::string(kToken);
    options.hello_timeout = hello_timeout;
    options.log = [this](std::string_view line) {
      const std::lock_guard lock(log_mutex);
      log.emplace_back(line);
    };
    server = std::make_unique<RolloutWorkerServer>(options, worker_policy(seed));
    server->start();
  }
  std::string address() const { return fmt::format("127.0.0.1:{}", server->port()); }
  std::string log_text() {
    const std::lock_guard lock(log_mutex);
    return fmt::format("{}", fmt::join(log, "\n"));
  }
  std::unique_ptr<RolloutWorkerServer> server;
  std::mutex log_mutex;
  std::vector<std::string> log;
};

GenerationRequest sampled_request() {
  GenerationRequest request;
  for (std::int64_t p = 0; p < 9; ++p) request.prompts.push_back({10 + p, 20 + 2 * p, 30, 40 + p});
  request.samples_per_prompt = 3;
  request.max_new_tokens = 10;
  request.sampling.temperature = 1.0;
  request.stop_token_ids = {1};
  request.seed = 77;
  return request;
}

WorkerPoolOptions pool_options(std::vector<std::string> addresses) {
  WorkerPoolOptions options;
  options.addresses = std::move(addresses);
  options.token = std::string(kToken);
  options.connect_timeout = std::chrono::milliseconds(2000);
  options.stall_timeout = std::chrono::milliseconds(5000);
  options.weight_chunk_bytes = 1000;  // many chunks per tensor: the reassembly is exercised
  options.log = [](std::string_view) {};  // failures are checked through last_batch_stats()
  return options;
}

void expect_same_batch(const GenerationResult& actual, const GenerationResult& expected) {
  ASSERT_EQ(actual.completions.size(), expected.completions.size());
  for (std::size_t i = 0; i < actual.completions.size(); ++i) {
    const auto& a = actual.completions[i];
    const auto& e = expected.completions[i];
    EXPECT_EQ(a.prompt_index, e.prompt_index) << i;
    EXPECT_EQ(a.sample_index, e.sample_index) << i;
    EXPECT_EQ(a.tokens, e.tokens) << "completion " << i;
    ASSERT_EQ(a.logprobs.size(), e.logprobs.size()) << i;
    for (std::size_t t = 0; t < a.logprobs.size(); ++t) EXPECT_NEAR(a.logprobs[t], e.logprobs[t], 1e-4) << i << ":" << t;
    EXPECT_EQ(a.finish, e.finish) << i;
  }
}

TEST(RolloutWorkers, PoolOfThreeGivesTheInProcessBatchAfterAWeightPush) {
  Worker a(1), b(2), c(3);
  auto model = trainer_model();
  RolloutWorkerPool pool(pool_options({a.address(), b.address(), c.address()}), kVocab);
  pool.connect();
  EXPECT_EQ(pool.live_workers(), 3);
  pool.publish(std::make_shared<const WeightSnapshot>(snapshot_weights(model, 0)));
  EXPECT_EQ(a.server->policy_version(), 0);
  const auto remote = pool.generate(sampled_request(), 0);
  expect_same_batch(remote, generate(model, sampled_request()));
  for (const auto& completion : remote.completions) EXPECT_EQ(completion.policy_version, 0);
  const auto stats = pool.last_batch_stats();
  EXPECT_EQ(stats.workers_used, 3);
  EXPECT_EQ(stats.workers_failed, 0);

  // New weights, version 1: the workers' samples follow them.
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.mul_(1.3);
  }
  pool.publish(std::make_shared<const WeightSnapshot>(snapshot_weights(model, 1)));
  EXPECT_EQ(b.server->policy_version(), 1);
  const auto updated = pool.generate(sampled_request(), 1);
  expect_same_batch(updated, generate(model, sampled_request()));
  EXPECT_NE(updated.completions[0].tokens, remote.completions[0].tokens);
}

WorkerPoolOptions broadcast_pool_options(std::vector<std::string> addresses) {
  auto options = pool_options(std::move(addresses));
  options.weight_transport = WeightTransport::kBroadcast;
  options.broadcast_timeout = std::chrono::milliseconds(3000);
  options.broadcast_bucket_bytes = 4096;  // several buckets per update
  return options;
}

TEST(RolloutWorkers, WeightsByBroadcastReachEveryWorkerOverAGlooGroup) {
  Worker a(1), b(2), c(3);
  auto model = trainer_model();
  RolloutWorkerPool pool(broadcast_pool_options({a.address(), b.address(), c.address()}), kVocab);
  pool.connect();
  EXPECT_TRUE(pool.weight_transport().starts_with("broadcast (Gloo, 4 members, rendezvous 127.0.0.1:")) << pool.weight_transport();
  EXPECT_NE(a.log_text().find("joined the weight group as rank 1"), std::string::npos) << a.log_text();
  pool.publish(std::make_shared<const WeightSnapshot>(snapshot_weights(model, 0)));
  for (auto* worker : {&a, &b, &c}) EXPECT_EQ(worker->server->policy_version(), 0);
  expect_same_batch(pool.generate(sampled_request(), 0), generate(model, sampled_request()));

  // Version 1 in bfloat16: the workers sample from the trainer's weights rounded to bf16.
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.mul_(1.3);
  }
  pool.publish(std::make_shared<const WeightSnapshot>(snapshot_weights(model, 1, torch::kBFloat16)));
  for (auto* worker : {&a, &b, &c}) EXPECT_EQ(worker->server->policy_version(), 1);
  auto rounded = trainer_model();
  {
    torch::NoGradGuard no_grad;
    auto source = model->named_parameters();
    for (auto& item : rounded->named_parameters()) item.value().copy_(source[item.key()].to(torch::kBFloat16));
  }
  expect_same_batch(pool.generate(sampled_request(), 1), generate(rounded, sampled_request()));
  EXPECT_TRUE(pool.weight_transport().starts_with("broadcast")) << "no failure, so the group still serves";
  EXPECT_EQ(pool.last_batch_stats().workers_failed, 0);
}

TEST(RolloutWorkers, AWorkerLostFromTheWeightGroupSendsTheRestOverTcpWithNoPromptLost) {
  Worker a(1), b(2);
  auto c = std::make_unique<Worker>(3);
  auto model = trainer_model();
  RolloutWorkerPool pool(broadcast_pool_options({a.address(), b.address(), c->address()}), kVocab);
  pool.connect();
  ASSERT_TRUE(pool.weight_transport().starts_with("broadcast")) << pool.weight_transport();
  pool.publish(std::make_shared<const WeightSnapshot>(snapshot_weights(model, 0)));
  c.reset();  // dies: its connection and its end of the group close
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.mul_(1.3);
  }
  pool.publish(std::make_shared<const WeightSnapshot>(snapshot_weights(model, 1)));
  EXPECT_EQ(pool.weight_transport(), "TCP chunks");
  EXPECT_EQ(a.server->policy_version(), 1);
  EXPECT_EQ(b.server->policy_version(), 1);
  EXPECT_EQ(pool.live_workers(), 2);
  expect_same_batch(pool.generate(sampled_request(), 1), generate(model, sampled_request()));
  // Later versions go over TCP.
  pool.publish(std::make_shared<const WeightSnapshot>(snapshot_weights(model, 2)));
  EXPECT_EQ(a.server->policy_version(), 2);
}

TEST(RolloutWorkers, AWorkerBackAtItsAddressRejoinsAWeightGroupFormedAgain) {
  Worker a(1), b(2);
  auto c = std::make_unique<Worker>(3);
  const auto c_port = c->server->port();
  auto model = trainer_model();
  auto options = broadcast_pool_options({a.address(), b.address(), c->address()});
  options.broadcast_retry_interval = std::chrono::milliseconds(0);
  RolloutWorkerPool pool(options, kVocab);
  pool.connect();
  pool.publish(std::make_shared<const WeightSnapshot>(snapshot_weights(model, 0)));
  c.reset();
  pool.publish(std::make_shared<const WeightSnapshot>(snapshot_weights(model, 1)));
  ASSERT_EQ(pool.weight_transport(), "TCP chunks");
  // The worker comes back at its address (a restart); the next batch reconnects it and pushes it version 1 over TCP.
  c = std::make_unique<Worker>(4, std::chrono::milliseconds(2000), c_port);
  expect_same_batch(pool.generate(sampled_request(), 1), generate(model, sampled_request()));
  EXPECT_EQ(c->server->policy_version(), 1);
  // With every worker connected and idle, the next publish forms a new group and broadcasts over it.
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.mul_(1.3);
  }
  pool.publish(std::make_shared<const WeightSnapshot>(snapshot_weights(model, 2)));
  EXPECT_TRUE(pool.weight_transport().starts_with("broadcast (Gloo, 4 members")) << pool.weight_transport();
  EXPECT_NE(c->log_text().find("joined the weight group as rank 3"), std::string::npos) << c->log_text();
  for (auto* worker : {&a, &b, c.get()}) EXPECT_EQ(worker->server->policy_version(), 2);
  expect_same_batch(pool.generate(sampled_request(), 2), generate(model, sampled_request()));
}

TEST(RolloutWorkers, OverlappingBatchesTakeTurnsOnEachWorker) {
  // Two or three batches in flight at once, of two policy versions (overlap mode with dynamic sampling asks for an
  // extra round while the next step's batch is generating): each worker's connection serves one of them at a time,
  // chunk by chunk, with the version each chunk needs; every batch comes back complete and equal to in-process
  // generation, and no worker is given up. Once two loops of different batches could read one worker's socket.
  for (const auto transport : {WeightTransport::kTcp, WeightTransport::kBroadcast}) {
    SCOPED_TRACE(transport == WeightTransport::kTcp ? "TCP" : "broadcast");
    Worker a(1), b(2);
    auto model = trainer_model();
    auto version0 = trainer_model();  // the same weights, kept
    const auto addresses = std::vector<std::string>{a.address(), b.address()};
    RolloutWorkerPool pool(transport == WeightTransport::kTcp ? pool_options(addresses) : broadcast_pool_options(addresses), kVocab);
    pool.connect();
    pool.publish(std::make_shared<const WeightSnapshot>(snapshot_weights(model, 0)));
    auto first = pool.generate_async(sampled_request(), 0);
    {
      torch::NoGradGuard no_grad;
      for (auto& p : model->parameters()) p.mul_(1.3);
    }
    pool.publish(std::make_shared<const WeightSnapshot>(snapshot_weights(model, 1)));  // deferred: a batch is running
    auto second = pool.generate_async(sampled_request(), 1);
    auto third = pool.generate_async(sampled_request(), 1);
    expect_same_batch(first.get(), generate(version0, sampled_request()));
    const auto expected = generate(model, sampled_request());
    expect_same_batch(second.get(), expected);
    expect_same_batch(third.get(), expected);
    EXPECT_EQ(pool.live_workers(), 2);
    EXPECT_EQ(pool.last_batch_stats().workers_failed, 0);
  }
}

TEST(RolloutWorkers, AGroupThatCannotFormLeavesWeightsOnTcp) {
  Worker a(1);
  auto options = broadcast_pool_options({a.address()});
  options.broadcast_host = "203.0.113.1";  // TEST-NET-3: nothing answers there, so the worker cannot join
  std::vector<std::string> lines;
  options.log = [&lines](std::string_view line) { lines.emplace_back(line); };
  auto model = trainer_model();
  RolloutWorkerPool pool(options, kVocab);
  pool.connect();
  EXPECT_EQ(pool.weight_transport(), "TCP chunks");
  EXPECT_NE(fmt::format("{}", fmt::join(lines, "\n")).find("weights go over TCP"), std::string::npos) << fmt::format("{}", fmt::join(lines, "\n"));
  pool.publish(std::make_shared<const WeightSnapshot>(snapshot_weights(model, 0)));
  expect_same_batch(pool.generate(sampled_request(), 0), generate(model, sampled_request()));
}

TEST(RolloutWorkers, StopStringsAndMinPTravelWithTheRequest) {
  Worker a(1), b(2);
  auto model = trainer_model();
  const auto tokenizer = policy::CharTokenizer::make_embedded();
  RolloutWorkerPool pool(pool_options({a.address(), b.address()}), kVocab);
  pool.connect();
  pool.publish(std::make_shared<const WeightSnapshot>(snapshot_weights(model, 0)));
  auto request = sampled_request();
  request.sampling.min_p = 0.05;
  request.max_new_tokens = 20;
  // A stop string the local run hits: the decoded text of some completion's tokens 3..4.
  const auto probe = generate(model, request);
  std::string stop;
  for (const auto& c : probe.completions) {
    if (c.tokens.size() >= 6) {
      stop = tokenizer.decode(std::span(c.tokens).subspan(3, 2));
      break;
    }
  }
  ASSERT_FALSE(stop.empty());
  request.stop_strings = {stop};
  GenerationHooks hooks;
  hooks.tokenizer = &tokenizer;
  const auto local = generate(model, request, hooks);
  const auto remote = pool.generate(request, 0);
  expect_same_batch(remote, local);
  int stopped = 0;
  for (const auto& c : remote.completions) stopped += c.stop_string == stop;
  EXPECT_GE(stopped, 1);
}

TEST(RolloutWorkers, AllWorkersUnreachableIsAClearError) {
  RolloutWorkerPool pool(pool_options({"127.0.0.1:1", "127.0.0.1:2"}), kVocab);
  try {
    pool.connect();
    FAIL() << "connect should fail";
  } catch (const std::runtime_error& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find("no rollout worker could be reached"), std::string::npos) << what;
    EXPECT_NE(what.find("127.0.0.1:1: cannot connect"), std::string::npos) << what;
    EXPECT_NE(what.find("127.0.0.1:2: cannot connect"), std::string::npos) << what;
  }
}

TEST(RolloutWorkers, ARequestNoWorkerCanServeFailsTheBatchAtOnce) {
  Worker a(1), b(2);
  auto model = trainer_model();
  RolloutWorkerPool pool(pool_options({a.address(), b.address()}), kVocab);
  pool.connect();
  pool.publish(std::make_shared<const WeightSnapshot>(snapshot_weights(model, 0)));
  auto request = sampled_request();
  request.prompts[7] = {5, 500};  // outside the vocabulary; the second worker gets prompts 5..8, as its prompts 0..3
  try {
    pool.generate(request, 0);
    FAIL() << "the batch should fail";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("rejected the request: generate: prompt 7: token 500 at position 1 is outside the vocabulary"),
              std::string::npos)
        << error.what();
  }
  // The workers are still usable: the error was about the request, not them.
  EXPECT_EQ(pool.live_workers(), 2);
  expect_same_batch(pool.generate(sampled_request(), 0), generate(model, sampled_request()));
}

// ---- raw peers ----------------------------------------------------------------------------------------------------

// A blocking client connection for speaking (or breaking) the protocol by hand.
struct RawConnection {
  explicit RawConnection(std::uint16_t port) : socket(io) { socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port)); }
  void write_bytes(std::string_view bytes) { asio::write(socket, asio::buffer(bytes.data(), bytes.size())); }
  void send(const proto::TrainerMessage& message) { write_bytes(wire::encode_frame(message.SerializeAsString())); }
  void hello(std::string_view token = kToken, std::uint32_t version = proto::PROTOCOL_VERSION_CURRENT) {
    proto::TrainerMessage message;
    message.mutable_hello()->set_protocol_version(version);
    message.mutable_hello()->set_token(std::string(token));
    send(message);
  }
  // The next frame as a WorkerMessage; nullopt when the worker closed the connection.
  std::optional<proto::WorkerMessage> receive() {
    std::array<char, wire::kFrameHeaderBytes> header{};
    boost::system::error_code error;
    asio::read(socket, asio::buffer(header), error);
    if (error) return std::nullopt;
    std::string payload(wire::decode_frame_header(header), '\0');
    asio::read(socket, asio::buffer(payload), error);
    if (error) return std::nullopt;
    proto::WorkerMessage message;
    wire::parse_payload(payload, message);
    return message;
  }
  bool closed_by_peer() {
    char byte;
    boost::system::error_code error;
    asio::read(socket, asio::buffer(&byte, 1), error);
    return error == asio::error::eof || error == asio::error::connection_reset;
  }
  asio::io_context io;
  tcp::socket socket;
};

// The worker answers an Error frame with `code` whose message contains `needle`, then closes the connection.
void expect_refused(RawConnection& connection, proto::ErrorCode code, std::string_view needle) {
  const auto reply = connection.receive();
  ASSERT_TRUE(reply.has_value()) << "expected an error frame before the close";
  ASSERT_TRUE(reply->has_error()) << reply->DebugString();
  EXPECT_EQ(reply->error().code(), code) << reply->error().message();
  EXPECT_TRUE(reply->error().fatal());
  EXPECT_NE(reply->error().message().find(needle), std::string::npos) << reply->error().message();
  EXPECT_TRUE(connection.closed_by_peer());
}

TEST(RolloutWorkerServer, HostilePeersGetAnErrorAndAreDisconnectedWhileOthersAreServed) {
  Worker worker(1, std::chrono::milliseconds(300));
  const auto port = worker.server->port();
  // A good trainer connects first and stays connected throughout.
  RolloutWorkerPool pool(pool_options({worker.address()}), kVocab);
  pool.connect();
  auto model = trainer_model();
  pool.publish(std::make_shared<const WeightSnapshot>(snapshot_weights(model, 0)));
  {
    RawConnection c(port);
    c.write_bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_refused(c, proto::ERROR_CODE_PROTOCOL, "where a grpo frame starts");
  }
  {
    RawConnection c(port);
    c.write_bytes(std::string("GRPW\xff\xff\xff\x7f", 8));  // 2 GiB announced
    expect_refused(c, proto::ERROR_CODE_PROTOCOL, "exceeds");
  }
  {
    RawConnection c(port);
    c.hello("wrong-token");
    expect_refused(c, proto::ERROR_CODE_AUTH, "authentication failed");
  }
  {
    RawConnection c(port);
    c.hello(kToken, 7);
    expect_refused(c, proto::ERROR_CODE_PROTOCOL, "protocol version 7 is not supported");
  }
  {
    RawConnection c(port);
    proto::TrainerMessage ping;
    ping.mutable_ping()->set_nonce(1);
    c.send(ping);
    expect_refused(c, proto::ERROR_CODE_PROTOCOL, "the first message must be Hello");
  }
  {
    RawConnection c(port);  // says nothing
    expect_refused(c, proto::ERROR_CODE_PROTOCOL, "no Hello within 300 ms");
  }
  {
    RawConnection c(port);
    c.hello();
    ASSERT_TRUE(c.receive()->has_hello_reply());
    c.write_bytes(wire::encode_frame(std::string("\x0a\xff\xff\xff\xff\x0f", 6)));  // a Hello field with a bad length
    expect_refused(c, proto::ERROR_CODE_PROTOCOL, "");
  }
  {
    RawConnection c(port);
    c.hello();
    ASSERT_TRUE(c.receive()->has_hello_reply());
    c.write_bytes("GRPW\x04");  // half a header, then the peer goes away
  }
  // The good trainer was served all along.
  expect_same_batch(pool.generate(sampled_request(), 0), generate(model, sampled_request()));
  EXPECT_NE(worker.log_text().find("authentication failed"), std::string::npos);
}

TEST(RolloutWorkerServer, BroadcastMessagesThatCannotBeServedAreRefused) {
  Worker worker(1);
  const auto port = worker.server->port();
  auto model = trainer_model();
  const auto connected = [&] {
    auto c = std::make_unique<RawConnection>(port);
    c->hello();
    EXPECT_TRUE(c->receive()->has_hello_reply());
    return c;
  };
  {
    auto c = connected();
    proto::TrainerMessage message;
    *message.mutable_weights_begin() = broadcast_weights_begin(snapshot_weights(model, 1), 1 << 20);
    c->send(message);
    expect_refused(*c, proto::ERROR_CODE_PROTOCOL, "without a weight group (JoinWeightGroup first)");
  }
  const auto join = [](auto spoil) {
    proto::TrainerMessage message;
    auto* j = message.mutable_join_weight_group();
    j->set_store_host("127.0.0.1");
    j->set_store_port(1);
    j->set_rank(1);
    j->set_world_size(2);
    j->set_backend("gloo");
    j->set_timeout_ms(500);
    spoil(*j);
    return message;
  };
  for (const auto& [needle, message] : std::vector<std::pair<std::string, proto::TrainerMessage>>{
           {"unknown backend 'mpi'", join([](auto& j) { j.set_backend("mpi"); })},
           {"rank 0 of 2 members", join([](auto& j) { j.set_rank(0); })},
           {"no usable rendezvous store", join([](auto& j) { j.set_store_port(0); })},
           {"the timeout must be in 1..600000 ms, got 0", join([](auto& j) { j.set_timeout_ms(0); })},
           {"got 3600000", join([](auto& j) { j.set_timeout_ms(3600000); })},  // would hold the engine thread for an hour
           {"100000 members exceed the 4096", join([](auto& j) { j.set_world_size(100000); })}}) {
    auto c = connected();
    c->send(message);
    expect_refused(*c, proto::ERROR_CODE_PROTOCOL, needle);
  }
  {
    // A well-formed request to join a group nobody serves: a non-fatal error, and the connection serves on.
    auto c = connected();
    c->send(join([](auto&) {}));
    const auto reply = c->receive();
    ASSERT_TRUE(reply && reply->has_error()) << (reply ? reply->DebugString() : "closed");
    EXPECT_FALSE(reply->error().fatal());
    EXPECT_NE(reply->error().message().find("cannot reach the trainer's rendezvous store at 127.0.0.1:1"), std::string::npos)
        << reply->error().message();
    proto::TrainerMessage ping;
    ping.mutable_ping()->set_nonce(5);
    c->send(ping);
    const auto pong = c->receive();
    ASSERT_TRUE(pong && pong->has_pong());
    EXPECT_EQ(pong->pong().nonce(), 5u);
  }
  EXPECT_EQ(worker.server->policy_version(), 0);
}

TEST(RolloutWorkerServer, MalformedWeightUpdatesAreRefusedAndLeaveTheWeightsAlone) {
  Worker worker(1);
  auto model = trainer_model();
  const auto snapshot = snapshot_weights(model, 3);
  auto update = [&](const std::function<void(std::vector<proto::TrainerMessage>&)>& corrupt) {
    std::vector<proto::TrainerMessage> messages;
    WeightUpdateStream stream(snapshot, std::size_t{1} << 20);  // one chunk per tensor: m[1] is all of the first tensor
    while (auto m = stream.next()) messages.push_back(*m);
    corrupt(messages);
    return messages;
  };
  const std::vector<std::pair<std::string, std::function<void(std::vector<proto::TrainerMessage>&)>>> cases = {
      {"has shape [2, 16]", [](auto& m) { m[1].mutable_weight_chunk()->set_shape(0, 2); }},
      {"has no parameter 'model.bogus'", [](auto& m) { m[1].mutable_weight_chunk()->set_name("model.bogus"); }},
      {"unknown weight dtype 'I8'", [](auto& m) { m[1].mutable_weight_chunk()->set_dtype("I8"); }},
      {"the next expected byte is 0", [](auto& m) { m[1].mutable_weight_chunk()->set_offset(8); }},
      {"runs past the tensor", [](auto& m) { m[1].mutable_weight_chunk()->mutable_data()->append(64, 'x'); }},
      {"never arrived", [](auto& m) { m.erase(m.begin() + 1); }},
      {"announces 5 tensors", [](auto& m) { m[0].mutable_weights_begin()->set_num_tensors(5); }},
      {"a WeightChunk outside a weight update", [](auto& m) { m.erase(m.begin()); }},
  };
  for (const auto& [needle, corrupt] : cases) {
    RawConnection c(worker.server->port());
    c.hello();
    ASSERT_TRUE(c.receive()->has_hello_reply());
    for (const auto& message : update(corrupt)) {
      boost::system::error_code ignored;
      asio::write(c.socket, asio::buffer(wire::encode_frame(message.SerializeAsString())), ignored);  // it may close early
    }
    expect_refused(c, proto::ERROR_CODE_PROTOCOL, needle);
    EXPECT_EQ(worker.server->policy_version(), 0) << needle;
  }
  // The intact update applies.
  RawConnection c(worker.server->port());
  c.hello();
  ASSERT_TRUE(c.receive()->has_hello_reply());
  for (const auto& message : update([](auto&) {})) c.send(message);
  const auto applied = c.receive();
  ASSERT_TRUE(applied && applied->has_weights_applied());
  EXPECT_EQ(applied->weights_applied().version(), 3);
  EXPECT_EQ(worker.server->policy_version(), 3);
}

TEST(RolloutWorkerServer, BadAndStaleRequestsAreAnsweredWithoutClosingTheConnection) {
  Worker worker(1);
  RawConnection c(worker.server->port());
  c.hello();
  ASSERT_TRUE(c.receive()->has_hello_reply());
  auto request = sampled_request();
  proto::TrainerMessage message;
  *message.mutable_generate() = to_proto(request, {0, 1}, /*request_id=*/5, /*policy_version=*/4);
  c.send(message);
  auto reply = c.receive();
  ASSERT_TRUE(reply && reply->has_error());
  EXPECT_EQ(reply->error().code(), proto::ERROR_CODE_STALE_WEIGHTS);
  EXPECT_EQ(reply->error().request_id(), 5u);
  EXPECT_FALSE(reply->error().fatal());

  request.max_new_tokens = 1000;  // beyond max_position_embeddings = 64
  *message.mutable_generate() = to_proto(request, {0}, 6, 0);
  c.send(message);
  reply = c.receive();
  ASSERT_TRUE(reply && reply->has_error());
  EXPECT_EQ(reply->error().code(), proto::ERROR_CODE_BAD_REQUEST);
  EXPECT_NE(reply->error().message().find("exceeds max_position_embeddings"), std::string::npos) << reply->error().message();

  // Still serving: a valid request streams one GroupResult per prompt, then GenerateDone.
  *message.mutable_generate() = to_proto(sampled_request(), {2, 7}, 7, 0);
  c.send(message);
  std::set<std::uint64_t> prompts;
  for (;;) {
    reply = c.receive();
    ASSERT_TRUE(reply.has_value());
    if (reply->has_progress()) continue;
    if (reply->has_generate_done()) break;
    ASSERT_TRUE(reply->has_group_result()) << reply->DebugString();
    EXPECT_EQ(reply->group_result().request_id(), 7u);
    EXPECT_EQ(reply->group_result().completions_size(), 3);
    prompts.insert(reply->group_result().prompt_index());
  }
  EXPECT_EQ(prompts, (std::set<std::uint64_t>{2, 7}));
}

// ---- misbehaving workers, seen from the pool ----------------------------------------------------------------------

// A fake worker on a free port that greets, acknowledges weights, and then answers generate requests with
// `on_generate` (which may stall, or send garbage).
class FakeWorker {
 public:
  using OnGenerate = std::function<void(tcp::socket&, const proto::GenerateRequest&)>;
  explicit FakeWorker(OnGenerate on_generate) : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), on_generate_(std::move(on_generate)) {
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeWorker() {
    // The pool, destroyed first, closed its connection; a blocking accept() is woken by one more connection.
    stop_ = true;
    boost::system::error_code ignored;
    tcp::socket wake(io_);
    wake.connect(acceptor_.local_endpoint(), ignored);
    thread_.join();
  }
  std::string address() const { return fmt::format("127.0.0.1:{}", acceptor_.local_endpoint().port()); }

 private:
  std::optional<proto::TrainerMessage> read(tcp::socket& socket) {
    std::array<char, wire::kFrameHeaderBytes> header{};
    boost::system::error_code error;
    asio::read(socket, asio::buffer(header), error);
    if (error) return std::nullopt;
    std::string payload(wire::decode_frame_header(header), '\0');
    asio::read(socket, asio::buffer(payload), error);
    if (error) return std::nullopt;
    proto::TrainerMessage message;
    wire::parse_payload(payload, message);
    return message;
  }
  static void write(tcp::socket& socket, const proto::WorkerMessage& message) {
    boost::system::error_code ignored;
    asio::write(socket, asio::buffer(wire::encode_frame(message.SerializeAsString())), ignored);
  }
  void serve() {
    for (;;) {
      boost::system::error_code error;
      tcp::socket socket(io_);
      acceptor_.accept(socket, error);
      if (error || stop_) return;
      while (auto message = read(socket)) {
        proto::WorkerMessage reply;
        if (message->has_hello()) {
          reply.mutable_hello_reply()->set_protocol_version(proto::PROTOCOL_VERSION_CURRENT);
          reply.mutable_hello_reply()->set_vocab_size(kVocab);
          write(socket, reply);
        } else if (message->has_weights_end()) {
          reply.mutable_weights_applied()->set_version(message->weights_end().version());
          write(socket, reply);
        } else if (message->has_generate()) {
          on_generate_(socket, message->generate());
        }
      }
    }
  }
  asio::io_context io_;
  tcp::acceptor acceptor_;
  OnGenerate on_generate_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

void send_group(tcp::socket& socket, const proto::GenerateRequest& request, std::size_t prompt, int completions, float logprob) {
  proto::WorkerMessage reply;
  auto* group = reply.mutable_group_result();
  group->set_request_id(request.request_id());
  group->set_prompt_index(request.prompts(static_cast<int>(prompt)).index());
  group->set_policy_version(request.policy_version());
  for (int g = 0; g < completions; ++g) {
    auto* c = group->add_completions();
    c->add_tokens(5);
    c->add_logprobs(logprob);
    c->set_finish(proto::FINISH_REASON_LENGTH);
  }
  boost::system::error_code ignored;
  asio::write(socket, asio::buffer(wire::encode_frame(reply.SerializeAsString())), ignored);
}

TEST(RolloutWorkers, AStalledWorkerIsGivenUpAfterTheDeadlineAndItsPromptsReassigned) {
  // The fake delivers its first prompt, then says nothing: the pool must keep that one and move the rest.
  FakeWorker stalled([](tcp::socket& socket, const proto::GenerateRequest& request) {
    send_group(socket, request, 0, request.samples_per_prompt(), -0.5f);
    std::this_thread::sleep_for(std::chrono::milliseconds(8000));
  });
  Worker good(2);
  auto model = trainer_model();
  auto options = pool_options({stalled.address(), good.address()});
  // Long enough that the good worker, on a machine loaded by the rest of the suite, is never taken for stalled too.
  options.stall_timeout = std::chrono::milliseconds(1500);
  RolloutWorkerPool pool(options, kVocab);
  pool.connect();
  pool.publish(std::make_shared<const WeightSnapshot>(snapshot_weights(model, 0)));
  const auto start = std::chrono::steady_clock::now();
  const auto result = pool.generate(sampled_request(), 0);
  const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto stats = pool.last_batch_stats();
  EXPECT_EQ(stats.workers_failed, 1);
  EXPECT_EQ(stats.reassigned_prompts, 4);  // the stalled worker had 5 of the 9 prompts and delivered one
  // Far from both the deadline and the fake's wake-up, so that a loaded machine does not decide it.
  EXPECT_LT(seconds, 5.0) << "the stall should be detected at the 1.5 s deadline, not when the fake wakes up at 8 s";
  const auto local = generate(model, sampled_request());
  ASSERT_EQ(result.completions.size(), local.completions.size());
  // Prompt 0 came from the fake (token 5), every other prompt from the good worker, each exactly once.
  for (std::size_t i = 0; i < result.completions.size(); ++i) {
    const auto& c = result.completions[i];
    EXPECT_EQ(c.prompt_index, static_cast<std::int64_t>(i / 3));
    if (c.prompt_index == 0) {
      EXPECT_EQ(c.tokens, (std::vector<std::int64_t>{5}));
    } else {
      EXPECT_EQ(c.tokens, local.completions[i].tokens) << i;
    }
  }
}

TEST(RolloutWorkers, AWorkerSendingMalformedResultsIsGivenUpAndNothingItSentIsKept) {
  const std::vector<std::pair<std::string, FakeWorker::OnGenerate>> misbehaviours = {
      {"too few completions", [](tcp::socket& s, const proto::GenerateRequest& r) { send_group(s, r, 0, 1, -0.5f); }},
      {"a NaN log-prob", [](tcp::socket& s, const proto::GenerateRequest& r) {
         send_group(s, r, 0, r.samples_per_prompt(), std::nanf(""));
       }},
      {"a positive log-prob", [](tcp::socket& s, const proto::GenerateRequest& r) {
         send_group(s, r, 0, r.samples_per_prompt(), 3.0f);
       }},
      {"garbage bytes", [](tcp::socket& s, const proto::GenerateRequest&) {
         boost::system::error_code ignored;
         asio::write(s, asio::buffer(std::string("not a frame at all")), ignored);
       }},
      {"a prompt it was not given", [](tcp::socket& s, const proto::GenerateRequest& r) {
         auto copy = r;
         copy.mutable_prompts(0)->set_index(1000);
         send_group(s, copy, 0, r.samples_per_prompt(), -0.5f);
       }},
  };
  auto model = trainer_model();
  const auto local = generate(model, sampled_request());
  for (const auto& [what, behaviour] : misbehaviours) {
    FakeWorker bad(behaviour);
    Worker good(2);
    RolloutWorkerPool pool(pool_options({bad.address(), good.address()}), kVocab);
    pool.connect();
    pool.publish(std::make_shared<const WeightSnapshot>(snapshot_weights(model, 0)));
    const auto result = pool.generate(sampled_request(), 0);
    EXPECT_EQ(pool.last_batch_stats().workers_failed, 1) << what;
    expect_same_batch(result, local);
  }
}

}  // namespace
}  // namespace grpo::rollout
