// A bounded, thread-safe cache of pre-token -> ids for the BPE model: text repeats its words, so most pre-tokens are
// merged once. Sharded by hash, one mutex a shard; a full shard is emptied and refilled.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace grpo::policy {

class PieceCache {
 public:
  // Pieces of this many bytes or more are not cached (the library's MAX_LENGTH).
  static constexpr std::size_t kMaxPieceBytes = 256;

  // Room for about `capacity` pieces in all.
  explicit PieceCache(std::size_t capacity = 65536);

  // Appends the ids cached for `piece` and returns true, or returns false.
  bool find(std::string_view piece, std::vector<std::int64_t>& ids) const;
  void insert(std::string_view piece, std::span<const std::int32_t> ids) const;

 private:
  struct Slot {
    std::uint64_t hash = 0;
    std::uint32_t key_offset = 0;
    std::uint32_t ids_offset = 0;
    std::uint16_t key_length = 0;  // 0: empty slot (pieces are never empty)
    std::uint16_t id_count = 0;
  };
  struct Shard {
    std::mutex mutex;
    std::vector<Slot> slots;
    std::string keys;
    std::vector<std::int32_t> ids;
    std::size_t used = 0;
  };

  Shard& shard_of(std::uint64_t hash) const { return shards_[hash >> 60]; }
  // The slot holding `piece`, or the empty slot where it would go.
  static Slot& probe(Shard& shard, std::uint64_t hash, std::string_view piece);

  static constexpr std::size_t kShards = 16;
  std::unique_ptr<Shard[]> shards_;
  std::size_t slots_per_shard_ = 0;
};

}  // namespace grpo::policy
