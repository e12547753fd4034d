// parse_tokenizer_json: a SAX pass that builds JSON values for everything but model.vocab and model.merges, which it
// appends to flat lists as it reads them.
#include <fmt/format.h>

#include "policy/tokenizer_json.h"

namespace grpo::policy {
namespace {

class TokenizerSax final : public nlohmann::json_sax<Json> {
 public:
  TokenizerSax(TokenizerJson& out, const std::filesystem::path& file) : out_(out), file_(file) {}

  bool null() override { return value(Json(nullptr)); }
  bool boolean(bool v) override { return value(Json(v)); }
  bool number_integer(number_integer_t v) override { return integer(v) || value(Json(v)); }
  bool number_unsigned(number_unsigned_t v) override {
    return (v <= static_cast<number_unsigned_t>(INT64_MAX) && integer(static_cast<std::int64_t>(v))) || value(Json(v));
  }
  bool number_float(number_float_t v, const string_t&) override { return value(Json(v)); }
  bool binary(binary_t& v) override { return value(Json(std::move(v))); }

  bool string(string_t& v) override {
    if (mode_ == Mode::kMerges) {
      if (v.starts_with("#version")) return true;
      const std::size_t space = v.find(' ');
      if (space == std::string::npos || v.find(' ', space + 1) != std::string::npos) {
        fail("model.merges", fmt::format("entry {} is \"{}\", not \"left right\" (one space)", index_, v));
      }
      out_.merges->emplace_back(v.substr(0, space), v.substr(space + 1));
      ++index_;
      return true;
    }
    if (mode_ == Mode::kMergePair) {
      pair_.push_back(std::move(v));
      return true;
    }
    return value(Json(std::move(v)));
  }

  bool start_object(std::size_t) override {
    if (mode_ != Mode::kNormal) return bad_entry();
    if (stack_.size() == 2 && key_ == "vocab" && path_[1] == "model") {
      mode_ = Mode::kVocab;
      out_.vocab.emplace();
      return true;
    }
    return open(Json::object());
  }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool end_object() override {
    if (mode_ == Mode::kVocab) {
      mode_ = Mode::kNormal;
      return true;
    }
    return close();
  }
  bool start_array(std::size_t) override {
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kMergePair;
      pair_.clear();
      return true;
    }
    if (mode_ != Mode::kNormal) return bad_entry();
    if (stack_.size() == 2 && key_ == "merges" && path_[1] == "model") {
      mode_ = Mode::kMerges;
      out_.merges.emplace();
      index_ = 0;
      return true;
    }
    return open(Json::array());
  }
  bool end_array() override {
    if (mode_ == Mode::kMergePair) {
      if (pair_.size() != 2) fail("model.merges", fmt::format("entry {} has {} strings, not 2", index_, pair_.size()));
      out_.merges->emplace_back(std::move(pair_[0]), std::move(pair_[1]));
      ++index_;
      mode_ = Mode::kMerges;
      return true;
    }
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kNormal;
      return true;
    }
    return close();
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    throw TokenizerError(fmt::format("{}: is not valid JSON: {}", file_.string(), e.what()));
  }

 private:
  enum class Mode { kNormal, kVocab, kMerges, kMergePair };

  [[noreturn]] void fail(std::string_view path, std::string_view what) const {
    throw TokenizerError(fmt::format("{}: {}: {}", file_.string(), path, what));
  }
  bool bad_entry() const {
    if (mode_ == Mode::kVocab) fail("model.vocab", fmt::format("'{}' has a non-integer id", key_));
    fail("model.merges", fmt::format("entry {} is not \"left right\" or [\"left\", \"right\"]", index_));
  }
  // A vocab id; false when not in the vocab.
  bool integer(std::int64_t v) {
    if (mode_ != Mode::kVocab) return false;
    out_.vocab->emplace_back(std::move(key_), v);
    return true;
  }
  bool value(Json v) {
    if (mode_ != Mode::kNormal) return bad_entry();
    if (stack_.empty()) {
      out_.root = std::move(v);
    } else if (stack_.back()->is_object()) {
      (*stack_.back())[key_] = std::move(v);
    } else {
      stack_.back()->push_back(std::move(v));
    }
    return true;
  }
  bool open(Json container) {
    Json* slot = nullptr;
    if (stack_.empty()) {
      out_.root = std::move(container);
      slot = &out_.root;
    } else if (stack_.back()->is_object()) {
      slot = &((*stack_.back())[key_] = std::move(container));
    } else {
      stack_.back()->push_back(std::move(container));
      slot = &stack_.back()->back();
    }
    path_.push_back(stack_.empty() || !stack_.back()->is_object() ? std::string() : key_);
    stack_.push_back(slot);
    return true;
  }
  bool close() {
    stack_.pop_back();
    path_.pop_back();
    return true;
  }

  TokenizerJson& out_;
  const std::filesystem::path& file_;
  Mode mode_ = Mode::kNormal;
  // The open containers and the key each was opened under (empty for the root and array elements).
  std::vector<Json*> stack_;
  std::vector<std::string> path_;
  std::string key_;
  std::vector<std::string> pair_;
  std::size_t index_ = 0;
};

}  // namespace

TokenizerJson parse_tokenizer_json(std::string_view text, const std::filesystem::path& file) {
  TokenizerJson out;
  TokenizerSax sax(out, file);
  Json::sax_parse(text, &sax);
  return out;
}

}  // namespace grpo::policy
