// Reads and writes the Hugging Face safetensors format (https://github.com/huggingface/safetensors), the weight
// file of every checkpoint we load or save: memory-mapped zero-copy reads, atomic writes.
#pragma once

#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
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

// Loads every tensor of `path`. Supported dtypes: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL.
// Throws SafetensorsError for an unreadable or malformed file. Unused bytes between or after tensors are
// tolerated (the reference reader refuses them); overlapping tensors are not.
SafetensorsFile load_safetensors(const std::filesystem::path& path);

// Writes `tensors` (copied to contiguous CPU memory, laid out in the given order) and `metadata` to `path`.
// The file is written to "<path>.tmp" and renamed over `path`, so a reader never sees a half-written file.
// Throws SafetensorsError for an empty, duplicate or reserved name, an unsupported dtype, or an I/O failure.
void save_safetensors(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace grpo::policy
