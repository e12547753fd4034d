// BpeTokenizer against the Hugging Face `tokenizers` package: the shared Qwen3 and DeepSeek-V3 fixtures' expected
// encodings, the shipped tiny fixtures' committed encodings (scripts/make_tiny_bpe_fixture.py), line-by-line parity on
// tests/policy/data/tokenizer_corpus.jsonl with scripts/tokenizer_reference.py run at test time, hand-computable merge
// cases, tokenizer_config.json fields, save, and the errors for malformed or unsupported files.
#include "policy/bpe_tokenizer.h"

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "policy/unicode_regex.h"
#include "tests/testing/python.h"

namespace grpo::policy {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

fs::path shared_tokenizers() { return fs::path(GRPO_SHARED_DIR) / "fixtures" / "tokenizers"; }
fs::path data_dir() { return fs::path(GRPO_SOURCE_DIR) / "tests" / "policy" / "data"; }

std::vector<Json> read_jsonl(const fs::path& file) {
  std::ifstream in(file);
  std::vector<Json> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(Json::parse(line));
  }
  return lines;
}

// Loads each shared fixture once for the whole suite: parsing Qwen's 11 MB file is the slowest step.
std::shared_ptr<const BpeTokenizer> shared_fixture(const std::string& name) {
  static std::map<std::string, std::shared_ptr<const BpeTokenizer>> loaded;
  auto& tokenizer = loaded[name];
  if (!tokenizer) tokenizer = BpeTokenizer::load(shared_tokenizers() / name);
  return tokenizer;
}

#define SKIP_WITHOUT_SHARED_FIXTURES()                                                           \
  if (!fs::exists(shared_tokenizers() / "encode_cases.jsonl")) {                                 \
    GTEST_SKIP() << "the shared tokenizer fixtures are absent (" << shared_tokenizers().string() \
                 << "); they come with the CI checkout's ../shared folder";                      \
  }

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "bpe_tokenizer_test_XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string ids_text(const std::vector<std::int64_t>& ids) { return fmt::format("[{}]", fmt::join(ids, ", ")); }

TEST(BpeTokenizerTest, SharedFixturesLoadQuickly) {
  SKIP_WITHOUT_SHARED_FIXTURES();
  for (const std::string name : {"qwen3", "deepseek_v3"}) {
    const auto start = std::chrono::steady_clock::now();
    const auto tokenizer = BpeTokenizer::load(shared_tokenizers() / name);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << fmt::format("[ load     ] {}: {:.3f} s, vocab_size {}\n", name, seconds, tokenizer->vocab_size());
    RecordProperty(name + "_load_seconds", fmt::format("{:.3f}", seconds));
  }
}

TEST(BpeTokenizerTest, ReproducesSharedEncodeCases) {
  SKIP_WITHOUT_SHARED_FIXTURES();
  const std::vector<Json> cases = read_jsonl(shared_tokenizers() / "encode_cases.jsonl");
  ASSERT_FALSE(cases.empty());
  for (const std::string name : {"qwen3", "deepseek_v3"}) {
    const auto tokenizer = shared_fixture(name);
    for (const Json& c : cases) {
      const std::string text = c["text"];
      const std::vector<std::int64_t> ids = tokenizer->encode(text);
      EXPECT_EQ(ids_text(ids), ids_text(c[name].get<std::vector<std::int64_t>>())) << name << ": " << c["text"];
      EXPECT_EQ(tokenizer->decode(ids), text) << name;
    }
  }
}

TEST(BpeTokenizerTest, ReadsSharedTokenizerConfigs) {
  SKIP_WITHOUT_SHARED_FIXTURES();
  const auto qwen = shared_fixture("qwen3");
  EXPECT_EQ(qwen->vocab_size(), 151669);
  EXPECT_EQ(qwen->eos_id(), qwen->token_to_id("<|im_end|>"));
  EXPECT_EQ(qwen->pad_id(), qwen->token_to_id("<|endoftext|>"));
  EXPECT_EQ(qwen->bos_id(), std::nullopt);
  EXPECT_EQ(qwen->model_max_length(), 131072);
  EXPECT_TRUE(qwen->chat_template().starts_with("{%- if tools %}"));
  EXPECT_TRUE(qwen->is_special(*qwen->token_to_id("<|im_start|>")));
  EXPECT_FALSE(qwen->is_special(*qwen->token_to_id("<think>")));
  EXPECT_EQ(qwen->id_to_token(9707), "Hello");
  EXPECT_EQ(qwen->id_to_token(151667), "<think>");

  const auto deepseek = shared_fixture("deepseek_v3");
  EXPECT_EQ(deepseek->bos_id(), 0);
  EXPECT_EQ(deepseek->eos_id(), 1);
  EXPECT_EQ(deepseek->pad_id(), 1);
  EXPECT_EQ(deepseek->model_max_length(), 131072);
  EXPECT_FALSE(deepseek->chat_template().empty());
}

TEST(BpeTokenizerTest, DecodesSpecialTokensCutCharactersAndRejectsBadIds) {
  SKIP_WITHOUT_SHARED_FIXTURES();
  const auto qwen = shared_fixture("qwen3");
  const std::vector<std::int64_t> ids = qwen->encode("<|im_start|>user\nHi<|im_end|>");
  EXPECT_EQ(qwen->decode(ids, /*skip_special_tokens=*/true), "user\nHi");
  EXPECT_EQ(qwen->decode(ids), "<|im_start|>user\nHi<|im_end|>");
  // "中" is three bytes, tokens split it: decoding a prefix gives U+FFFD as Python's errors="replace".
  const std::vector<std::int64_t> cut = {*qwen->token_to_id("ä¸")};
  EXPECT_EQ(qwen->decode(cut), "\xEF\xBF\xBD");
  const std::vector<std::int64_t> bad = {9707, qwen->vocab_size()};
  EXPECT_THROW(qwen->decode(bad), TokenizerError);
  const std::vector<std::int64_t> negative = {-1};
  EXPECT_THROW(qwen->decode(negative), TokenizerError);
  EXPECT_THROW(qwen->id_to_token(qwen->vocab_size()), TokenizerError);
  EXPECT_FALSE(qwen->is_special(-3));
}

TEST(BpeTokenizerTest, RepairsInvalidUtf8BeforeEncoding) {
  SKIP_WITHOUT_SHARED_FIXTURES();
  const auto qwen = shared_fixture("qwen3");
  // A stray continuation byte, a truncated 3-byte sequence and an overlong form each become U+FFFD.
  const std::string broken = "a\x80 b\xE4\xB8 c\xC0\xAF d";
  EXPECT_EQ(qwen->encode(broken), qwen->encode("a\xEF\xBF\xBD b\xEF\xBF\xBD c\xEF\xBF\xBD\xEF\xBF\xBD d"));
}

TEST(BpeTokenizerTest, EncodesTheSameFromManyThreads) {
  SKIP_WITHOUT_SHARED_FIXTURES();
  const auto qwen = shared_fixture("qwen3");
  const std::vector<Json> corpus = read_jsonl(data_dir() / "tokenizer_corpus.jsonl");
  std::vector<std::vector<std::int64_t>> expected;
  for (const Json& line : corpus) expected.push_back(qwen->encode(line["text"].get<std::string>()));
  std::vector<int> failures(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (std::size_t i = t; i < corpus.size(); i += 2) {
        if (qwen->encode(corpus[i]["text"].get<std::string>()) != expected[i]) ++failures[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const int f : failures) EXPECT_EQ(f, 0);
}

// The committed encodings of the shipped tiny fixtures, checked without Python.
TEST(BpeTokenizerTest, ReproducesTinyFixtureEncodings) {
  const std::vector<Json> expected = read_jsonl(data_dir() / "tiny_bpe_expected.jsonl");
  ASSERT_FALSE(expected.empty());
  std::map<std::string, std::shared_ptr<const BpeTokenizer>> tokenizers;
  for (const Json& line : expected) {
    const std::string fixture = line["fixture"];
    auto& tokenizer = tokenizers[fixture];
    if (!tokenizer) tokenizer = BpeTokenizer::load(data_dir() / fixture);
    const std::string text = line["text"];
    const std::vector<std::int64_t> ids = tokenizer->encode(text);
    EXPECT_EQ(ids_text(ids), ids_text(line["ids"].get<std::vector<std::int64_t>>())) << fixture << ": " << line["text"];
    EXPECT_EQ(tokenizer->decode(ids), line["decoded"].get<std::string>()) << fixture << ": " << line["text"];
    EXPECT_EQ(tokenizer->decode(ids, /*skip_special_tokens=*/true), line["decoded_skip"].get<std::string>())
        << fixture << ": " << line["text"];
  }
  EXPECT_EQ(tokenizers.size(), 3u);
}

TEST(BpeTokenizerTest, ReadsTinyFixtureConfigs) {
  const auto byte_level = BpeTokenizer::load(data_dir() / "tiny_byte_level");
  EXPECT_EQ(byte_level->eos_id(), byte_level->token_to_id("<|end|>"));
  EXPECT_EQ(byte_level->pad_id(), byte_level->token_to_id("<|pad|>"));
  EXPECT_EQ(byte_level->bos_id(), std::nullopt);
  EXPECT_EQ(byte_level->model_max_length(), std::nullopt);  // 1e30: unbounded
  EXPECT_EQ(byte_level->chat_template(), "{% for m in messages %}{{ m.content }}<|end|>{% endfor %}");

  const auto sentencepiece = BpeTokenizer::load(data_dir() / "tiny_sentencepiece");
  EXPECT_EQ(sentencepiece->bos_id(), 1);
  EXPECT_EQ(sentencepiece->eos_id(), 2);
  EXPECT_EQ(sentencepiece->pad_id(), std::nullopt);
  EXPECT_EQ(sentencepiece->model_max_length(), 4096);
  // The byte tokens <0x00>..<0xFF> (but <0xF0>) sit after the three special tokens; the vocabulary has no gap.
  EXPECT_EQ(sentencepiece->token_to_id("<0x41>"), 3 + 0x41);
  EXPECT_EQ(sentencepiece->token_to_id("<0xF0>"), std::nullopt);

  const auto metaspace = BpeTokenizer::load(data_dir() / "tiny_metaspace");  // no tokenizer_config.json
  EXPECT_EQ(metaspace->eos_id(), std::nullopt);
  EXPECT_EQ(metaspace->model_max_length(), std::nullopt);
  EXPECT_EQ(metaspace->chat_template(), "");
}

TEST(BpeTokenizerTest, SaveWritesTheFilesAsLoaded) {
  TempDir temp;
  for (const std::string fixture : {"tiny_byte_level", "tiny_metaspace"}) {
    const auto tokenizer = BpeTokenizer::load(data_dir() / fixture);
    const fs::path out = temp.path() / fixture;
    tokenizer->save(out);
    EXPECT_EQ(read_file(out / "tokenizer.json"), read_file(data_dir() / fixture / "tokenizer.json"));
    if (fs::exists(data_dir() / fixture / "tokenizer_config.json")) {
      EXPECT_EQ(read_file(out / "tokenizer_config.json"), read_file(data_dir() / fixture / "tokenizer_config.json"));
    } else {
      EXPECT_EQ(Json::parse(read_file(out / "tokenizer_config.json"))["tokenizer_class"], "PreTrainedTokenizerFast");
    }
    const auto reloaded = BpeTokenizer::load(out);
    EXPECT_EQ(reloaded->encode("Hello, world! 2024"), tokenizer->encode("Hello, world! 2024"));
  }
}

TEST(BpeTokenizerTest, ChatTemplateJinjaFileTakesThePlaceOfTheConfigs) {
  TempDir temp;
  const fs::path dir = temp.path() / "with_jinja";
  BpeTokenizer::load(data_dir() / "tiny_byte_level")->save(dir);
  std::ofstream(dir / "chat_template.jinja") << "{{ messages }}";
  const auto tokenizer = BpeTokenizer::load(dir);
  EXPECT_EQ(tokenizer->chat_template(), "{{ messages }}");
  const fs::path copy = temp.path() / "copy";
  tokenizer->save(copy);
  EXPECT_EQ(read_file(copy / "chat_template.jinja"), "{{ messages }}");
}

// --- Hand-computable models -------------------------------------------------------------------------------------

// A tokenizer.json around a small BPE model; `extra` is merged into the top level, `model_extra` into "model".
std::string tiny_json(const Json& vocab, const Json& merges, const Json& extra = Json::object(),
                      const Json& model_extra = Json::object()) {
  Json model = {{"type", "BPE"}, {"dropout", nullptr}, {"vocab", vocab}, {"merges", merges}};
  model.update(model_extra);
  Json root = {{"version", "1.0"},
               {"added_tokens", Json::array()},
               {"normalizer", nullptr},
               {"pre_tokenizer", nullptr},
               {"post_processor", nullptr},
               {"decoder", nullptr},
               {"model", model}};
  root.update(extra);
  return root.dump();
}

std::shared_ptr<const BpeTokenizer> from_json(const std::string& json, std::optional<std::string> config = {}) {
  return BpeTokenizer::from_texts(json, std::move(config), "/virtual/tiny");
}

TEST(BpeTokenizerTest, MergesLowestRankFirstThenLeftmost) {
  // a=0 b=1 ab=2 aa=3 aab=4; merges by rank: (a a), (a b), (aa b).
  const Json vocab = {{"a", 0}, {"b", 1}, {"ab", 2}, {"aa", 3}, {"aab", 4}};
  const auto tokenizer = from_json(tiny_json(vocab, {"a a", "a b", "aa b"}));
  // "aab": (a a) has the lowest rank, then (aa b).
  EXPECT_EQ(tokenizer->encode("aab"), (std::vector<std::int64_t>{4}));
  // "aaa": the leftmost (a a) merges first, leaving "aa a".
  EXPECT_EQ(tokenizer->encode("aaa"), (std::vector<std::int64_t>{3, 0}));
  // "abab": (a b) twice; no merge joins "ab ab".
  EXPECT_EQ(tokenizer->encode("abab"), (std::vector<std::int64_t>{2, 2}));
  // Without a decoder the library joins tokens with spaces.
  EXPECT_EQ(tokenizer->decode(std::vector<std::int64_t>{2, 0}), "ab a");
}

TEST(BpeTokenizerTest, IgnoreMergesEmitsWholeVocabularyWords) {
  // "abc" is in the vocabulary but no merge chain reaches it: only ignore_merges gives it whole.
  const Json vocab = {{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"abc", 4}};
  EXPECT_EQ(from_json(tiny_json(vocab, {"a b"}))->encode("abc"), (std::vector<std::int64_t>{3, 2}));
  EXPECT_EQ(from_json(tiny_json(vocab, {"a b"}, Json::object(), {{"ignore_merges", true}}))->encode("abc"),
            (std::vector<std::int64_t>{4}));
}

TEST(BpeTokenizerTest, UnknownCharactersFuseOrNotOrVanish) {
  const Json vocab = {{"<unk>", 0}, {"a", 1}};
  EXPECT_EQ(from_json(tiny_json(vocab, Json::array(), Json::object(), {{"unk_token", "<unk>"}}))->encode("xya"),
            (std::vector<std::int64_t>{0, 0, 1}));
  EXPECT_EQ(from_json(tiny_json(vocab, Json::array(), Json::object(), {{"unk_token", "<unk>"}, {"fuse_unk", true}}))
                ->encode("xya"),
            (std::vector<std::int64_t>{0, 1}));
  // Without an unk token the library drops unknown characters.
  EXPECT_EQ(from_json(tiny_json(vocab, Json::array()))->encode("xya"), (std::vector<std::int64_t>{1}));
  // An unk token missing from the vocabulary fails when it is needed, as in the library.
  const auto missing = from_json(tiny_json(vocab, Json::array(), Json::object(), {{"unk_token", "<nope>"}}));
  EXPECT_EQ(missing->encode("a"), (std::vector<std::int64_t>{1}));
  EXPECT_THROW(missing->encode("x"), TokenizerError);
}

TEST(BpeTokenizerTest, ByteFallbackSpellsUnknownCharactersAsBytes) {
  Json vocab = {{"<unk>", 0}, {"a", 1}};
  for (int byte = 0; byte < 256; ++byte) vocab[fmt::format("<0x{:02X}>", byte)] = 2 + byte;
  const Json decoder = {{"type", "Sequence"}, {"decoders", {{{"type", "ByteFallback"}}, {{"type", "Fuse"}}}}};
  const auto tokenizer = from_json(
      tiny_json(vocab, Json::array(), {{"decoder", decoder}}, {{"unk_token", "<unk>"}, {"byte_fallback", true}}));
  // "é" is C3 A9.
  EXPECT_EQ(tokenizer->encode("aé"), (std::vector<std::int64_t>{1, 2 + 0xC3, 2 + 0xA9}));
  EXPECT_EQ(tokenizer->decode(tokenizer->encode("aé")), "aé");
  // A lone lead byte decodes to one U+FFFD per byte (the library's ByteFallback decoder).
  EXPECT_EQ(tokenizer->decode(std::vector<std::int64_t>{2 + 0xC3, 1}),
            "\xEF\xBF\xBD"
            "a");
}

TEST(BpeTokenizerTest, SplitBehaviorsCutAsTheLibraryDoes) {
  const Json vocab = {{"a", 0}, {"b", 1}, {"-", 2}};
  const auto with_split = [&](const std::string& behavior, bool invert) {
    const Json split = {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", invert}};
    // Every pre-token becomes one unk-free id list; tokens are joined by spaces in decode, showing the pieces.
    const auto tokenizer = from_json(tiny_json(vocab, Json::array(), {{"pre_tokenizer", split}}));
    return tokenizer->encode("a-b--a");
  };
  // Without merges each character is one token whatever the pieces; Removed drops the delimiters.
  EXPECT_EQ(with_split("Removed", false), (std::vector<std::int64_t>{0, 1, 0}));
  EXPECT_EQ(with_split("Isolated", false), (std::vector<std::int64_t>{0, 2, 1, 2, 2, 0}));
  EXPECT_EQ(with_split("Removed", true), (std::vector<std::int64_t>{2, 2, 2}));
}

TEST(BpeTokenizerTest, TranslatesOnigurumaRegexes) {
  std::vector<UnicodeRegex::Match> matches;
  const auto count = [&](std::string_view pattern, std::string_view text) {
    matches.clear();
    UnicodeRegex::oniguruma(pattern).find_all(text, matches);
    return matches.size();
  };
  // \s is White_Space: U+0085 in, U+180E out (PCRE2 has it the other way round for U+180E).
  EXPECT_EQ(count(R"(\s)", "\xC2\x85"), 1u);
  EXPECT_EQ(count(R"(\s)", "\xE1\xA0\x8E"), 0u);
  // Ruby's \h is a hex digit; \uHHHH a code point.
  EXPECT_EQ(count(R"(\h+)", "xyz0aF"), 1u);
  EXPECT_EQ(count(R"(\u4e2d)", "\xE4\xB8\xAD"), 1u);
  // U+31350 (CJK Extension H, Unicode 15) is a letter for Oniguruma though not in PCRE2 10.42's tables.
  EXPECT_EQ(count(R"(\p{L})", "\xF0\xB1\x8D\x90"), 1u);
  EXPECT_EQ(count(R"([^\p{L}])", "\xF0\xB1\x8D\x90"), 0u);
  // Case-insensitive contractions match the long s (U+017F) as Oniguruma does.
  EXPECT_EQ(count(R"((?i:'s))", "'\xC5\xBF"), 1u);
  // An empty match right after the previous match is skipped: (0,0), (1,3), (4,4), as Oniguruma's find_iter.
  EXPECT_EQ(count("a*", "baac"), 3u);
  EXPECT_THROW(UnicodeRegex::oniguruma(R"(\w+)"), std::invalid_argument);
  EXPECT_THROW(UnicodeRegex::oniguruma(R"([a-z&&[^aeiou]])"), std::invalid_argument);
  EXPECT_THROW(UnicodeRegex::oniguruma("(unclosed"), std::invalid_argument);
}

// Llama 3's pattern (no fixture here uses it): the pieces the `tokenizers` package gives, including a CJK
// Extension H letter (U+31350) and the long s that (?i:'s) must not take when a letter follows.
TEST(BpeTokenizerTest, SplitsWithTheLlamaThreePatternAsOniguruma) {
  const std::string pattern =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  const std::string text = "I'M sure we'LL see 1234567 cats\u2014\u017ft\u2019s!!\r\n\r\n  \u00a0\tend\U00031350x  ";
  const std::vector<std::string> expected = {
      "I",   "'M", " sure", " we",           "'LL",     " see",       " ",        "123",
      "456", "7",  " cats", "\u2014\u017ft", "\u2019s", "!!\r\n\r\n", "  \u00a0", "\tend\U00031350x",
      "  "};
  std::vector<UnicodeRegex::Match> matches;
  UnicodeRegex::oniguruma(pattern).find_all(text, matches);
  std::vector<std::string> pieces;
  std::size_t previous = 0;
  for (const UnicodeRegex::Match& match : matches) {
    if (previous < match.start) pieces.push_back(text.substr(previous, match.start - previous));
    pieces.push_back(text.substr(match.start, match.end - match.start));
    previous = match.end;
  }
  if (previous < text.size()) pieces.push_back(text.substr(previous));
  EXPECT_EQ(pieces, expected);
}

// --- Errors ------------------------------------------------------------------------------------------------------

// The TokenizerError message of loading `json` (and `config`), or "" when it loads.
std::string load_error(const std::string& json, std::optional<std::string> config = {}) {
  try {
    from_json(json, std::move(config));
  } catch (const TokenizerError& e) {
    return e.what();
  }
  return "";
}

const Json kVocab = {{"a", 0}, {"b", 1}, {"ab", 2}};

TEST(BpeTokenizerTest, RejectsUnsupportedComponentsNamingThem) {
  const Json bert = {{"type", "Sequence"}, {"normalizers", {{{"type", "BertNormalizer"}}}}};
  const std::string normalizer_error = load_error(tiny_json(kVocab, {"a b"}, {{"normalizer", bert}}));
  EXPECT_NE(normalizer_error.find("/virtual/tiny/tokenizer.json: normalizer.normalizers[0]: type 'BertNormalizer' "
                                  "is not supported; supported: NFC, NFD, NFKC, NFKD"),
            std::string::npos)
      << normalizer_error;
  EXPECT_NE(load_error(tiny_json(kVocab, {"a b"}, {{"pre_tokenizer", {{"type", "BertPreTokenizer"}}}}))
                .find("pre_tokenizer: type 'BertPreTokenizer' is not supported; supported: Split, ByteLevel"),
            std::string::npos);
  EXPECT_NE(load_error(tiny_json(kVocab, {"a b"}, {{"decoder", {{"type", "WordPiece"}}}}))
                .find("decoder: type 'WordPiece' is not supported"),
            std::string::npos);
  EXPECT_NE(load_error(tiny_json(kVocab, {"a b"}, Json::object(), {{"type", "WordPiece"}}))
                .find("model: type 'WordPiece' is not supported; supported: BPE"),
            std::string::npos);
  EXPECT_NE(load_error(tiny_json(kVocab, {"a b"}, Json::object(), {{"dropout", 0.1}})).find("model.dropout: is 0.1"),
            std::string::npos);
  const Json word_regex = {{"type", "Split"}, {"pattern", {{"Regex", "\\w+"}}}, {"behavior", "Isolated"}};
  EXPECT_NE(load_error(tiny_json(kVocab, {"a b"}, {{"pre_tokenizer", word_regex}})).find("pre_tokenizer.pattern:"),
            std::string::npos);
  const Json bad_behavior = {{"type", "Split"}, {"pattern", {{"String", "x"}}}, {"behavior", "Sideways"}};
  EXPECT_NE(load_error(tiny_json(kVocab, {"a b"}, {{"pre_tokenizer", bad_behavior}}))
                .find("'Sideways' is not a split behavior"),
            std::string::npos);
}

TEST(BpeTokenizerTest, RejectsMalformedFilesSayingWhatIsWrong) {
  EXPECT_NE(load_error("{\"model\": ").find("/virtual/tiny/tokenizer.json: is not valid JSON"), std::string::npos);
  EXPECT_NE(load_error("[1, 2]").find("is a JSON array, not an object"), std::string::npos);
  EXPECT_NE(load_error("{\"version\": \"1.0\"}").find("has no 'model'"), std::string::npos);
  EXPECT_NE(load_error(tiny_json({{"a", 0}, {"b", 0}}, Json::array())).find("model.vocab: id 0 is given to both"),
            std::string::npos);
  EXPECT_NE(load_error(tiny_json({{"a", -4}}, Json::array())).find("model.vocab: 'a' has id -4"), std::string::npos);
  EXPECT_NE(load_error(tiny_json({{"a", "zero"}}, Json::array())).find("model.vocab: 'a' has a non-integer id"),
            std::string::npos);
  EXPECT_NE(load_error(tiny_json(kVocab, {"a c"})).find("merge 0 ('a' 'c'): right token 'c' is not in the vocabulary"),
            std::string::npos);
  EXPECT_NE(load_error(tiny_json(kVocab, {"b a"})).find("merged token 'ba' is not in the vocabulary"),
            std::string::npos);
  EXPECT_NE(load_error(tiny_json(kVocab, {"a b c"})).find("not \"left right\" (one space)"), std::string::npos);
  EXPECT_NE(load_error(tiny_json(kVocab, Json::array({Json::array({"a"})}))).find("entry 0 has 1 strings, not 2"),
            std::string::npos);
  const Json far_added = {{{"id", 10}, {"content", "<x>"}, {"special", true}, {"normalized", false}}};
  EXPECT_NE(load_error(tiny_json(kVocab, {"a b"}, {{"added_tokens", far_added}}))
                .find("added_tokens[0]: '<x>' has id 10, but the `tokenizers` library gives it id 3"),
            std::string::npos);
  const Json moved_added = {{{"id", 3}, {"content", "ab"}, {"special", true}}};
  EXPECT_NE(load_error(tiny_json(kVocab, {"a b"}, {{"added_tokens", moved_added}})).find("its id in model.vocab"),
            std::string::npos);
  const std::string good = tiny_json(kVocab, {"a b"});
  EXPECT_NE(load_error(good, "{\"eos_token\": \"</s>\"}")
                .find("/virtual/tiny/tokenizer_config.json: eos_token '</s>' is not in the vocabulary"),
            std::string::npos);
  EXPECT_NE(load_error(good, "{\"eos_token\": 5}").find("tokenizer_config.json: eos_token: is 5, not a string"),
            std::string::npos);
  EXPECT_NE(load_error(good, "not json").find("tokenizer_config.json: is not valid JSON"), std::string::npos);
  EXPECT_NE(load_error(good, "{\"model_max_length\": 0}").find("model_max_length: is 0"), std::string::npos);
  EXPECT_EQ(load_error(good, "{\"eos_token\": {\"content\": \"ab\"}, \"extra\": [1]}"), "");
}

TEST(BpeTokenizerTest, MissingFilesNameThePath) {
  TempDir temp;
  try {
    BpeTokenizer::load(temp.path() / "nowhere");
    FAIL() << "loaded a missing folder";
  } catch (const TokenizerError& e) {
    EXPECT_NE(std::string(e.what()).find("nowhere/tokenizer.json: cannot be opened"), std::string::npos) << e.what();
  }
}

// --- Parity with the `tokenizers` package ------------------------------------------------------------------------

class TokenizersParityTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizersParityTest, AgreesLineByLineOnTheCorpus) {
  if (grpo::testing::reference_python().empty()) {
    GTEST_SKIP() << "GRPO_PYTHON is not set or missing: no Python with the `tokenizers` package to compare with";
  }
  if (grpo::testing::run_python("-c", {"import tokenizers"}).exit_code != 0) {
    GTEST_SKIP() << grpo::testing::reference_python()
                 << " cannot import the `tokenizers` package (pip install tokenizers)";
  }
  const std::string& name = GetParam();
  const bool shared = !name.starts_with("tiny_");
  if (shared) SKIP_WITHOUT_SHARED_FIXTURES();
  const fs::path dir = shared ? shared_tokenizers() / name : data_dir() / name;
  const auto tokenizer = shared ? shared_fixture(name) : BpeTokenizer::load(dir);

  TempDir temp;
  const fs::path corpus = data_dir() / "tokenizer_corpus.jsonl";
  const fs::path reference = temp.path() / "reference.jsonl";
  const grpo::testing::PythonRun run =
      grpo::testing::run_python(fs::path(GRPO_SOURCE_DIR) / "scripts" / "tokenizer_reference.py",
                                {dir.string(), corpus.string(), reference.string()});
  ASSERT_EQ(run.exit_code, 0) << "scripts/tokenizer_reference.py failed for " << dir;
  const std::vector<Json> texts = read_jsonl(corpus);
  const std::vector<Json> expected = read_jsonl(reference);
  ASSERT_EQ(texts.size(), expected.size());
  int mismatches = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const std::string text = texts[i]["text"];
    const std::vector<std::int64_t> ids = tokenizer->encode(text);
    const std::vector<std::int64_t> want = expected[i]["ids"];
    const bool same = ids == want && tokenizer->decode(ids) == expected[i]["decoded"].get<std::string>() &&
                      tokenizer->decode(ids, true) == expected[i]["decoded_skip"].get<std::string>();
    if (!same && mismatches++ == 0) {
      ADD_FAILURE() << name << ": first mismatch on corpus line " << i + 1 << ", text " << texts[i]["text"]
                    << "\n  ours:       " << ids_text(ids) << "\n  tokenizers: " << ids_text(want)
                    << "\n  our decode:        " << Json(tokenizer->decode(ids)).dump()
                    << "\n  tokenizers decode: " << expected[i]["decoded"].dump();
    }
  }
  EXPECT_EQ(mismatches, 0) << name << ": " << mismatches << " of " << texts.size() << " lines differ";
  std::cout << fmt::format("[ parity   ] {}: {} of {} lines identical\n", name, texts.size() - mismatches,
                           texts.size());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TokenizersParityTest,
                         ::testing::Values("qwen3", "deepseek_v3", "tiny_byte_level", "tiny_sentencepiece",
                                           "tiny_metaspace"));

}  // namespace
}  // namespace grpo::policy
