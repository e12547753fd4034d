// The BPE model of tokenizer.json ("model": {"type": "BPE", ...}): the vocabulary, the ranked merges, and the merge
// loop that turns one pre-token into ids, with a bounded cache of pre-token -> ids in front of it.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "policy/bpe_piece_cache.h"
#include "policy/tokenizer_json.h"

namespace grpo::policy {

class BpeModel {
 public:
  // Reads the model; its vocab and merges come from `parsed` (parse_tokenizer_json reads them as flat lists). Throws
  // TokenizerError for another model type, dropout, vocabulary id collisions, merges that name tokens missing from
  // the vocabulary, or a malformed field.
  static BpeModel from_json(const JsonNode& model, TokenizerJson& parsed);

  // Whether pieces may be handed over as raw bytes standing for their byte-level alphabet spelling (see
  // use_raw_bytes): true unless continuing_subword_prefix or end_of_word_suffix is set.
  bool can_take_raw_bytes() const { return prefix_.empty() && suffix_.empty(); }
  // From now on encode() reads each piece as raw bytes, each byte one symbol: the ByteLevel pre-tokenizer's mapping
  // without spelling it out.
  void use_raw_bytes();

  // Appends the ids of one pre-token. Thread-safe. Throws TokenizerError when an unknown character needs the unk
  // token and unk_token is not in the vocabulary (as the library does).
  void encode(std::string_view piece, std::vector<std::int64_t>& ids) const;

  std::optional<std::int64_t> token_to_id(std::string_view token) const;
  // The token of `id`, or nullptr when no vocabulary entry has that id.
  const std::string* token(std::int64_t id) const;
  // One more than the largest id.
  std::int64_t id_limit() const { return static_cast<std::int64_t>(tokens_.size()); }
  // The number of vocabulary entries (the library's get_vocab_size, from which added tokens are numbered).
  std::int64_t entry_count() const { return entry_count_; }

 private:
  // Token -> id over a token list owned elsewhere: open addressing on (id, hash bits) slots, so a lookup touches one
  // slot and one string, and building one for 150k tokens takes milliseconds.
  class TokenIndex {
   public:
    void reserve(std::size_t count);
    // The id of `token` in `tokens`, or -1.
    std::int32_t find(std::string_view token, const std::vector<std::string>& tokens) const;
    // Points `token` (== tokens[id]) at `id`; returns the id it had, or -1.
    std::int32_t assign(std::string_view token, std::int32_t id, const std::vector<std::string>& tokens);

   private:
    struct Slot {
      std::uint32_t id_plus_one = 0;  // 0: empty
      std::uint32_t hash_bits = 0;
    };
    std::vector<Slot> slots_;
    std::size_t used_ = 0;
  };

  // Open-addressing map from a pair of ids to (rank << 32 | merged id); the hot lookup of the merge loop.
  class MergeTable {
   public:
    void build(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& entries);
    // The value for ids (left, right), or kAbsent.
    std::uint64_t find(std::int32_t left, std::int32_t right) const;
    static constexpr std::uint64_t kAbsent = ~std::uint64_t{0};

   private:
    // Key and value side by side: a lookup touches one cache line.
    struct Slot {
      std::uint64_t key;
      std::uint64_t value;
    };
    std::vector<Slot> slots_;
    std::uint64_t mask_ = 0;
  };

  BpeModel() = default;

  // The initial symbols of `piece` (ids, -1 marking an unknown character), as the library's merge_word builds them
  // before merging: per character, or per byte for raw bytes; byte fallback and unk fusing applied.
  void initial_symbols(std::string_view piece, std::vector<std::int32_t>& symbols) const;
  // Merges `symbols` in place by rank, lowest first and leftmost among equals (the library's Word::merge_all).
  void merge(std::vector<std::int32_t>& symbols) const;
  void encode_uncached(std::string_view piece, std::vector<std::int32_t>& out) const;

  // tokens_[id] for every id below id_limit(); has_token_ is false at gaps.
  std::vector<std::string> tokens_;
  std::vector<bool> has_token_;
  TokenIndex vocab_;
  std::int64_t entry_count_ = 0;
  MergeTable merges_;
  std::string prefix_;
  std::string suffix_;
  std::optional<std::string> unk_token_;
  std::int32_t unk_id_ = -1;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  bool raw_bytes_ = false;
  // Raw mode: the symbols of each byte (its alphabet character's id, or byte-fallback ids, or empty when unknown).
  std::array<std::vector<std::int32_t>, 256> byte_symbols_;
  // Raw mode with ignore_merges: raw_tokens_[id] is the raw bytes of tokens_[id] when it is all in the byte-level
  // alphabet (else a string that no piece equals), indexed by raw_vocab_.
  std::vector<std::string> raw_tokens_;
  TokenIndex raw_vocab_;
  // <0x00>..<0xFF> ids for byte_fallback, -1 where absent.
  std::array<std::int32_t, 256> fallback_ids_{};
  PieceCache cache_;
};

}  // namespace grpo::policy
