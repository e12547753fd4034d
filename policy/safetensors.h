// Reads and writes the Hugging Face safetensors format (https://github.com/huggingface/safetensors), the weight
// file of every checkpoint we load or save: memory-mapped zero-copy reads, atomic writes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <torch/types.h>

namespace grpo::policy {

// A file that is not valid safetensors, or a tensor that cannot be written as one. The message names the file,
// the tensor where there is one, and what was wrong.
class SafetensorsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct SafetensorsFile {
  // CPU tensors in the file's dtype and shape. They view the memory-mapped file (copy-on-write: writing to one
  // never changes the file); the mapping lives until the last of them is freed.
  std::map<std::string, torch::Tensor> tensors;
  // The header's optional "__metadata__" (string to string), e.g. {"format": "pt"}.
  std::map<std::string, std::string> metadata;
};

// One tensor as a validated header describes it.
struct SafetensorsEntry {
  std::string name;
  torch::ScalarType dtype = torch::kFloat32;
  std::vector<std::int64_t> shape;
  // Its bytes are [begin, end) counted from the start of the file (not of the data buffer, as the header's
  // data_offsets are); end - begin == numel * element size.
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

struct SafetensorsHeader {
  // In the order of their bytes in the file.
  std::vector<SafetensorsEntry> tensors;
  // The header's optional "__metadata__" (string to string).
  std::map<std::string, std::string> metadata;
};

// Validates a whole safetensors file held in memory (8-byte length, JSON header, data buffer) and describes its
// tensors. A pure function of the bytes: no I/O, no tensors made. `source_name` (the file's path) starts every
// error message. Throws SafetensorsError, and only that, for anything malformed: a file shorter than 8 bytes, a
// header length past the end of the file or over 100 MB, a header that is not a JSON object or repeats a key,
// a tensor entry with a missing or mistyped field, an unknown dtype, a negative, non-integer or overflowing
// dimension, data_offsets that are not [begin, end] with begin <= end inside the data buffer, a byte count that
// does not match shape x dtype size, overlapping tensors, BOOL bytes other than 0 and 1, and non-string metadata.
// Messages name the tensor (or metadata key) where there is one.
SafetensorsHeader parse_safetensors(std::span<const std::byte> file, const std::string& source_name);

// The safetensors name of a dtype ("BF16", "F32", ...), or nullopt when the format cannot store it.
std::optional<std::string_view> safetensors_dtype_name(torch::ScalarType dtype);

// Loads every tensor of `path`. Supported dtypes: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL.
// Throws SafetensorsError for an unreadable file or a malformed one (see parse_safetensors). Unused bytes between
// or after tensors are tolerated (the reference reader refuses them); overlapping tensors are not.
SafetensorsFile load_safetensors(const std::filesystem::path& path);

// Writes `tensors` (copied to contiguous CPU memory, laid out in the given order) and `metadata` to `path`.
// The file is written to "<path>.tmp" and renamed over `path`, so a reader never sees a half-written file.
// Throws SafetensorsError for an empty, duplicate or reserved name, an unsupported dtype, or an I/O failure.
void save_safetensors(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace grpo::policy
