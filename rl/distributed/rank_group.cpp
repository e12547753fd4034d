// c10d process groups for data parallelism (see rank_group.h).
#include "rl/distributed/rank_group.h"

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if defined(GRPO_HAVE_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "policy/torch_error_text.h"

namespace grpo::rl {
namespace {

using namespace std::chrono_literals;

// How often each rank proves it is alive, and how long a diagnosis watches for proof.
constexpr auto kHeartbeatPeriod = 500ms;
constexpr auto kHeartbeatWatch = 3s;

using policy::short_error;

std::string string_of(const std::vector<std::uint8_t>& bytes) { return {bytes.begin(), bytes.end()}; }

class SingleRankGroup final : public RankGroup {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  void all_reduce_sum(torch::Tensor&, std::string_view) override {}
  torch::Tensor all_gather(const torch::Tensor& tensor, std::string_view) override { return tensor; }
  void barrier(std::string_view) override {}
  std::string describe() const override { return "1 rank"; }
};

class C10dRankGroup final : public RankGroup {
 public:
  C10dRankGroup(const LaunchInfo& launch, torch::Device device, std::chrono::milliseconds timeout);
  ~C10dRankGroup() override;

  int rank() const override { return launch_.rank; }
  int world_size() const override { return launch_.world_size; }
  void all_reduce_sum(torch::Tensor& tensor, std::string_view label) override;
  torch::Tensor all_gather(const torch::Tensor& tensor, std::string_view label) override;
  void barrier(std::string_view label) override;
  std::string describe() const override {
    return fmt::format("{} ranks over {} ({}), rendezvous {}:{}", launch_.world_size, backend_name_, launch_.launcher, launch_.master_addr,
                       launch_.master_port);
  }

 private:
  c10::intrusive_ptr<c10d::Store> connect(std::chrono::milliseconds timeout, bool serve) const;
  void wait_for_every_rank();
  void start_heartbeat();
  // Runs one labelled collective; turns its failure into a RankFailure that names the rank to blame.
  template <typename Collective>
  void run(std::string_view label, Collective&& collective);
  std::string diagnose(std::string_view label, const std::string& error) const;

  std::string key(std::string_view what, int rank) const { return fmt::format("{}/{}", what, rank); }

  LaunchInfo launch_;
  std::chrono::milliseconds timeout_;
  std::string prefix_;
  c10::intrusive_ptr<c10d::Store> store_;  // the first connection of rank 0 also serves it (unless torchrun's agent does)
  c10::intrusive_ptr<c10d::Backend> backend_;       // Gloo: CPU tensors (rewards, counts, metrics)
  c10::intrusive_ptr<c10d::Backend> cuda_backend_;  // NCCL for CUDA tensors (gradients) where LibTorch has it
  std::string backend_name_;
  // The backend for a tensor on `device` (PyTorch's "cpu:gloo,cuda:nccl").
  c10d::Backend& backend_for(const torch::Tensor& tensor) const { return tensor.is_cuda() && cuda_backend_ ? *cuda_backend_ : *backend_; }
  std::int64_t sequence_ = 0;  // collectives started by this rank

  std::thread heartbeat_;
  std::mutex heartbeat_mutex_;
  std::condition_variable heartbeat_wake_;
  bool stopping_ = false;
};

c10::intrusive_ptr<c10d::Store> C10dRankGroup::connect(std::chrono::milliseconds timeout, bool serve) const {
  c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(launch_.master_port);
  options.isServer = serve;
  options.numWorkers = launch_.world_size;
  options.waitWorkers = false;  // wait_for_every_rank names the ranks that do not come
  options.timeout = timeout;
  auto store = c10::make_intrusive<c10d::TCPStore>(launch_.master_addr, options);
  return c10::make_intrusive<c10d::PrefixStore>(prefix_, store);
}

C10dRankGroup::C10dRankGroup(const LaunchInfo& launch, torch::Device device, std::chrono::milliseconds timeout)
    : launch_(launch), timeout_(timeout), prefix_(fmt::format("grpo/attempt_{}", launch.restart_count)) {
  const bool serve = launch_.rank == 0 && !launch_.agent_store;
  try {
    store_ = connect(timeout_, serve);
  } catch (const std::exception& error) {
    throw RankFailure(serve ? fmt::format("rank 0 could not serve the rendezvous store on port {}: {} (is MASTER_PORT free?)", launch_.master_port,
                                          short_error(error))
                            : fmt::format("rank {} could not reach the rendezvous store at {}:{} within {} s: {} (is rank 0 running, and "
                                          "are MASTER_ADDR and MASTER_PORT the same on every rank?)",
                                          launch_.rank, launch_.master_addr, launch_.master_port, timeout_.count() / 1000, short_error(error)));
  }
  wait_for_every_rank();
  start_heartbeat();
  try {
    backend_name_ = "Gloo";
    if (device.is_cuda()) {
#if defined(GRPO_HAVE_NCCL)
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = timeout_;
      cuda_backend_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(c10::make_intrusive<c10d::PrefixStore>("nccl", store_), launch_.rank,
                                                                  launch_.world_size, nccl_options);
      backend_name_ = "Gloo (CPU) and NCCL (CUDA)";
#else
      backend_name_ = "Gloo (CUDA tensors through host memory: this LibTorch build has no NCCL)";
#endif
    }
    auto options = c10d::ProcessGroupGloo::Options::create(timeout_);
    // GLOO_SOCKET_IFNAME picks the network interface, as in PyTorch; otherwise the one this host's name resolves to.
    if (const char* interface = std::getenv("GLOO_SOCKET_IFNAME"); interface != nullptr && *interface != '\0') {
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface));
    } else {
      options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    backend_ = c10::make_intrusive<c10d::ProcessGroupGloo>(c10::make_intrusive<c10d::PrefixStore>("gloo", store_), launch_.rank,
                                                          launch_.world_size, options);
  } catch (const std::exception& error) {
    throw RankFailure(fmt::format("rank {}: connecting the {} ranks failed: {}", launch_.rank, launch_.world_size, short_error(error)));
  }
}

void C10dRankGroup::wait_for_every_rank() {
  store_->set(key("arrived", launch_.rank), std::string("1"));
  std::vector<std::string> keys;
  for (int r = 0; r < launch_.world_size; ++r) keys.push_back(key("arrived", r));
  try {
    store_->wait(keys, timeout_);
  } catch (const std::exception& error) {
    std::vector<int> missing;
    for (int r = 0; r < launch_.world_size; ++r) {
      if (!store_->check({key("arrived", r)})) missing.push_back(r);
    }
    throw RankFailure(fmt::format("rank {}: rank(s) {} did not join within {} s (the launcher started {} ranks): {}", launch_.rank,
                                  fmt::join(missing, ", "), timeout_.count() / 1000, launch_.world_size, short_error(error)));
  }
}

void C10dRankGroup::start_heartbeat() {
  // A connection of its own, so that a heartbeat never waits behind a collective's marker.
  auto store = connect(timeout_, /*serve=*/false);
  heartbeat_ = std::thread([this, store] {
    std::unique_lock lock(heartbeat_mutex_);
    while (!stopping_) {
      try {
        store->add(key("heartbeat", launch_.rank), 1);
      } catch (const std::exception&) {
        return;  // the store is gone (rank 0 ended): nothing to prove to anyone
      }
      heartbeat_wake_.wait_for(lock, kHeartbeatPeriod, [this] { return stopping_; });
    }
  });
}

C10dRankGroup::~C10dRankGroup() {
  {
    std::lock_guard lock(heartbeat_mutex_);
    stopping_ = true;
  }
  heartbeat_wake_.notify_all();
  if (heartbeat_.joinable()) heartbeat_.join();
}

template <typename Collective>
void C10dRankGroup::run(std::string_view label, Collective&& collective) {
  ++sequence_;
  try {
    store_->set(key("at", launch_.rank), fmt::format("{} {}", sequence_, label));
    collective();
  } catch (const std::exception& error) {
    throw RankFailure(diagnose(label, short_error(error)));
  }
}

std::string C10dRankGroup::diagnose(std::string_view label, const std::string& error) const {
  auto message = fmt::format("rank {}: collective #{} \"{}\" failed: {}.", launch_.rank, sequence_, label, error);
  try {
    // A fresh connection with a short timeout: the failed one may be mid-message.
    const auto store = connect(std::chrono::milliseconds(5000), /*serve=*/false);
    auto heartbeats = [&] {
      std::vector<std::int64_t> counts;
      for (int r = 0; r < launch_.world_size; ++r) counts.push_back(store->check({key("heartbeat", r)}) ? store->add(key("heartbeat", r), 0) : -1);
      return counts;
    };
    const auto before = heartbeats();
    std::this_thread::sleep_for(kHeartbeatWatch);
    const auto after = heartbeats();
    int blamed = 0;
    for (int r = 0; r < launch_.world_size; ++r) {
      if (r == launch_.rank) continue;
      std::string at = "no collective yet";
      if (store->check({key("at", r)})) {
        const auto marker = string_of(store->get(key("at", r)));
        const auto space = marker.find(' ');
        at = fmt::format("collective #{} \"{}\"", marker.substr(0, space), space == std::string::npos ? "" : marker.substr(space + 1));
      }
      if (after[static_cast<std::size_t>(r)] == before[static_cast<std::size_t>(r)]) {
        message += fmt::format(" Rank {} stopped: no heartbeat for {} s, last at {}; it died, was killed or is hung.", r,
                               std::chrono::duration_cast<std::chrono::seconds>(kHeartbeatWatch).count(), at);
        ++blamed;
      } else if (!at.starts_with(fmt::format("collective #{} ", sequence_))) {
        message += fmt::format(" Rank {} is alive but at {} (slow, or stuck in its own work past the {} s timeout).", r, at, timeout_.count() / 1000);
        ++blamed;
      }
    }
    if (blamed == 0) message += " Every other rank is alive and at this collective: the transport itself failed.";
  } catch (const std::exception&) {
    message += launch_.rank == 0 ? " The rendezvous store (served by this rank) does not answer."
                                 : fmt::format(" Rank 0, which serves the rendezvous store at {}:{}, does not answer: it died or its machine is down.",
                                               launch_.master_addr, launch_.master_port);
  }
  return message;
}

void C10dRankGroup::all_reduce_sum(torch::Tensor& tensor, std::string_view label) {
  run(label, [&] {
    std::vector<torch::Tensor> tensors{tensor};
    backend_for(tensor).allreduce(tensors, c10d::AllreduceOptions{})->wait();
  });
}

torch::Tensor C10dRankGroup::all_gather(const torch::Tensor& tensor, std::string_view label) {
  std::vector<std::vector<torch::Tensor>> outputs(1);
  for (int r = 0; r < launch_.world_size; ++r) outputs[0].push_back(torch::empty_like(tensor));
  run(label, [&] {
    std::vector<torch::Tensor> inputs{tensor.contiguous()};
    backend_for(tensor).allgather(outputs, inputs)->wait();
  });
  return torch::cat(outputs[0], 0);
}

void C10dRankGroup::barrier(std::string_view label) {
  run(label, [&] { backend_->barrier()->wait(); });
}

}  // namespace

bool RankGroup::any(bool flag, std::string_view label) {
  auto value = torch::tensor({flag ? 1.0 : 0.0}, torch::kFloat64);
  all_reduce_sum(value, label);
  return value.item<double>() > 0.0;
}

torch::Tensor RankGroup::all_gather_rows(const torch::Tensor& tensor, std::string_view label) {
  if (world_size() == 1) return tensor;
  const auto rows = all_gather(torch::tensor({tensor.size(0)}, torch::kInt64), label);
  const auto most = rows.max().item<std::int64_t>();
  if (most == 0) return tensor;  // empty everywhere (and no zero-sized collective)
  auto shape = tensor.sizes().vec();
  shape[0] = most;
  auto padded = torch::zeros(shape, tensor.options());
  padded.narrow(0, 0, tensor.size(0)).copy_(tensor);
  const auto all = all_gather(padded, label);
  std::vector<torch::Tensor> parts;
  for (int r = 0; r < world_size(); ++r) parts.push_back(all.narrow(0, r * most, rows[r].item<std::int64_t>()));
  return torch::cat(parts);
}

std::vector<std::string> RankGroup::all_gather_strings(const std::string& text, std::string_view label) {
  const auto length = static_cast<std::int64_t>(text.size());
  const auto lengths = all_gather(torch::tensor({length}, torch::kInt64), label);
  const auto longest = lengths.max().item<std::int64_t>();
  auto padded = torch::zeros({1, longest}, torch::kUInt8);
  std::memcpy(padded.data_ptr<std::uint8_t>(), text.data(), text.size());
  const auto all = all_gather(padded, label);
  std::vector<std::string> out;
  for (int r = 0; r < world_size(); ++r) {
    const auto size = static_cast<std::size_t>(lengths[r].item<std::int64_t>());
    out.emplace_back(size == 0 ? std::string() : std::string(reinterpret_cast<const char*>(all[r].data_ptr<std::uint8_t>()), size));
  }
  return out;
}

std::unique_ptr<RankGroup> single_rank_group() { return std::make_unique<SingleRankGroup>(); }

std::unique_ptr<RankGroup> join_rank_group(const LaunchInfo& launch, torch::Device device, std::chrono::milliseconds timeout) {
  if (!launch.distributed()) return single_rank_group();
  return std::make_unique<C10dRankGroup>(launch, device, timeout);
}

}  // namespace grpo::rl
