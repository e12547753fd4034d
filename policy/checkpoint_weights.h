// The weights of a Hugging Face checkpoint folder: one model.safetensors, or the shards that
// model.safetensors.index.json lists, read zero-copy and written in transformers' layout.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "policy/safetensors.h"

namespace grpo::policy {

inline constexpr std::string_view kWeightsFileName = "model.safetensors";
inline constexpr std::string_view kWeightsIndexFileName = "model.safetensors.index.json";

// Loads every tensor of the checkpoint in `dir`, each shard memory-mapped (see load_safetensors).
//   - dir/model.safetensors alone: that file.
//   - dir/model.safetensors.index.json alone: its "weight_map" (tensor name -> shard file in `dir`) says where each
//     tensor is; every listed shard must hold exactly the tensors listed for it. "metadata.total_size" is checked to
//     be a count but not compared with the data (hub checkpoints count shared storage differently).
//   - both: rejected. transformers would silently take model.safetensors, but the two disagree only when one is
//     stale (an interrupted save, files copied over a folder), and loading stale weights is the worse failure.
// Shard names may contain folders but no ".." and no root; shard files may be symbolic links (the hub cache's
// snapshot folders link to blobs outside them). The result's metadata is the pairs every shard's metadata shares.
// Throws SafetensorsError naming the file and tensor for: no weights file, both forms, an index that is not JSON,
// repeats a key or has wrongly typed fields, a shard name that escapes `dir`, a missing or malformed shard, a
// tensor listed but absent from its shard, a tensor in a shard but not listed for it, a tensor in two shards.
SafetensorsFile load_checkpoint_weights(const std::filesystem::path& dir);

// The file of the checkpoint in `dir` that holds tensor `name`, for error messages after load_checkpoint_weights:
// dir/model.safetensors, or the shard the index lists it in; the index itself for a name it does not list (and
// when it cannot be read). Reads the index again, which costs nothing next to a failed load.
std::filesystem::path checkpoint_file_of(const std::filesystem::path& dir, std::string_view name);

// Writes `tensors` in their own dtypes into `dir` (created if missing) as transformers' save_pretrained does:
// model.safetensors when they fit one shard, otherwise model-00001-of-0000N.safetensors ... and
// model.safetensors.index.json ({"metadata": {"total_size": bytes}, "weight_map": {...}}). Shards are filled in
// order and a new one starts when the next tensor would take the shard past `max_shard_bytes`; a tensor larger
// than that gets a shard of its own, in its place in the order (huggingface_hub's splitter moves it earlier).
// Each shard carries {"format": "pt"} metadata. Each file is written atomically (".tmp" then rename), the folder
// as a whole is not: write into a fresh folder and rename it, as save_policy does, for an atomic checkpoint.
// Weights files of the other layout left in `dir` by an earlier save (model.safetensors, the index, shards named
// model-NNNNN-of-NNNNN.safetensors not written now) are removed, so that a loader never sees two checkpoints.
// Throws SafetensorsError (before writing anything) for a non-positive max_shard_bytes, an empty, repeated or
// reserved name, an undefined tensor or an unsupported dtype; and for I/O failures.
void save_checkpoint_weights(const std::filesystem::path& dir,
                             const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                             std::int64_t max_shard_bytes = 5LL << 30);

// Copies each destination's weight (same name) out of `weights` into it: what loading a model does after
// load_checkpoint_weights, meant to be shared by the model loaders. Converts dtype (e.g. BF16 file -> FP32
// parameters) and device on the way, without gradient tracking. Contiguous CPU copies of one dtype, and BF16/F16 ->
// F32, run in one parallel region over ~4 MiB chunks (not one ATen copy_ per tensor, which measured 7x slower on
// shared cores: see copy_all in the .cpp); anything else goes through copy_. Checks every name and shape before
// copying anything, so a failure leaves the destinations untouched. Returns the names in `weights` that no
// destination asked for, sorted, for the caller to judge. Throws SafetensorsError naming `source_name` (e.g. the
// checkpoint folder) and the tensor for a missing weight or a shape mismatch.
std::vector<std::string> copy_weights_into(const SafetensorsFile& weights,
                                           const std::vector<std::pair<std::string, torch::Tensor>>& destinations,
                                           const std::string& source_name);

}  // namespace grpo::policy
