// Checkpoint weights in one file or in shards behind model.safetensors.index.json: the index's validation against
// the shards it names, transformers' shard layout on save, and the copy of loaded weights into a model's tensors.
#include "policy/checkpoint_weights.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <system_error>
#include <thread>

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

namespace grpo::policy {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr std::string_view kMetadataKey = "__metadata__";

[[noreturn]] void fail(const fs::path& path, std::string_view what) {
  throw SafetensorsError(fmt::format("{}: {}", path.string(), what));
}

[[noreturn]] void fail_tensor(const fs::path& path, std::string_view name, std::string_view what) {
  throw SafetensorsError(fmt::format("{}: tensor '{}': {}", path.string(), name, what));
}

// Shard files as huggingface_hub names them: model-00001-of-00003.safetensors (5 or more digits each).
bool is_shard_file_name(std::string_view name) {
  auto take_digits = [&name] {
    const std::size_t count = std::min(name.find_first_not_of("0123456789"), name.size());
    name.remove_prefix(count);
    return count >= 5;
  };
  auto take = [&name](std::string_view text) {
    if (!name.starts_with(text)) return false;
    name.remove_prefix(text.size());
    return true;
  };
  return take("model-") && take_digits() && take("-of-") && take_digits() && name == ".safetensors";
}

std::string shard_file_name(std::size_t index, std::size_t count) {
  return fmt::format("model-{:05d}-of-{:05d}.safetensors", index + 1, count);
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, fmt::format("cannot open: {}", std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) fail(path, "cannot read");
  return text.str();
}

// Parses the index, rejecting repeated keys (nlohmann keeps the last, which would hide a tensor listed twice).
Json parse_index(const fs::path& path, const std::string& text) {
  std::vector<std::set<std::string>> open_objects;
  std::string section;  // the top-level key being read
  auto on_event = [&](int /*depth*/, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::object_start) open_objects.emplace_back();
    if (event == Json::parse_event_t::object_end) open_objects.pop_back();
    if (event == Json::parse_event_t::key) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (open_objects.size() == 1) section = key;
      if (!open_objects.back().insert(key).second) {
        if (open_objects.size() == 2 && section == "weight_map") fail_tensor(path, key, "listed twice in the index");
        fail(path, fmt::format("key '{}' is repeated{}", key, open_objects.size() > 1 ? " in '" + section + "'" : ""));
      }
    }
    return true;
  };
  Json index;
  try {
    index = Json::parse(text, on_event);
  } catch (const Json::exception& e) {
    fail(path, fmt::format("not valid JSON: {}", e.what()));
  }
  if (!index.is_object()) fail(path, fmt::format("is a JSON {}, not an object", index.type_name()));
  return index;
}

// A shard name must stay inside the checkpoint folder: relative, without "..".
fs::path checked_shard_path(const fs::path& index_path, const std::string& tensor, const std::string& shard) {
  const fs::path relative(shard);
  if (shard.empty() || shard.find('\0') != std::string::npos) {
    fail_tensor(index_path, tensor, "the shard name is empty or contains a NUL byte");
  }
  if (relative.has_root_path()) {
    fail_tensor(index_path, tensor, fmt::format("shard '{}' is an absolute path; shards must be in the folder", shard));
  }
  for (const fs::path& part : relative) {
    if (part == "..") fail_tensor(index_path, tensor, fmt::format("shard '{}' escapes the folder through '..'", shard));
  }
  return relative.lexically_normal();
}

struct ShardIndex {
  // Tensor name -> shard path relative to the folder (normalised).
  std::map<std::string, fs::path> shard_of;
  // Shard -> the first tensor listed for it (for messages about the shard).
  std::map<fs::path, std::string> first_tensor_of;
};

ShardIndex read_index(const fs::path& index_path) {
  const Json index = parse_index(index_path, read_text(index_path));
  const auto weight_map = index.find("weight_map");
  if (weight_map == index.end() || !weight_map->is_object()) {
    fail(index_path, "'weight_map' (tensor name -> shard file) is missing or not an object");
  }
  const auto metadata = index.find("metadata");
  if (metadata != index.end()) {
    if (!metadata->is_object()) {
      fail(index_path, fmt::format("'metadata' is a JSON {}, not an object", metadata->type_name()));
    }
    const auto total_size = metadata->find("total_size");
    if (total_size != metadata->end() && !total_size->is_number_unsigned()) {
      fail(index_path, fmt::format("'metadata.total_size' {} is not a non-negative integer", total_size->dump()));
    }
  }
  ShardIndex result;
  for (const auto& [tensor, shard] : weight_map->items()) {
    if (!shard.is_string()) {
      fail_tensor(index_path, tensor, fmt::format("its shard is a JSON {}, not a file name", shard.type_name()));
    }
    const fs::path path = checked_shard_path(index_path, tensor, shard.get<std::string>());
    result.shard_of.emplace(tensor, path);
    result.first_tensor_of.emplace(path, tensor);
  }
  return result;
}

SafetensorsFile load_sharded(const fs::path& dir, const fs::path& index_path) {
  const ShardIndex index = read_index(index_path);
  std::map<fs::path, SafetensorsFile> shards;
  for (const auto& [shard, tensor] : index.first_tensor_of) {
    const fs::path path = dir / shard;
    std::error_code error;
    if (!fs::exists(path, error)) {
      fail_tensor(index_path, tensor, fmt::format("its shard {} does not exist", path.string()));
    }
    shards.emplace(shard, load_safetensors(path));
  }

  // Every tensor of every shard, where it is stored.
  std::map<std::string, const fs::path*> stored_in;
  for (const auto& [shard, file] : shards) {
    for (const auto& [name, tensor] : file.tensors) {
      const auto [it, inserted] = stored_in.emplace(name, &shard);
      if (!inserted) {
        fail_tensor(dir / shard, name,
                    fmt::format("also stored in {}; a tensor must be in one shard", (dir / *it->second).string()));
      }
    }
  }
  for (const auto& [name, shard] : stored_in) {
    const auto listed = index.shard_of.find(name);
    if (listed == index.shard_of.end()) {
      fail_tensor(dir / *shard, name, fmt::format("stored in this shard but not listed in {}", index_path.string()));
    }
    if (listed->second != *shard) {
      fail_tensor(dir / *shard, name,
                  fmt::format("stored in this shard but listed for shard '{}' in {}", listed->second.string(),
                              index_path.string()));
    }
  }
  for (const auto& [name, shard] : index.shard_of) {
    if (!stored_in.contains(name)) {
      fail_tensor(
          index_path, name,
          fmt::format("listed for shard '{}', but {} does not contain it", shard.string(), (dir / shard).string()));
    }
  }

  SafetensorsFile result;
  bool first = true;
  for (auto& [shard, file] : shards) {
    if (first) result.metadata = file.metadata;
    first = false;
    std::erase_if(result.metadata, [&](const auto& item) {
      const auto found = file.metadata.find(item.first);
      return found == file.metadata.end() || found->second != item.second;
    });
    result.tensors.merge(file.tensors);
  }
  return result;
}

// Writes `text` to `path` through "<path>.tmp", fsync and rename, as save_safetensors writes its files.
void write_file_atomically(const fs::path& path, const std::string& text) {
  const fs::path temp = path.string() + ".tmp";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(temp, fmt::format("cannot create: {}", std::strerror(errno)));
  std::size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string reason = std::strerror(errno);
      ::close(fd);
      ::unlink(temp.c_str());
      fail(temp, fmt::format("cannot write: {}", reason));
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0 || ::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(temp.c_str());
    fail(temp, fmt::format("cannot flush and rename to {}: {}", path.string(), reason));
  }
}

void remove_file(const fs::path& path) {
  std::error_code error;
  fs::remove(path, error);
  if (error) fail(path, fmt::format("cannot remove the stale weights file: {}", error.message()));
}

// Removes shard files of an earlier save that the current one did not write.
void remove_stale_shards(const fs::path& dir, const std::set<std::string>& keep) {
  std::error_code error;
  std::vector<fs::path> stale;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    if (is_shard_file_name(name) && !keep.contains(name)) stale.push_back(entry.path());
  }
  if (error) fail(dir, fmt::format("cannot list the folder: {}", error.message()));
  for (const fs::path& path : stale) remove_file(path);
}

// Rejects what save_safetensors would reject, before any file is written.
void check_savable(const fs::path& dir, const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  std::set<std::string_view> names;
  for (const auto& [name, tensor] : tensors) {
    if (name.empty()) fail(dir, "a tensor has an empty name");
    if (name == kMetadataKey) fail_tensor(dir, name, "the name is reserved for the metadata");
    if (!names.insert(name).second) fail_tensor(dir, name, "the name is given twice");
    if (!tensor.defined()) fail_tensor(dir, name, "the tensor is undefined");
    if (!safetensors_dtype_name(tensor.scalar_type())) {
      fail_tensor(dir, name,
                  fmt::format("dtype {} cannot be stored in safetensors", c10::toString(tensor.scalar_type())));
    }
  }
}

// Tensor indices per shard, in order: a new shard when the next tensor would pass the limit; an oversized tensor
// alone in its own.
std::vector<std::vector<std::size_t>> plan_shards(const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                                                  std::int64_t max_shard_bytes) {
  std::vector<std::vector<std::size_t>> shards;
  std::vector<std::size_t> current;
  std::int64_t current_bytes = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto bytes = static_cast<std::int64_t>(tensors[i].second.nbytes());
    if (!current.empty() && (bytes > max_shard_bytes || current_bytes + bytes > max_shard_bytes)) {
      shards.push_back(std::move(current));
      current.clear();
      current_bytes = 0;
    }
    current.push_back(i);
    current_bytes += bytes;
    if (bytes > max_shard_bytes) {
      shards.push_back(std::move(current));
      current.clear();
      current_bytes = 0;
    }
  }
  if (!current.empty() || shards.empty()) shards.push_back(std::move(current));
  return shards;
}

// A piece of one tensor's copy: elements [begin, end) of a contiguous CPU destination and its source.
struct CopyChunk {
  std::size_t tensor;
  std::int64_t begin;
  std::int64_t end;
};

// About 4 MiB of destination per chunk: a few hundred chunks per GB, each long enough that taking one costs nothing.
constexpr std::int64_t kCopyChunkBytes = 4 << 20;

// The conversions done here by hand, all exact: the same dtype (a byte copy) and widening BF16 or F16 to F32 (what
// loading a half-precision checkpoint into an FP32 model does).
bool has_fast_copy(torch::ScalarType to, torch::ScalarType from) {
  return to == from || (to == torch::kFloat32 && (from == torch::kBFloat16 || from == torch::kFloat16));
}

void copy_elements(const torch::Tensor& destination, const torch::Tensor& source, std::int64_t begin,
                   std::int64_t end) {
  const torch::ScalarType to = destination.scalar_type();
  const torch::ScalarType from = source.scalar_type();
  if (to == from) {
    const auto size = static_cast<std::size_t>(destination.element_size());
    std::memcpy(static_cast<char*>(destination.data_ptr()) + begin * size,
                static_cast<const char*>(source.const_data_ptr()) + begin * size, (end - begin) * size);
  } else if (from == torch::kBFloat16) {
    // BF16 is the high half of an FP32: widening is a shift, NaN payloads and signed zeros included.
    const auto* in = static_cast<const std::uint16_t*>(source.const_data_ptr());
    auto* out = static_cast<std::uint32_t*>(destination.data_ptr());
    for (std::int64_t i = begin; i < end; ++i) out[i] = static_cast<std::uint32_t>(in[i]) << 16;
  } else {
    const auto* in = source.const_data_ptr<c10::Half>();
    auto* out = destination.data_ptr<float>();
    for (std::int64_t i = begin; i < end; ++i) out[i] = static_cast<float>(in[i]);
  }
}

// Copies sources[i] into destinations[i] (same shapes, checked). Contiguous CPU pairs with a conversion above are
// cut into chunks that this thread and at::get_num_threads() - 1 helpers take from a shared counter, so a helper
// that the scheduler holds back only delays the chunk it holds; other pairs (GPU or strided tensors, other dtype
// conversions) go through copy_ one by one.
// Why not copy_ for everything: measured with bench/checkpoint_load_bench.cpp on 2 cores shared with other work,
// ATen's parallel copy_ took 1.4-2.1 s instead of 0.2 s for a Qwen2.5-0.5B checkpoint whenever another process was
// runnable (each of its ~290 parallel regions waits out a preempted thread). Why std::thread and not
// at::parallel_for: with LibTorch's OpenMP backend, parallel_for is a header template whose "#pragma omp parallel"
// only takes effect in code compiled with -fopenmp, which ours is not; it ran everything on one thread.
void copy_all(const std::vector<std::pair<std::string, torch::Tensor>>& destinations,
              const std::vector<const torch::Tensor*>& sources) {
  torch::NoGradGuard no_grad;
  std::vector<CopyChunk> chunks;
  for (std::size_t i = 0; i < destinations.size(); ++i) {
    const torch::Tensor& destination = destinations[i].second;
    const torch::Tensor& source = *sources[i];
    if (!destination.device().is_cpu() || !source.device().is_cpu() || !destination.is_contiguous() ||
        !source.is_contiguous() || !has_fast_copy(destination.scalar_type(), source.scalar_type())) {
      torch::Tensor(destination).copy_(source);
      continue;
    }
    const std::int64_t numel = destination.numel();
    const std::int64_t step = std::max<std::int64_t>(1, kCopyChunkBytes / destination.element_size());
    for (std::int64_t begin = 0; begin < numel; begin += step) {
      chunks.push_back({i, begin, std::min(numel, begin + step)});
    }
  }
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t c = next++; c < chunks.size(); c = next++) {
      const CopyChunk& chunk = chunks[c];
      copy_elements(destinations[chunk.tensor].second, *sources[chunk.tensor], chunk.begin, chunk.end);
    }
  };
  const auto helpers =
      std::min<std::size_t>(static_cast<std::size_t>(std::max(1, at::get_num_threads())) - 1, chunks.size() / 2);
  std::vector<std::jthread> threads;
  threads.reserve(helpers);
  for (std::size_t t = 0; t < helpers; ++t) threads.emplace_back(work);
  work();
}

}  // namespace

SafetensorsFile load_checkpoint_weights(const fs::path& dir) {
  std::error_code error;
  if (!fs::is_directory(dir, error)) fail(dir, "the checkpoint folder does not exist or is not a folder");
  const fs::path single = dir / kWeightsFileName;
  const fs::path index = dir / kWeightsIndexFileName;
  const bool has_single = fs::exists(single, error);
  const bool has_index = fs::exists(index, error);
  if (has_single && has_index) {
    fail(dir,
         fmt::format("holds both {} and {}; one of them is stale (transformers would take {}): remove the wrong one",
                     kWeightsFileName, kWeightsIndexFileName, kWeightsFileName));
  }
  if (has_single) return load_safetensors(single);
  if (has_index) return load_sharded(dir, index);
  fail(dir, fmt::format("no weights: neither {} nor {} exists", kWeightsFileName, kWeightsIndexFileName));
}

fs::path checkpoint_file_of(const fs::path& dir, std::string_view name) {
  std::error_code error;
  if (fs::exists(dir / kWeightsFileName, error)) return dir / kWeightsFileName;
  const fs::path index = dir / kWeightsIndexFileName;
  try {
    const ShardIndex shards = read_index(index);
    if (const auto found = shards.shard_of.find(std::string(name)); found != shards.shard_of.end())
      return dir / found->second;
  } catch (const SafetensorsError&) {
    // The load would have failed on the index first; name the index.
  }
  return index;
}

void save_checkpoint_weights(const fs::path& dir, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                             std::int64_t max_shard_bytes) {
  if (max_shard_bytes <= 0) fail(dir, fmt::format("max_shard_bytes is {}; it must be positive", max_shard_bytes));
  check_savable(dir, tensors);
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) fail(dir, fmt::format("cannot create the folder: {}", error.message()));

  const std::vector<std::vector<std::size_t>> shards = plan_shards(tensors, max_shard_bytes);
  const std::map<std::string, std::string> metadata = {{"format", "pt"}};
  if (shards.size() == 1) {
    save_safetensors(dir / kWeightsFileName, tensors, metadata);
    remove_file(dir / kWeightsIndexFileName);
    remove_stale_shards(dir, /*keep=*/{});
    return;
  }

  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  std::set<std::string> written;
  std::uint64_t total_size = 0;
  for (std::size_t s = 0; s < shards.size(); ++s) {
    const std::string name = shard_file_name(s, shards.size());
    std::vector<std::pair<std::string, torch::Tensor>> shard;
    for (const std::size_t i : shards[s]) {
      shard.push_back(tensors[i]);
      weight_map[tensors[i].first] = name;
      total_size += tensors[i].second.nbytes();
    }
    save_safetensors(dir / name, shard, metadata);
    written.insert(name);
  }
  // The single file goes before the index appears, so that the two layouts never coexist.
  remove_file(dir / kWeightsFileName);
  const nlohmann::ordered_json index = {{"metadata", {{"total_size", total_size}}}, {"weight_map", weight_map}};
  write_file_atomically(dir / kWeightsIndexFileName, index.dump(/*indent=*/2) + "\n");
  remove_stale_shards(dir, written);
}

std::vector<std::string> copy_weights_into(const SafetensorsFile& weights,
                                           const std::vector<std::pair<std::string, torch::Tensor>>& destinations,
                                           const std::string& source_name) {
  std::vector<const torch::Tensor*> sources;
  sources.reserve(destinations.size());
  std::set<std::string_view> used;
  for (const auto& [name, destination] : destinations) {
    const auto found = weights.tensors.find(name);
    if (found == weights.tensors.end()) {
      throw SafetensorsError(fmt::format("{}: tensor '{}' is missing", source_name, name));
    }
    if (found->second.sizes() != destination.sizes()) {
      throw SafetensorsError(fmt::format("{}: tensor '{}' has shape [{}] but the model expects [{}]", source_name, name,
                                         fmt::join(found->second.sizes(), ", "), fmt::join(destination.sizes(), ", ")));
    }
    sources.push_back(&found->second);
    used.insert(name);
  }
  copy_all(destinations, sources);
  std::vector<std::string> unused;
  for (const auto& [name, tensor] : weights.tensors) {
    if (!used.contains(name)) unused.push_back(name);
  }
  return unused;
}

}  // namespace grpo::policy
