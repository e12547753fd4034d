// Weight updates by collective broadcast on a c10d process group (see weight_broadcast.h).
#include "rollout/remote/weight_broadcast.h"

#include <numeric>
#include <stdexcept>
#include <thread>

#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if defined(GRPO_HAVE_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "policy/torch_error_text.h"

namespace grpo::rollout {
namespace {

using policy::short_error;

bool is_loopback(const std::string& host) { return host == "localhost" || host.starts_with("127.") || host == "::1"; }

// A tensor's bytes as a flat uint8 view (a copy first when it is not contiguous).
torch::Tensor byte_view(const torch::Tensor& tensor) { return tensor.contiguous().reshape({-1}).view(torch::kUInt8); }

std::string joined_key(int rank) { return fmt::format("joined/{}", rank); }

// NCCL's Work::wait() only makes the current CUDA stream wait for the collective; the CPU goes on at once (and a
// worker would report weights that have not arrived, or a missing member would hang the stream). Polling for
// completion puts the group's deadline on the CPU, so a failure is an exception here, before anything is applied.
void wait_on_cpu(c10d::Work& work, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!work.isCompleted()) {
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error(fmt::format("the broadcast did not complete within {} ms (a member died or hangs)", timeout.count()));
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

}  // namespace

std::string_view backend_name(BroadcastBackend backend) { return backend == BroadcastBackend::kNccl ? "nccl" : "gloo"; }

std::optional<BroadcastBackend> parse_backend_name(std::string_view name) {
  if (name == "gloo") return BroadcastBackend::kGloo;
  if (name == "nccl") return BroadcastBackend::kNccl;
  return std::nullopt;
}

bool nccl_available() {
#if defined(GRPO_HAVE_NCCL)
  return torch::cuda::is_available();
#else
  return false;
#endif
}

std::vector<std::pair<std::size_t, std::size_t>> broadcast_buckets(const std::vector<std::size_t>& tensor_bytes, std::size_t bucket_bytes) {
  if (bucket_bytes == 0) throw std::invalid_argument("broadcast buckets must hold at least one byte");
  std::vector<std::pair<std::size_t, std::size_t>> buckets;
  std::size_t begin = 0;
  std::size_t filled = 0;
  for (std::size_t i = 0; i < tensor_bytes.size(); ++i) {
    if (i > begin && filled + tensor_bytes[i] > bucket_bytes) {
      buckets.emplace_back(begin, i);
      begin = i;
      filled = 0;
    }
    filled += tensor_bytes[i];
  }
  if (begin < tensor_bytes.size()) buckets.emplace_back(begin, tensor_bytes.size());
  return buckets;
}

struct WeightBroadcastGroup::Backend {
  c10::intrusive_ptr<c10d::Store> store;  // this group's keys (a PrefixStore over the TCPStore)
  c10::intrusive_ptr<c10d::TCPStore> tcp_store;
  c10::intrusive_ptr<c10d::Backend> group;
};

WeightBroadcastGroup::WeightBroadcastGroup(WeightGroupAddress address, int rank, torch::Device device)
    : address_(std::move(address)), rank_(rank), device_(device), backend_(std::make_unique<Backend>()) {}

WeightBroadcastGroup::~WeightBroadcastGroup() = default;

std::unique_ptr<WeightBroadcastGroup> WeightBroadcastGroup::serve(const std::string& host, int world_size, BroadcastBackend backend,
                                                                  std::chrono::milliseconds timeout) {
  if (world_size < 2) throw std::invalid_argument("a weight broadcast group needs the trainer and at least one worker");
  if (backend == BroadcastBackend::kNccl && !nccl_available()) {
    throw std::runtime_error("weight broadcast over NCCL: this build or machine has no NCCL and CUDA device");
  }
  WeightGroupAddress address;
  address.host = host;
  address.world_size = world_size;
  address.backend = backend;
  address.timeout = timeout;
  address.group_id = fmt::format("grpo-weights/{}/{}", ::getpid(), std::chrono::steady_clock::now().time_since_epoch().count());
  const auto device = backend == BroadcastBackend::kNccl ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  std::unique_ptr<WeightBroadcastGroup> group(new WeightBroadcastGroup(std::move(address), 0, device));
  try {
    c10d::TCPStoreOptions options;
    options.port = 0;  // any free port
    options.isServer = true;
    options.numWorkers = world_size;
    options.waitWorkers = false;  // form() names the ranks that do not come
    options.timeout = timeout;
    group->backend_->tcp_store = c10::make_intrusive<c10d::TCPStore>(host, options);
    group->address_.port = static_cast<std::uint16_t>(group->backend_->tcp_store->getPort());
    group->backend_->store = c10::make_intrusive<c10d::PrefixStore>(group->address_.group_id, group->backend_->tcp_store);
  } catch (const std::exception& error) {
    throw std::runtime_error(fmt::format("weight broadcast: cannot serve a rendezvous store on {}: {}", host, short_error(error)));
  }
  return group;
}

namespace {

c10::intrusive_ptr<c10d::Backend> make_backend(const c10::intrusive_ptr<c10d::Store>& store, const WeightGroupAddress& address, int rank) {
  if (address.backend == BroadcastBackend::kNccl) {
#if defined(GRPO_HAVE_NCCL)
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = address.timeout;
    return c10::make_intrusive<c10d::ProcessGroupNCCL>(c10::make_intrusive<c10d::PrefixStore>("nccl", store), rank, address.world_size, options);
#else
    throw std::runtime_error("this build of grpo has no NCCL");
#endif
  }
  auto options = c10d::ProcessGroupGloo::Options::create(address.timeout);
  // As PyTorch: GLOO_SOCKET_IFNAME picks the interface. A group that meets on loopback stays there; otherwise the
  // interface this host's name resolves to.
  if (const char* interface = std::getenv("GLOO_SOCKET_IFNAME"); interface != nullptr && *interface != '\0') {
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface));
  } else if (is_loopback(address.host)) {
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(address.host));
  } else {
    options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  return c10::make_intrusive<c10d::ProcessGroupGloo>(c10::make_intrusive<c10d::PrefixStore>("gloo", store), rank, address.world_size, options);
}

}  // namespace

void WeightBroadcastGroup::form() {
  if (rank_ != 0) throw std::logic_error("WeightBroadcastGroup::form is the trainer's (rank 0)");
  auto& store = *backend_->store;
  std::vector<std::string> keys;
  for (int r = 1; r < address_.world_size; ++r) keys.push_back(joined_key(r));
  try {
    store.wait(keys, address_.timeout);
  } catch (const std::exception& error) {
    std::vector<int> missing;
    for (int r = 1; r < address_.world_size; ++r) {
      if (!store.check({joined_key(r)})) missing.push_back(r);
    }
    throw std::runtime_error(fmt::format("weight broadcast: rank(s) {} did not join within {} ms ({})", fmt::join(missing, ", "),
                                         address_.timeout.count(), short_error(error)));
  }
  try {
    backend_->group = make_backend(backend_->store, address_, 0);
  } catch (const std::exception& error) {
    throw std::runtime_error(fmt::format("weight broadcast: connecting {} members over {} failed: {}", address_.world_size,
                                         backend_name(address_.backend), short_error(error)));
  }
}

std::unique_ptr<WeightBroadcastGroup> WeightBroadcastGroup::join(const WeightGroupAddress& address, int rank, torch::Device device) {
  if (rank < 1 || rank >= address.world_size) {
    throw std::runtime_error(fmt::format("weight broadcast: rank {} is outside 1..{}", rank, address.world_size - 1));
  }
  if (address.backend == BroadcastBackend::kNccl && !device.is_cuda()) {
    throw std::runtime_error(fmt::format("weight broadcast over NCCL needs a CUDA device; this worker's model is on {}", device.str()));
  }
  std::unique_ptr<WeightBroadcastGroup> group(new WeightBroadcastGroup(address, rank, device.is_cuda() ? device : torch::Device(torch::kCPU)));
  try {
    c10d::TCPStoreOptions options;
    options.port = address.port;
    options.isServer = false;
    options.numWorkers = address.world_size;
    options.waitWorkers = false;
    options.timeout = address.timeout;
    group->backend_->tcp_store = c10::make_intrusive<c10d::TCPStore>(address.host, options);
    group->backend_->store = c10::make_intrusive<c10d::PrefixStore>(address.group_id, group->backend_->tcp_store);
    group->backend_->store->set(joined_key(rank), std::string("1"));
  } catch (const std::exception& error) {
    throw std::runtime_error(fmt::format("weight broadcast: cannot reach the trainer's rendezvous store at {}:{}: {}", address.host, address.port,
                                         short_error(error)));
  }
  try {
    group->backend_->group = make_backend(group->backend_->store, address, rank);
  } catch (const std::exception& error) {
    throw std::runtime_error(fmt::format("weight broadcast: rank {} could not connect to the other {} members over {}: {}", rank,
                                         address.world_size - 1, backend_name(address.backend), short_error(error)));
  }
  return group;
}

std::string WeightBroadcastGroup::describe() const {
  return fmt::format("{}, {} members, rendezvous {}:{}", address_.backend == BroadcastBackend::kNccl ? "NCCL" : "Gloo", address_.world_size,
                     address_.host, address_.port);
}

void WeightBroadcastGroup::broadcast(std::vector<torch::Tensor>& tensors, std::size_t bucket_bytes) {
  if (!backend_->group) throw std::logic_error("WeightBroadcastGroup::broadcast before the group was formed");
  torch::NoGradGuard no_grad;
  std::vector<std::size_t> bytes;
  bytes.reserve(tensors.size());
  for (const auto& tensor : tensors) {
    if (rank_ != 0 && !tensor.is_contiguous()) throw std::logic_error("WeightBroadcastGroup::broadcast receives into contiguous tensors only");
    bytes.push_back(tensor.nbytes());
  }
  for (const auto& [begin, end] : broadcast_buckets(bytes, bucket_bytes)) {
    const auto total = std::accumulate(bytes.begin() + static_cast<std::ptrdiff_t>(begin), bytes.begin() + static_cast<std::ptrdiff_t>(end), std::size_t{0});
    if (total == 0) continue;
    // A tensor alone in its bucket travels from and into its own bytes when it already lies where the group
    // works (no packing copy on the sender, no unpacking copy on the receivers): the large ones, e.g. embeddings.
    const auto& single = tensors[begin];
    const bool in_place = end - begin == 1 && single.device() == device_ && single.is_contiguous();
    auto flat = in_place ? single.view({-1}).view(torch::kUInt8)
                         : torch::empty({static_cast<std::int64_t>(total)}, torch::TensorOptions().dtype(torch::kUInt8).device(device_));
    if (rank_ == 0 && !in_place) {
      std::int64_t offset = 0;
      for (auto i = begin; i < end; ++i) {
        flat.narrow(0, offset, static_cast<std::int64_t>(bytes[i])).copy_(byte_view(tensors[i]));
        offset += static_cast<std::int64_t>(bytes[i]);
      }
    }
    try {
      std::vector<torch::Tensor> buffers{flat};
      c10d::BroadcastOptions options;
      options.rootRank = 0;
      options.timeout = address_.timeout;
      auto work = backend_->group->broadcast(buffers, options);
      if (address_.backend == BroadcastBackend::kNccl) wait_on_cpu(*work, address_.timeout);
      work->wait();  // Gloo: blocks up to the timeout; NCCL: completed already, rethrows its error if any
    } catch (const std::exception& error) {
      throw std::runtime_error(fmt::format("weight broadcast failed on rank {} ({}): {}", rank_, describe(), short_error(error)));
    }
    if (rank_ != 0 && !in_place) {
      std::int64_t offset = 0;
      for (auto i = begin; i < end; ++i) {
        tensors[i].reshape({-1}).view(torch::kUInt8).copy_(flat.narrow(0, offset, static_cast<std::int64_t>(bytes[i])));
        offset += static_cast<std::int64_t>(bytes[i]);
      }
    }
  }
}

}  // namespace grpo::rollout
