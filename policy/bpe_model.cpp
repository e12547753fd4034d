// BpeModel: reading vocab and merges, and the library's merge_word + Word::merge_all (models/bpe/model.rs, word.rs)
// over ids: a min-heap of (rank, position) candidates on a linked list of symbols, stale entries skipped when popped.
#include "policy/bpe_model.h"

#include <algorithm>
#include <bit>
#include <limits>

#include <fmt/format.h>

#include "policy/byte_level.h"
#include "policy/utf8.h"

namespace grpo::policy {
namespace {

std::uint64_t pair_key(std::int32_t left, std::int32_t right) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) | static_cast<std::uint32_t>(right);
}

struct Candidate {
  std::uint32_t rank;
  std::uint32_t position;
  std::int32_t merged;
};

// The heap's "less": the library's Merge ordering, which pops the lowest rank, then the lowest position.
struct Later {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.position > b.position;
  }
};

struct MergeScratch {
  std::vector<std::int32_t> previous;
  std::vector<std::int32_t> next;
  std::vector<Candidate> heap;
  std::vector<std::int32_t> symbols;
};

MergeScratch& merge_scratch() {
  thread_local MergeScratch scratch;
  return scratch;
}

}  // namespace

void BpeModel::TokenIndex::reserve(std::size_t count) {
  slots_.assign(std::bit_ceil(std::max<std::size_t>(16, count * 2)), Slot{});
  used_ = 0;
}

std::int32_t BpeModel::TokenIndex::find(std::string_view token, const std::vector<std::string>& tokens) const {
  if (slots_.empty()) return -1;
  const std::uint64_t hash = std::hash<std::string_view>{}(token);
  const auto bits = static_cast<std::uint32_t>(hash >> 32);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t index = hash & mask;; index = (index + 1) & mask) {
    const Slot& slot = slots_[index];
    if (slot.id_plus_one == 0) return -1;
    if (slot.hash_bits == bits && tokens[slot.id_plus_one - 1] == token) {
      return static_cast<std::int32_t>(slot.id_plus_one - 1);
    }
  }
}

std::int32_t BpeModel::TokenIndex::assign(std::string_view token, std::int32_t id,
                                          const std::vector<std::string>& tokens) {
  if (2 * (used_ + 1) > slots_.size()) {
    // Grow: re-insert every slot's id into a table twice the size.
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(std::max<std::size_t>(16, old.size() * 2), Slot{});
    used_ = 0;
    for (const Slot& slot : old) {
      if (slot.id_plus_one == 0) continue;
      const auto id_of_slot = static_cast<std::int32_t>(slot.id_plus_one - 1);
      assign(tokens[slot.id_plus_one - 1], id_of_slot, tokens);
    }
  }
  const std::uint64_t hash = std::hash<std::string_view>{}(token);
  const auto bits = static_cast<std::uint32_t>(hash >> 32);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t index = hash & mask;; index = (index + 1) & mask) {
    Slot& slot = slots_[index];
    if (slot.id_plus_one == 0) {
      slot = {static_cast<std::uint32_t>(id) + 1, bits};
      ++used_;
      return -1;
    }
    if (slot.hash_bits == bits && tokens[slot.id_plus_one - 1] == token) {
      const auto previous = static_cast<std::int32_t>(slot.id_plus_one - 1);
      slot.id_plus_one = static_cast<std::uint32_t>(id) + 1;
      return previous;
    }
  }
}

void BpeModel::MergeTable::build(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& entries) {
  const std::size_t size = std::bit_ceil(std::max<std::size_t>(16, entries.size() * 2));
  slots_.assign(size, Slot{kAbsent, kAbsent});
  mask_ = size - 1;
  for (const auto& [key, value] : entries) {
    for (std::uint64_t index = ((key * 0x9E3779B97F4A7C15ULL) >> 20) & mask_;; index = (index + 1) & mask_) {
      // A pair listed twice keeps its last rank, as the library's HashMap collect does.
      if (slots_[index].key == kAbsent || slots_[index].key == key) {
        slots_[index] = {key, value};
        break;
      }
    }
  }
}

std::uint64_t BpeModel::MergeTable::find(std::int32_t left, std::int32_t right) const {
  const std::uint64_t key = pair_key(left, right);
  for (std::uint64_t index = ((key * 0x9E3779B97F4A7C15ULL) >> 20) & mask_;; index = (index + 1) & mask_) {
    const Slot& slot = slots_[index];
    if (slot.key == key) return slot.value;
    if (slot.key == kAbsent) return kAbsent;
  }
}

BpeModel BpeModel::from_json(const JsonNode& model, TokenizerJson& parsed) {
  if (model.optional_child("type") && model.type() != "BPE") model.unsupported_type({"BPE"});
  BpeModel bpe;
  if (const std::optional<JsonNode> dropout = model.optional_child("dropout");
      dropout && !(dropout->value().is_number() && dropout->value().get<double>() == 0.0)) {
    dropout->fail(fmt::format("is {}; BPE dropout is for training and must be null here", dropout->value().dump()));
  }
  bpe.prefix_ = model.optional_string_field("continuing_subword_prefix").value_or("");
  bpe.suffix_ = model.optional_string_field("end_of_word_suffix").value_or("");
  bpe.unk_token_ = model.optional_string_field("unk_token");
  bpe.fuse_unk_ = model.bool_field("fuse_unk", false);
  bpe.byte_fallback_ = model.bool_field("byte_fallback", false);
  bpe.ignore_merges_ = model.bool_field("ignore_merges", false);

  if (!parsed.vocab) model.child("vocab").fail("is not an object of token -> id");
  // Where vocab errors point (the values themselves are in `parsed`, not in the JSON tree).
  static const Json kNull;
  const JsonNode vocab_node(kNull, model.path() + ".vocab", model.file());
  std::int64_t limit = 0;
  for (const auto& [token, id] : *parsed.vocab) {
    if (id < 0 || id >= std::numeric_limits<std::int32_t>::max()) {
      vocab_node.fail(fmt::format("'{}' has id {}, not an integer in [0, 2^31 - 1)", token, id));
    }
    limit = std::max(limit, id + 1);
  }
  bpe.tokens_.resize(static_cast<std::size_t>(limit));
  bpe.has_token_.assign(static_cast<std::size_t>(limit), false);
  bpe.vocab_.reserve(parsed.vocab->size());
  for (auto& [token, id] : *parsed.vocab) {
    const auto index = static_cast<std::size_t>(id);
    if (bpe.has_token_[index] && bpe.tokens_[index] == token) continue;
    if (bpe.has_token_[index]) {
      vocab_node.fail(fmt::format("id {} is given to both '{}' and '{}'", id, bpe.tokens_[index], token));
    }
    bpe.tokens_[index] = std::move(token);
    bpe.has_token_[index] = true;
    // A token listed twice keeps its last id, as the library's HashMap does; its earlier id becomes a gap.
    const std::int32_t previous = bpe.vocab_.assign(bpe.tokens_[index], static_cast<std::int32_t>(id), bpe.tokens_);
    if (previous >= 0) {
      bpe.has_token_[static_cast<std::size_t>(previous)] = false;
      --bpe.entry_count_;
    }
    ++bpe.entry_count_;
  }
  parsed.vocab.reset();
  if (bpe.unk_token_) bpe.unk_id_ = bpe.vocab_.find(*bpe.unk_token_, bpe.tokens_);
  for (int byte = 0; byte < 256; ++byte) {
    bpe.fallback_ids_[byte] = bpe.byte_fallback_ ? bpe.vocab_.find(fmt::format("<0x{:02X}>", byte), bpe.tokens_) : -1;
  }

  if (!parsed.merges) model.child("merges").fail("is not an array of merges");
  const JsonNode merges_node(kNull, model.path() + ".merges", model.file());
  std::vector<std::pair<std::uint64_t, std::uint64_t>> entries;
  entries.reserve(parsed.merges->size());
  std::string merged;
  for (std::size_t rank = 0; rank < parsed.merges->size(); ++rank) {
    const auto& [left, right] = (*parsed.merges)[rank];
    const auto find = [&](const std::string& token, std::string_view role) {
      const std::int32_t id = bpe.vocab_.find(token, bpe.tokens_);
      if (id < 0) {
        merges_node.fail(
            fmt::format("merge {} ('{}' '{}'): {} '{}' is not in the vocabulary", rank, left, right, role, token));
      }
      return id;
    };
    if (!right.starts_with(bpe.prefix_)) {
      merges_node.fail(
          fmt::format("merge {}: '{}' does not start with continuing_subword_prefix '{}'", rank, right, bpe.prefix_));
    }
    merged.assign(left);
    merged.append(right, bpe.prefix_.size());
    const std::int32_t left_id = find(left, "left token");
    const std::int32_t right_id = find(right, "right token");
    const std::int32_t merged_id = find(merged, "merged token");
    entries.emplace_back(pair_key(left_id, right_id),
                         (static_cast<std::uint64_t>(rank) << 32) | static_cast<std::uint32_t>(merged_id));
  }
  parsed.merges.reset();
  bpe.merges_.build(entries);
  return bpe;
}

void BpeModel::use_raw_bytes() {
  raw_bytes_ = true;
  for (int byte = 0; byte < 256; ++byte) {
    const std::string_view spelled = byte_level::byte_to_utf8(static_cast<std::uint8_t>(byte));
    std::vector<std::int32_t>& symbols = byte_symbols_[byte];
    if (const std::int32_t id = vocab_.find(spelled, tokens_); id >= 0) {
      symbols = {id};
    } else if (byte_fallback_ && std::all_of(spelled.begin(), spelled.end(), [&](char c) {
                 return fallback_ids_[static_cast<unsigned char>(c)] >= 0;
               })) {
      for (const char c : spelled) symbols.push_back(fallback_ids_[static_cast<unsigned char>(c)]);
    }
  }
  if (ignore_merges_) {
    raw_tokens_.resize(tokens_.size());
    raw_vocab_.reserve(tokens_.size());
    for (std::size_t id = 0; id < tokens_.size(); ++id) {
      if (!has_token_[id] || !byte_level::append_unmapped(raw_tokens_[id], tokens_[id])) continue;
      raw_vocab_.assign(raw_tokens_[id], static_cast<std::int32_t>(id), raw_tokens_);
    }
  }
}

void BpeModel::initial_symbols(std::string_view piece, std::vector<std::int32_t>& symbols) const {
  // The pending unknown run: the library emits it when a known symbol follows or at the end (fused or not).
  bool unknown_pending = false;
  const auto add_unknown = [&] {
    if (!unk_token_) return;  // Without an unk token, the library drops unknown characters.
    if (unk_id_ < 0) {
      throw TokenizerError(fmt::format("BPE: unk_token '{}' is needed but is not in the vocabulary", *unk_token_));
    }
    if (unknown_pending && !fuse_unk_) symbols.push_back(unk_id_);
    unknown_pending = true;
  };
  const auto add_known = [&](std::int32_t id) {
    if (unknown_pending) symbols.push_back(unk_id_);
    unknown_pending = false;
    symbols.push_back(id);
  };
  if (raw_bytes_) {
    for (const char c : piece) {
      const std::vector<std::int32_t>& ids = byte_symbols_[static_cast<unsigned char>(c)];
      if (ids.empty()) {
        add_unknown();
      } else if (ids.size() == 1) {
        add_known(ids[0]);
      } else {
        symbols.insert(symbols.end(), ids.begin(), ids.end());
      }
    }
  } else {
    std::string key;
    std::size_t pos = 0;
    while (pos < piece.size()) {
      const std::size_t start = pos;
      pos += utf8::length_from_lead(static_cast<unsigned char>(piece[pos]));
      std::string_view symbol = piece.substr(start, pos - start);
      const bool affixed = (start > 0 && !prefix_.empty()) || (pos == piece.size() && !suffix_.empty());
      if (affixed) {
        key.assign(start > 0 ? prefix_ : "");
        key.append(symbol);
        if (pos == piece.size()) key += suffix_;
        symbol = key;
      }
      if (const std::int32_t id = vocab_.find(symbol, tokens_); id >= 0) {
        add_known(id);
      } else if (byte_fallback_ && std::all_of(symbol.begin(), symbol.end(), [&](char c) {
                   return fallback_ids_[static_cast<unsigned char>(c)] >= 0;
                 })) {
        // The library adds byte-fallback symbols without emitting a pending unk first.
        for (const char c : symbol) symbols.push_back(fallback_ids_[static_cast<unsigned char>(c)]);
      } else {
        add_unknown();
      }
    }
  }
  if (unknown_pending) symbols.push_back(unk_id_);
}

void BpeModel::merge(std::vector<std::int32_t>& symbols) const {
  const std::size_t count = symbols.size();
  if (count < 2) return;
  MergeScratch& scratch = merge_scratch();
  std::vector<std::int32_t>& previous = scratch.previous;
  std::vector<std::int32_t>& next = scratch.next;
  std::vector<Candidate>& heap = scratch.heap;
  previous.resize(count);
  next.resize(count);
  heap.clear();
  for (std::size_t i = 0; i < count; ++i) {
    previous[i] = static_cast<std::int32_t>(i) - 1;
    next[i] = i + 1 < count ? static_cast<std::int32_t>(i + 1) : -1;
  }
  const auto push = [&](std::int32_t position) {
    const std::uint64_t found = merges_.find(symbols[position], symbols[next[position]]);
    if (found == MergeTable::kAbsent) return;
    heap.push_back({static_cast<std::uint32_t>(found >> 32), static_cast<std::uint32_t>(position),
                    static_cast<std::int32_t>(found & 0xFFFFFFFFu)});
    std::push_heap(heap.begin(), heap.end(), Later{});
  };
  for (std::size_t i = 0; i + 1 < count; ++i) push(static_cast<std::int32_t>(i));
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), Later{});
    const Candidate top = heap.back();
    heap.pop_back();
    const auto position = static_cast<std::int32_t>(top.position);
    // A removed symbol, the last one, or a pair that changed since this entry was pushed.
    if (symbols[position] < 0 || next[position] < 0) continue;
    const std::int32_t right = next[position];
    const std::uint64_t current = merges_.find(symbols[position], symbols[right]);
    if (current == MergeTable::kAbsent || static_cast<std::int32_t>(current & 0xFFFFFFFFu) != top.merged) continue;
    symbols[position] = top.merged;
    symbols[right] = -1;
    next[position] = next[right];
    if (next[right] >= 0) previous[next[right]] = position;
    if (previous[position] >= 0) push(previous[position]);
    if (next[position] >= 0) push(position);
  }
  std::erase(symbols, -1);
}

void BpeModel::encode_uncached(std::string_view piece, std::vector<std::int32_t>& out) const {
  out.clear();
  initial_symbols(piece, out);
  merge(out);
}

void BpeModel::encode(std::string_view piece, std::vector<std::int64_t>& ids) const {
  if (piece.empty()) return;
  if (ignore_merges_) {
    const std::int32_t whole = raw_bytes_ ? raw_vocab_.find(piece, raw_tokens_) : vocab_.find(piece, tokens_);
    if (whole >= 0) {
      ids.push_back(whole);
      return;
    }
  }
  if (cache_.find(piece, ids)) return;
  std::vector<std::int32_t>& symbols = merge_scratch().symbols;
  encode_uncached(piece, symbols);
  ids.insert(ids.end(), symbols.begin(), symbols.end());
  cache_.insert(piece, symbols);
}

std::optional<std::int64_t> BpeModel::token_to_id(std::string_view token) const {
  const std::int32_t id = vocab_.find(token, tokens_);
  if (id < 0) return std::nullopt;
  return id;
}

const std::string* BpeModel::token(std::int64_t id) const {
  if (id < 0 || id >= id_limit() || !has_token_[static_cast<std::size_t>(id)]) return nullptr;
  return &tokens_[static_cast<std::size_t>(id)];
}

}  // namespace grpo::policy
