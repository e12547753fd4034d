// PieceCache: open addressing with linear probing over a fixed table per shard, keys and ids in per-shard arenas,
// so that a hit copies ids without allocating and a miss costs one probe sequence.
#include "policy/bpe_piece_cache.h"

#include <bit>
#include <functional>

namespace grpo::policy {

PieceCache::PieceCache(std::size_t capacity) : shards_(std::make_unique<Shard[]>(kShards)) {
  // Half full at most, so probe sequences stay short.
  slots_per_shard_ = std::bit_ceil(std::max<std::size_t>(16, 2 * capacity / kShards));
  for (std::size_t i = 0; i < kShards; ++i) shards_[i].slots.resize(slots_per_shard_);
}

PieceCache::Slot& PieceCache::probe(Shard& shard, std::uint64_t hash, std::string_view piece) {
  const std::size_t mask = shard.slots.size() - 1;
  for (std::size_t index = hash & mask;; index = (index + 1) & mask) {
    Slot& slot = shard.slots[index];
    if (slot.key_length == 0) return slot;
    if (slot.hash == hash && slot.key_length == piece.size() &&
        std::string_view(shard.keys).substr(slot.key_offset, slot.key_length) == piece) {
      return slot;
    }
  }
}

bool PieceCache::find(std::string_view piece, std::vector<std::int64_t>& ids) const {
  if (piece.empty() || piece.size() >= kMaxPieceBytes) return false;
  const std::uint64_t hash = std::hash<std::string_view>{}(piece);
  Shard& shard = shard_of(hash);
  std::lock_guard lock(shard.mutex);
  const Slot& slot = probe(shard, hash, piece);
  if (slot.key_length == 0) return false;
  const std::int32_t* begin = shard.ids.data() + slot.ids_offset;
  ids.insert(ids.end(), begin, begin + slot.id_count);
  return true;
}

void PieceCache::insert(std::string_view piece, std::span<const std::int32_t> ids) const {
  if (piece.empty() || piece.size() >= kMaxPieceBytes || ids.size() > 0xFFFF) return;
  const std::uint64_t hash = std::hash<std::string_view>{}(piece);
  Shard& shard = shard_of(hash);
  std::lock_guard lock(shard.mutex);
  if (shard.used >= shard.slots.size() / 2) {
    std::fill(shard.slots.begin(), shard.slots.end(), Slot{});
    shard.keys.clear();
    shard.ids.clear();
    shard.used = 0;
  }
  Slot& slot = probe(shard, hash, piece);
  if (slot.key_length != 0) return;
  slot = Slot{.hash = hash,
              .key_offset = static_cast<std::uint32_t>(shard.keys.size()),
              .ids_offset = static_cast<std::uint32_t>(shard.ids.size()),
              .key_length = static_cast<std::uint16_t>(piece.size()),
              .id_count = static_cast<std::uint16_t>(ids.size())};
  shard.keys.append(piece);
  shard.ids.insert(shard.ids.end(), ids.begin(), ids.end());
  ++shard.used;
}

}  // namespace grpo::policy
