// Weight updates by c10d broadcast (rollout/remote/weight_broadcast.h): the bucket layout on a hand case, real Gloo
// groups of threads in this process receiving the sender's bytes exactly (several dtypes, several buckets, a tensor
// larger than a bucket, an empty one), a member that never joins named in the error, and the worker's check of a
// broadcast update's tensor list against its model.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "rollout/remote/rollout_messages.h"
#include "rollout/remote/weight_broadcast.h"
#include "tests/testing/tiny_model.h"

namespace grpo::rollout {
namespace {

using namespace std::chrono_literals;

TEST(BroadcastBuckets, ConsecutiveTensorsShareABucketUpToItsSizeAndALargerTensorGoesAlone) {
  using Ranges = std::vector<std::pair<std::size_t, std::size_t>>;
  // 4+4 fill a bucket of 8; 10 exceeds it and travels alone; 1+1+0+3 = 5 fit the last one.
  EXPECT_EQ(broadcast_buckets({4, 4, 10, 1, 1, 0, 3}, 8), (Ranges{{0, 2}, {2, 3}, {3, 7}}));
  EXPECT_EQ(broadcast_buckets({9, 9}, 8), (Ranges{{0, 1}, {1, 2}}));
  EXPECT_EQ(broadcast_buckets({}, 8), Ranges{});
  EXPECT_THROW(broadcast_buckets({1}, 0), std::invalid_argument);
}

// Tensors of several dtypes and sizes; `seed` picks their values.
std::vector<torch::Tensor> payload(std::uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({37, 5}), torch::randn({1000}).to(torch::kBFloat16), torch::randn({3}).to(torch::kFloat16), torch::zeros({0, 4}),
          torch::randn({2, 2})};
}

TEST(WeightBroadcastGroup, EveryMemberOfAGlooGroupReceivesTheSendersBytesExactly) {
  auto host = WeightBroadcastGroup::serve("127.0.0.1", 3, BroadcastBackend::kGloo, 20s);
  ASSERT_NE(host->address().port, 0);
  std::vector<std::future<std::vector<torch::Tensor>>> received;
  for (int rank = 1; rank <= 2; ++rank) {
    received.push_back(std::async(std::launch::async, [address = host->address(), rank] {
      auto member = WeightBroadcastGroup::join(address, rank, torch::kCPU);
      auto tensors = payload(rank);  // other values, same layout: the broadcast must overwrite every byte
      member->broadcast(tensors, 512);  // the [37, 5] float32 tensor (740 bytes) exceeds a bucket; the rest share
      member->broadcast(tensors, 512);  // a second update over the same group
      return tensors;
    }));
  }
  host->form();
  EXPECT_NE(host->describe().find("Gloo, 3 members, rendezvous 127.0.0.1:"), std::string::npos) << host->describe();
  auto first = payload(0);
  host->broadcast(first, 512);
  auto sent = payload(7);
  host->broadcast(sent, 512);
  for (auto& future : received) {
    const auto tensors = future.get();
    ASSERT_EQ(tensors.size(), sent.size());
    for (std::size_t i = 0; i < sent.size(); ++i) {
      EXPECT_EQ(tensors[i].scalar_type(), sent[i].scalar_type()) << i;
      EXPECT_TRUE(torch::equal(tensors[i], sent[i])) << "tensor " << i;
    }
  }
}

TEST(WeightBroadcastGroup, AMemberThatNeverJoinsIsNamedWhenTheTimeoutPasses) {
  auto host = WeightBroadcastGroup::serve("127.0.0.1", 3, BroadcastBackend::kGloo, 1500ms);
  // Rank 1 joins; rank 2 never does, so rank 1's own connection to the group fails too.
  auto rank1 = std::async(std::launch::async, [address = host->address()] {
    try {
      WeightBroadcastGroup::join(address, 1, torch::kCPU);
      return std::string("joined");
    } catch (const std::runtime_error& error) {
      return std::string(error.what());
    }
  });
  try {
    host->form();
    FAIL() << "formed without rank 2";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("rank(s) 2 did not join within 1500 ms"), std::string::npos) << error.what();
  }
  EXPECT_NE(rank1.get().find("weight broadcast: rank 1 could not connect"), std::string::npos);
}

TEST(WeightBroadcastGroup, JoiningWithAnImpossibleRankOrBackendSaysWhy) {
  WeightGroupAddress address{"127.0.0.1", 1, 3, BroadcastBackend::kGloo, 1000ms, "g"};
  EXPECT_THROW(WeightBroadcastGroup::join(address, 0, torch::kCPU), std::runtime_error);  // rank 0 is the trainer
  EXPECT_THROW(WeightBroadcastGroup::join(address, 3, torch::kCPU), std::runtime_error);
  address.backend = BroadcastBackend::kNccl;
  try {
    WeightBroadcastGroup::join(address, 1, torch::kCPU);
    FAIL();
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("NCCL needs a CUDA device"), std::string::npos) << error.what();
  }
  EXPECT_EQ(parse_backend_name("mpi"), std::nullopt);
  EXPECT_EQ(parse_backend_name("nccl"), BroadcastBackend::kNccl);
}

TEST(BroadcastReceipt, ChecksTheAnnouncedTensorsAgainstTheModelBeforeAnythingIsReceived) {
  auto model = fixtures::tiny_model({.vocab_size = 40, .seed = 3});
  const auto shapes = parameter_shapes(model);
  const auto snapshot = snapshot_weights(model, 4, torch::kBFloat16);
  const auto begin = broadcast_weights_begin(snapshot, 1 << 20);
  {
    BroadcastReceipt receipt(shapes, begin);
    EXPECT_TRUE(receipt.tensors().empty()) << "nothing is allocated before the engine thread asks";
    receipt.allocate(torch::kCPU);
    EXPECT_EQ(receipt.version(), 4);
    ASSERT_EQ(receipt.tensors().size(), shapes.size());
    EXPECT_EQ(receipt.tensors()[0].scalar_type(), torch::kBFloat16);  // received as sent; apply() converts
    // Filled as a broadcast would, applied: the model holds the bf16-rounded weights in its own dtype.
    for (std::size_t i = 0; i < snapshot.tensors.size(); ++i) receipt.tensors()[i].copy_(snapshot.tensors[i].value);
    auto target = fixtures::tiny_model({.vocab_size = 40, .seed = 9});
    receipt.apply(target);
    auto expected = model->named_parameters();
    for (const auto& item : target->named_parameters()) {
      EXPECT_EQ(item.value().scalar_type(), torch::kFloat32);
      EXPECT_TRUE(torch::equal(item.value(), expected[item.key()].to(torch::kBFloat16).to(torch::kFloat32))) << item.key();
    }
  }
  const auto refused = [&](const std::function<void(proto::WeightsBegin&)>& spoil, const std::string& needle) {
    auto bad = begin;
    spoil(bad);
    try {
      BroadcastReceipt receipt(shapes, bad);
      ADD_FAILURE() << "accepted: " << needle;
    } catch (const ProtocolViolation& violation) {
      EXPECT_NE(std::string(violation.what()).find(needle), std::string::npos) << violation.what();
    }
  };
  refused([](auto& b) { b.mutable_tensors(0)->set_shape(0, 2); }, "has shape [2,");
  refused([](auto& b) { b.mutable_tensors(0)->set_name("model.bogus"); }, "has no parameter 'model.bogus'");
  refused([](auto& b) { b.mutable_tensors(1)->set_name(b.tensors(0).name()); }, "is listed twice");
  refused([](auto& b) { b.mutable_tensors(0)->set_dtype("I8"); }, "unknown weight dtype 'I8'");
  refused([](auto& b) { b.mutable_tensors()->RemoveLast(); }, "lists");
  refused([](auto& b) { b.set_bucket_bytes(0); }, "bucket_bytes is 0");
  refused([](auto& b) { b.set_broadcast(false); }, "a chunked weight update");
}

}  // namespace
}  // namespace grpo::rollout
