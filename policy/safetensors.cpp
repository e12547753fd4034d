// The safetensors reader and writer: header validation (rules of the reference implementation), memory-mapped
// tensors that keep their mapping alive, and an atomic write through "<path>.tmp".
#include "policy/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string_view>
#include <tuple>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

namespace grpo::policy {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian and is read and written here without byte swapping");

using Json = nlohmann::json;

constexpr std::uint64_t kHeaderLengthBytes = 8;
// The reference implementation's MAX_HEADER_SIZE: a bound on the memory a hostile header length can make us use.
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
constexpr std::string_view kMetadataKey = "__metadata__";
// Tensor sizes are int64_t in LibTorch; a byte count past this cannot be a tensor.
constexpr std::uint64_t kMaxByteCount = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

struct DtypeInfo {
  std::string_view name;
  torch::ScalarType scalar_type;
  std::uint64_t element_size;
};

constexpr std::array<DtypeInfo, 10> kDtypes = {{
    {"F64", torch::kFloat64, 8},
    {"F32", torch::kFloat32, 4},
    {"F16", torch::kFloat16, 2},
    {"BF16", torch::kBFloat16, 2},
    {"I64", torch::kInt64, 8},
    {"I32", torch::kInt32, 4},
    {"I16", torch::kInt16, 2},
    {"I8", torch::kInt8, 1},
    {"U8", torch::kUInt8, 1},
    {"BOOL", torch::kBool, 1},
}};

const DtypeInfo* find_dtype(std::string_view name) {
  const auto* it = std::find_if(kDtypes.begin(), kDtypes.end(), [&](const DtypeInfo& d) { return d.name == name; });
  return it == kDtypes.end() ? nullptr : it;
}

const DtypeInfo* find_dtype(torch::ScalarType scalar_type) {
  const auto* it =
      std::find_if(kDtypes.begin(), kDtypes.end(), [&](const DtypeInfo& d) { return d.scalar_type == scalar_type; });
  return it == kDtypes.end() ? nullptr : it;
}

std::string supported_dtype_names() {
  std::vector<std::string_view> names;
  for (const DtypeInfo& d : kDtypes) names.push_back(d.name);
  return fmt::format("{}", fmt::join(names, ", "));
}

[[noreturn]] void fail(std::string_view source, std::string_view what) {
  throw SafetensorsError(fmt::format("{}: {}", source, what));
}

[[noreturn]] void fail_tensor(std::string_view source, std::string_view name, std::string_view what) {
  throw SafetensorsError(fmt::format("{}: tensor '{}': {}", source, name, what));
}

[[noreturn]] void fail(const std::filesystem::path& path, std::string_view what) {
  fail(std::string_view(path.native()), what);
}

[[noreturn]] void fail_tensor(const std::filesystem::path& path, std::string_view name, std::string_view what) {
  fail_tensor(std::string_view(path.native()), name, what);
}

std::string errno_text() { return std::strerror(errno); }

// Closes a file descriptor on every path out of a function.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() { close(); }
  int get() const { return fd_; }
  // Returns close(2)'s result so that the writer can report a failed final flush.
  int close() {
    const int result = fd_ >= 0 ? ::close(fd_) : 0;
    fd_ = -1;
    return result;
  }

 private:
  int fd_;
};

// A whole file mapped private and writable: pages are shared with the page cache until a tensor is written to,
// then copied, so in-place tensor ops work and never reach the file. The writer below replaces files by rename,
// so a mapped file is never rewritten underneath its tensors.
class FileMapping {
 public:
  FileMapping(std::uint8_t* data, std::uint64_t size) : data_(data), size_(size) {}
  FileMapping(const FileMapping&) = delete;
  FileMapping& operator=(const FileMapping&) = delete;
  ~FileMapping() {
    if (data_ != nullptr) ::munmap(data_, size_);
  }
  std::uint8_t* data() const { return data_; }
  std::uint64_t size() const { return size_; }

 private:
  std::uint8_t* data_;
  std::uint64_t size_;
};

std::shared_ptr<FileMapping> map_file(const std::filesystem::path& path) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) fail(path, fmt::format("cannot open: {}", errno_text()));
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) fail(path, fmt::format("cannot stat: {}", errno_text()));
  if (!S_ISREG(info.st_mode)) fail(path, "is not a regular file");
  const auto size = static_cast<std::uint64_t>(info.st_size);
  // mmap refuses an empty range; parse_safetensors reports the file as too short.
  if (size == 0) return std::make_shared<FileMapping>(nullptr, 0);
  void* data = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.get(), 0);
  if (data == MAP_FAILED) fail(path, fmt::format("cannot memory-map {} bytes: {}", size, errno_text()));
  return std::make_shared<FileMapping>(static_cast<std::uint8_t*>(data), size);
}

// A JSON value for an error message, cut short: a hostile header can hold a megabyte-long array.
std::string brief(const Json& value) {
  constexpr std::size_t kMaxChars = 80;
  std::string text = value.dump();
  if (text.size() > kMaxChars) text = text.substr(0, kMaxChars) + "...";
  return text;
}

// A well-formed header nests 3 deep (header > entry > shape); the bound keeps the recursive dump() above cheap.
constexpr int kMaxHeaderDepth = 8;

// Parses the header, rejecting repeated keys (nlohmann keeps the last of them, which would silently drop a tensor)
// and deep nesting. Errors name the top-level entry being read.
Json parse_header(std::string_view source, std::string_view text) {
  std::vector<std::set<std::string>> open_objects;
  std::string current_tensor;
  auto where = [&] {
    return current_tensor.empty() ? std::string() : fmt::format(" (in the entry of '{}')", current_tensor);
  };
  auto on_event = [&](int depth, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        if (depth >= kMaxHeaderDepth) {
          fail(source, fmt::format("header nests deeper than {} levels{}", kMaxHeaderDepth, where()));
        }
        if (event == Json::parse_event_t::object_start) open_objects.emplace_back();
        break;
      case Json::parse_event_t::object_end:
        open_objects.pop_back();
        break;
      case Json::parse_event_t::key: {
        const auto& key = parsed.get_ref<const std::string&>();
        if (open_objects.size() == 1) current_tensor = key;
        if (!open_objects.back().insert(key).second) {
          if (open_objects.size() == 1) fail(source, fmt::format("header has two entries named '{}'", key));
          fail(source, fmt::format("header repeats key '{}' inside the entry of '{}'", key, current_tensor));
        }
        break;
      }
      default:
        break;
    }
    return true;
  };
  Json header;
  try {
    header = Json::parse(text.begin(), text.end(), on_event);
  } catch (const Json::exception& e) {
    fail(source, fmt::format("header is not valid JSON{}: {}", where(), e.what()));
  }
  if (!header.is_object()) fail(source, fmt::format("header is a JSON {}, not an object", header.type_name()));
  return header;
}

// Why a JSON value is not a count (a non-negative integer), for error messages.
std::string count_problem(const Json& value) {
  if (value.is_number_integer() && !value.is_number_unsigned()) return fmt::format("{} is negative", brief(value));
  return fmt::format("{} is not a non-negative integer", brief(value));
}

// `buffer_start`: where the data buffer begins in the file; the entry's offsets are made absolute with it.
SafetensorsEntry parse_entry(std::string_view source, const std::string& name, const Json& value,
                             std::uint64_t buffer_start, std::uint64_t buffer_size) {
  SafetensorsEntry entry;
  entry.name = name;
  if (!value.is_object())
    fail_tensor(source, name, fmt::format("entry is a JSON {}, not an object", value.type_name()));

  const auto dtype_field = value.find("dtype");
  if (dtype_field == value.end() || !dtype_field->is_string()) {
    fail_tensor(source, name, "'dtype' is missing or not a string");
  }
  const DtypeInfo* dtype = find_dtype(dtype_field->get_ref<const std::string&>());
  if (dtype == nullptr) {
    fail_tensor(source, name,
                fmt::format("unknown dtype '{}' (supported: {})", dtype_field->get_ref<const std::string&>(),
                            supported_dtype_names()));
  }
  entry.dtype = dtype->scalar_type;

  const auto shape = value.find("shape");
  if (shape == value.end() || !shape->is_array()) fail_tensor(source, name, "'shape' is missing or not an array");
  std::uint64_t byte_count = dtype->element_size;
  for (const Json& dim : *shape) {
    if (!dim.is_number_unsigned()) fail_tensor(source, name, fmt::format("shape entry {}", count_problem(dim)));
    const auto size = dim.get<std::uint64_t>();
    if (__builtin_mul_overflow(byte_count, size, &byte_count) || byte_count > kMaxByteCount || size > kMaxByteCount) {
      fail_tensor(source, name, fmt::format("total byte count of shape {} overflows", brief(*shape)));
    }
    entry.shape.push_back(static_cast<std::int64_t>(size));
  }

  const auto offsets = value.find("data_offsets");
  if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2) {
    fail_tensor(source, name, "'data_offsets' is missing or not an array of two integers [begin, end]");
  }
  for (const Json& offset : *offsets) {
    if (!offset.is_number_unsigned()) fail_tensor(source, name, fmt::format("data offset {}", count_problem(offset)));
  }
  const auto begin = (*offsets)[0].get<std::uint64_t>();
  const auto end = (*offsets)[1].get<std::uint64_t>();
  if (begin > end)
    fail_tensor(source, name, fmt::format("data_offsets {} decrease (begin after end)", brief(*offsets)));
  if (end > buffer_size) {
    fail_tensor(source, name,
                fmt::format("data_offsets {} lie outside the data buffer of {} bytes", brief(*offsets), buffer_size));
  }
  if (end - begin != byte_count) {
    fail_tensor(source, name,
                fmt::format("data_offsets {} span {} bytes, but dtype {} with shape {} needs {}", brief(*offsets),
                            end - begin, dtype->name, brief(*shape), byte_count));
  }
  entry.begin = buffer_start + begin;
  entry.end = buffer_start + end;
  return entry;
}

std::map<std::string, std::string> parse_metadata(std::string_view source, const Json& value) {
  if (!value.is_object()) {
    fail(source, fmt::format("'{}' is a JSON {}, not an object of strings", kMetadataKey, value.type_name()));
  }
  std::map<std::string, std::string> metadata;
  for (const auto& [key, item] : value.items()) {
    if (!item.is_string()) {
      fail(source, fmt::format("'{}' entry '{}' is a JSON {}, not a string", kMetadataKey, key, item.type_name()));
    }
    metadata.emplace(key, item.get<std::string>());
  }
  return metadata;
}

// Sorts `entries` by their bytes and rejects any two that share one (a zero-byte tensor inside another counts).
void check_no_overlap(std::string_view source, std::uint64_t buffer_start, std::vector<SafetensorsEntry>& entries) {
  std::sort(entries.begin(), entries.end(), [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  for (std::size_t i = 1; i < entries.size(); ++i) {
    const SafetensorsEntry& previous = entries[i - 1];
    const SafetensorsEntry& current = entries[i];
    if (current.begin < previous.end) {
      // Reported in data_offsets terms, as the header states them.
      fail(source, fmt::format("tensors '{}' (bytes [{}, {})) and '{}' (bytes [{}, {})) overlap", previous.name,
                               previous.begin - buffer_start, previous.end - buffer_start, current.name,
                               current.begin - buffer_start, current.end - buffer_start));
    }
  }
}

// Bytes of a BOOL tensor other than 0 and 1 are undefined behaviour for LibTorch's bool kernels.
void check_bool_bytes(std::string_view source, const SafetensorsEntry& entry, std::span<const std::byte> file) {
  for (std::uint64_t i = entry.begin; i < entry.end; ++i) {
    const auto byte = std::to_integer<unsigned>(file[i]);
    if (byte > 1) {
      fail_tensor(source, entry.name,
                  fmt::format("BOOL element {} has byte value {}, not 0 or 1", i - entry.begin, byte));
    }
  }
}

torch::Tensor make_tensor(const SafetensorsEntry& entry, const std::shared_ptr<FileMapping>& mapping) {
  const auto options = torch::TensorOptions().dtype(entry.dtype).device(torch::kCPU);
  const std::uint64_t byte_count = entry.end - entry.begin;
  if (byte_count == 0) return torch::empty(entry.shape, options);
  std::uint8_t* data = mapping->data() + entry.begin;
  // The format does not promise aligned offsets; misaligned element access is undefined behaviour, so such a
  // tensor gets its own aligned copy instead of a view.
  if (reinterpret_cast<std::uintptr_t>(data) % c10::elementSize(entry.dtype) != 0) {
    torch::Tensor copy = torch::empty(entry.shape, options);
    std::memcpy(copy.data_ptr(), data, byte_count);
    return copy;
  }
  // The deleter owns a reference to the mapping: the file stays mapped until LibTorch frees the last view.
  return torch::from_blob(
      data, entry.shape, [mapping](void* /*data*/) {}, options);
}

void write_all(const std::filesystem::path& path, int fd, const void* data, std::uint64_t size) {
  const auto* bytes = static_cast<const std::uint8_t*>(data);
  while (size > 0) {
    const ssize_t written = ::write(fd, bytes, size);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) fail(path, fmt::format("cannot write: {}", errno_text()));
    bytes += written;
    size -= static_cast<std::uint64_t>(written);
  }
}

// The file being written: removed again unless commit() renamed it into place.
class TempFile {
 public:
  TempFile(std::filesystem::path temp_path, std::filesystem::path final_path)
      : temp_path_(std::move(temp_path)),
        final_path_(std::move(final_path)),
        fd_(::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) {
    if (fd_.get() < 0) fail(temp_path_, fmt::format("cannot create: {}", errno_text()));
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    fd_.close();
    if (!committed_) ::unlink(temp_path_.c_str());
  }

  void write(const void* data, std::uint64_t size) { write_all(temp_path_, fd_.get(), data, size); }

  // fsync before rename: otherwise a crash can leave the new name pointing at an empty file.
  void commit() {
    if (::fsync(fd_.get()) != 0) fail(temp_path_, fmt::format("cannot flush to disk: {}", errno_text()));
    if (fd_.close() != 0) fail(temp_path_, fmt::format("cannot close: {}", errno_text()));
    if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
      fail(temp_path_, fmt::format("cannot rename to {}: {}", final_path_.string(), errno_text()));
    }
    committed_ = true;
  }

 private:
  std::filesystem::path temp_path_;
  std::filesystem::path final_path_;
  FileDescriptor fd_;
  bool committed_ = false;
};

}  // namespace

SafetensorsHeader parse_safetensors(std::span<const std::byte> file, const std::string& source_name) {
  const std::string_view source = source_name;
  if (file.size() < kHeaderLengthBytes) {
    fail(source,
         fmt::format("file is {} bytes, shorter than the {}-byte header length", file.size(), kHeaderLengthBytes));
  }
  std::uint64_t header_length = 0;
  std::memcpy(&header_length, file.data(), kHeaderLengthBytes);
  if (header_length > kMaxHeaderBytes) {
    fail(source, fmt::format("header length {} is larger than the {}-byte limit", header_length, kMaxHeaderBytes));
  }
  if (header_length > file.size() - kHeaderLengthBytes) {
    fail(source, fmt::format("header length {} runs past the end of the {}-byte file", header_length, file.size()));
  }
  const std::uint64_t buffer_start = kHeaderLengthBytes + header_length;
  const std::uint64_t buffer_size = file.size() - buffer_start;
  const Json header = parse_header(
      source, std::string_view(reinterpret_cast<const char*>(file.data()) + kHeaderLengthBytes, header_length));

  SafetensorsHeader result;
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey) {
      result.metadata = parse_metadata(source, value);
    } else {
      result.tensors.push_back(parse_entry(source, key, value, buffer_start, buffer_size));
    }
  }
  check_no_overlap(source, buffer_start, result.tensors);
  for (const SafetensorsEntry& entry : result.tensors) {
    if (entry.dtype == torch::kBool) check_bool_bytes(source, entry, file);
  }
  return result;
}

std::optional<std::string_view> safetensors_dtype_name(torch::ScalarType dtype) {
  const DtypeInfo* info = find_dtype(dtype);
  if (info == nullptr) return std::nullopt;
  return info->name;
}

SafetensorsFile load_safetensors(const std::filesystem::path& path) {
  const std::shared_ptr<FileMapping> mapping = map_file(path);
  const SafetensorsHeader header = parse_safetensors(
      std::span<const std::byte>(reinterpret_cast<const std::byte*>(mapping->data()), mapping->size()), path.string());
  SafetensorsFile file;
  file.metadata = header.metadata;
  for (const SafetensorsEntry& entry : header.tensors) file.tensors.emplace(entry.name, make_tensor(entry, mapping));
  return file;
}

void save_safetensors(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // ordered_json: "__metadata__" first, then the tensors in layout order, as the reference writer emits them.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header[std::string(kMetadataKey)] = metadata;
  std::vector<torch::Tensor> contiguous;
  contiguous.reserve(tensors.size());
  std::set<std::string_view> names;
  std::uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name.empty()) fail(path, "a tensor has an empty name");
    if (name == kMetadataKey) fail_tensor(path, name, "the name is reserved for the metadata");
    if (!names.insert(name).second) fail_tensor(path, name, "the name is given twice");
    if (!tensor.defined()) fail_tensor(path, name, "the tensor is undefined");
    const DtypeInfo* dtype = find_dtype(tensor.scalar_type());
    if (dtype == nullptr) {
      fail_tensor(path, name,
                  fmt::format("dtype {} cannot be stored (supported: {})", c10::toString(tensor.scalar_type()),
                              supported_dtype_names()));
    }
    torch::Tensor cpu = tensor.detach().to(torch::kCPU).contiguous();
    const auto byte_count = static_cast<std::uint64_t>(cpu.nbytes());
    header[name] = {{"dtype", std::string(dtype->name)},
                    {"shape", cpu.sizes().vec()},
                    {"data_offsets", {offset, offset + byte_count}}};
    offset += byte_count;
    contiguous.push_back(std::move(cpu));
  }
  std::string header_text;
  try {
    header_text = header.dump();
  } catch (const nlohmann::ordered_json::exception& e) {
    fail(path, fmt::format("a tensor name or metadata string is not valid UTF-8: {}", e.what()));
  }
  // Pad with spaces to a multiple of 8 bytes, as the reference writer does, so that the data buffer starts aligned.
  header_text.append((kHeaderLengthBytes - header_text.size() % kHeaderLengthBytes) % kHeaderLengthBytes, ' ');
  const std::uint64_t header_length = header_text.size();

  TempFile file(path.string() + ".tmp", path);
  file.write(&header_length, kHeaderLengthBytes);
  file.write(header_text.data(), header_length);
  for (const torch::Tensor& tensor : contiguous) {
    if (tensor.nbytes() > 0) file.write(tensor.data_ptr(), tensor.nbytes());
  }
  file.commit();
}

}  // namespace grpo::policy
