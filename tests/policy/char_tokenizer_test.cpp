// Tests of policy/char_tokenizer: hand-computed ids, round trips, the tokenizer.json reader's refusals, and
// agreement with the Hugging Face `tokenizers` package on the saved files.
#include "policy/char_tokenizer.h"

#include <sys/wait.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace grpo::policy {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using Ids = std::vector<std::int64_t>;

// Ids of the embedded vocabulary: printable ASCII starts at 7 after the seven added tokens.
constexpr std::int64_t kThink = 3;
constexpr std::int64_t kEndThink = 4;
constexpr std::int64_t kAnswer = 5;
constexpr std::int64_t kEndAnswer = 6;
constexpr std::int64_t kNewline = 102;
constexpr std::int64_t id_of_char(char c) { return 7 + (c - 0x20); }

// A fresh directory per test, removed afterwards.
class CharTokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device seed;
    dir_ = fs::temp_directory_path() / fmt::format("grpo_char_tokenizer_test_{}", seed());
    fs::create_directories(dir_);
  }
  // Files only, so no fs::remove_all: LibTorch wheels export a broken copy of it that can shadow libstdc++'s
  // (pytorch/pytorch#133437) and crash the test binary.
  void TearDown() override {
    for (const fs::directory_entry& entry : fs::directory_iterator(dir_)) fs::remove(entry.path());
    fs::remove(dir_);
  }

  // The embedded tokenizer's tokenizer.json, for tests that alter one component.
  Json embedded_json() {
    CharTokenizer::make_embedded().save(dir_);
    std::ifstream in(dir_ / "tokenizer.json");
    return Json::parse(in);
  }

  void write(const std::string& name, const Json& content) { std::ofstream(dir_ / name) << content.dump(2); }

  // Loads dir_ expecting a TokenizerError whose message contains `fragment` and the file name.
  void expect_load_error(std::string_view fragment, std::string_view file = "tokenizer.json") {
    try {
      CharTokenizer::load(dir_);
      ADD_FAILURE() << "load succeeded; expected an error containing: " << fragment;
    } catch (const TokenizerError& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(fragment), std::string::npos) << message;
      EXPECT_NE(message.find((dir_ / file).string()), std::string::npos)
          << "message does not name the file: " << message;
    }
  }

  fs::path dir_;
};

TEST_F(CharTokenizerTest, EmbeddedVocabularyLayout) {
  const CharTokenizer tokenizer = CharTokenizer::make_embedded();
  EXPECT_EQ(tokenizer.vocab_size(), 103);
  EXPECT_EQ(tokenizer.pad_id(), 0);
  EXPECT_EQ(tokenizer.eos_id(), 1);
  EXPECT_EQ(tokenizer.unk_id(), 2);
  const std::array<std::string, 7> added = {"<|pad|>",  "<|endoftext|>", "<unk>",    "<think>",
                                            "</think>", "<answer>",      "</answer>"};
  for (std::size_t id = 0; id < added.size(); ++id) {
    EXPECT_EQ(tokenizer.id_to_token(static_cast<std::int64_t>(id)), added[id]);
    EXPECT_EQ(tokenizer.token_to_id(added[id]), static_cast<std::int64_t>(id));
    EXPECT_EQ(tokenizer.is_special(static_cast<std::int64_t>(id)), id < 3) << added[id];
  }
  EXPECT_EQ(tokenizer.token_to_id(" "), 7);
  EXPECT_EQ(tokenizer.token_to_id("~"), 101);
  EXPECT_EQ(tokenizer.token_to_id("\n"), kNewline);
  EXPECT_EQ(tokenizer.token_to_id("\t"), std::nullopt);
  EXPECT_EQ(tokenizer.token_to_id("ab"), std::nullopt);
  EXPECT_FALSE(tokenizer.model_max_length().has_value());
}

TEST_F(CharTokenizerTest, HandComputedEncodings) {
  const CharTokenizer tokenizer = CharTokenizer::make_embedded();
  EXPECT_EQ(tokenizer.encode("<think>1+2=3</think>"), (Ids{kThink, id_of_char('1'), id_of_char('+'), id_of_char('2'),
                                                           id_of_char('='), id_of_char('3'), kEndThink}));
  EXPECT_EQ(tokenizer.encode("<think>1+2=3</think>"), (Ids{3, 24, 18, 25, 36, 26, 4}));
  EXPECT_EQ(tokenizer.encode("<answer>42</answer>\n"),
            (Ids{kAnswer, id_of_char('4'), id_of_char('2'), kEndAnswer, kNewline}));
  // A partial tag is plain characters; the tag after it still matches.
  EXPECT_EQ(tokenizer.encode("<thin<think>"),
            (Ids{id_of_char('<'), id_of_char('t'), id_of_char('h'), id_of_char('i'), id_of_char('n'), kThink}));
  EXPECT_EQ(tokenizer.encode("<<think>>"), (Ids{id_of_char('<'), kThink, id_of_char('>')}));
  // Special tokens written in the text are matched too, as `tokenizers` does with add_special_tokens=False.
  EXPECT_EQ(tokenizer.encode("a<|endoftext|>b"), (Ids{id_of_char('a'), 1, id_of_char('b')}));
  EXPECT_EQ(tokenizer.encode(" \n"), (Ids{7, kNewline}));
  EXPECT_TRUE(tokenizer.encode("").empty());
}

TEST_F(CharTokenizerTest, DecodeInvertsEncodeOnPrintableText) {
  const CharTokenizer tokenizer = CharTokenizer::make_embedded();
  std::string all;
  for (char c = 0x20; c <= 0x7E; ++c) all += c;
  all += '\n';
  EXPECT_EQ(tokenizer.decode(tokenizer.encode(all)), all);
  EXPECT_EQ(tokenizer.encode(all).size(), all.size());

  // Random texts over characters and tags, seeded for reproducibility.
  const std::array<std::string, 9> pieces = {"<think>", "</think>", "<answer>", "</answer>", "<", "/", ">", "\n", "a"};
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 200; ++trial) {
    std::string text;
    const int length = static_cast<int>(rng() % 40);
    for (int i = 0; i < length; ++i) {
      if (rng() % 3 == 0) {
        text += pieces[rng() % pieces.size()];
      } else {
        text += static_cast<char>(0x20 + rng() % 95);
      }
    }
    EXPECT_EQ(tokenizer.decode(tokenizer.encode(text)), text);
  }
}

TEST_F(CharTokenizerTest, UnknownCharactersBecomeUnk) {
  const CharTokenizer tokenizer = CharTokenizer::make_embedded();
  const std::int64_t unk = tokenizer.unk_id();
  EXPECT_EQ(tokenizer.encode("\xc3\xa9"), (Ids{unk}));  // é: one character
  EXPECT_EQ(tokenizer.encode("a\xc3\xa9\xe2\x82\xac"
                             "b"),
            (Ids{id_of_char('a'), unk, unk, id_of_char('b')}));  // é€
  EXPECT_EQ(tokenizer.encode("\xf0\x9f\x98\x80"), (Ids{unk}));   // one emoji
  EXPECT_EQ(tokenizer.encode("\t\r"), (Ids{unk, unk}));
  EXPECT_EQ(tokenizer.encode("\xff"
                             "a"),
            (Ids{unk, id_of_char('a')}));  // invalid UTF-8 byte
  EXPECT_EQ(tokenizer.decode(tokenizer.encode("x\xc3\xa9")), "x<unk>");
}

TEST_F(CharTokenizerTest, DecodeSkipsSpecialTokensOnRequest) {
  const CharTokenizer tokenizer = CharTokenizer::make_embedded();
  const Ids ids = {kThink, 1, 0, 2, id_of_char('!'), kEndThink, kNewline};
  EXPECT_EQ(tokenizer.decode(ids), "<think><|endoftext|><|pad|><unk>!</think>\n");
  EXPECT_EQ(tokenizer.decode(ids, /*skip_special_tokens=*/true), "<think>!</think>\n");
}

TEST_F(CharTokenizerTest, RejectsIdsOutOfRange) {
  const CharTokenizer tokenizer = CharTokenizer::make_embedded();
  EXPECT_THROW(tokenizer.decode(Ids{5, 103}), TokenizerError);
  EXPECT_THROW(tokenizer.decode(Ids{-1}), TokenizerError);
  try {
    tokenizer.id_to_token(500);
    ADD_FAILURE() << "id_to_token(500) succeeded";
  } catch (const TokenizerError& e) {
    EXPECT_STREQ(e.what(), "CharTokenizer: token id 500 is out of range [0, 103)");
  }
  EXPECT_FALSE(tokenizer.is_special(-3));
}

TEST_F(CharTokenizerTest, SaveLoadRoundTrip) {
  CharTokenizer original = CharTokenizer::make_embedded();
  original.set_model_max_length(256);
  original.save(dir_);
  const CharTokenizer loaded = CharTokenizer::load(dir_);
  ASSERT_EQ(loaded.vocab_size(), original.vocab_size());
  for (std::int64_t id = 0; id < original.vocab_size(); ++id) {
    EXPECT_EQ(loaded.id_to_token(id), original.id_to_token(id));
    EXPECT_EQ(loaded.is_special(id), original.is_special(id));
  }
  EXPECT_EQ(loaded.eos_id(), original.eos_id());
  EXPECT_EQ(loaded.pad_id(), original.pad_id());
  EXPECT_EQ(loaded.unk_id(), original.unk_id());
  EXPECT_EQ(loaded.model_max_length(), 256);
  const std::string text = "<think>7*6</think>\n<answer>42</answer>\xc3\xa9";
  EXPECT_EQ(loaded.encode(text), original.encode(text));

  std::ifstream in(dir_ / "tokenizer_config.json");
  const Json config = Json::parse(in);
  EXPECT_EQ(config["tokenizer_class"], "PreTrainedTokenizerFast");
  EXPECT_EQ(config["eos_token"], "<|endoftext|>");
  EXPECT_EQ(config["pad_token"], "<|pad|>");
  EXPECT_EQ(config["unk_token"], "<unk>");
  EXPECT_EQ(config["model_max_length"], 256);

  CharTokenizer::make_embedded().save(dir_);
  EXPECT_FALSE(CharTokenizer::load(dir_).model_max_length().has_value());
}

TEST_F(CharTokenizerTest, ReadsTokenNamesFromTokenizerConfig) {
  CharTokenizer::make_embedded().save(dir_);
  write("tokenizer_config.json", {{"eos_token", {{"content", "</answer>"}}}, {"pad_token", "<|endoftext|>"}});
  CharTokenizer tokenizer = CharTokenizer::load(dir_);
  EXPECT_EQ(tokenizer.eos_id(), kEndAnswer);
  EXPECT_EQ(tokenizer.pad_id(), 1);

  fs::remove(dir_ / "tokenizer_config.json");
  tokenizer = CharTokenizer::load(dir_);
  EXPECT_EQ(tokenizer.eos_id(), 1);
  EXPECT_EQ(tokenizer.pad_id(), 0);

  write("tokenizer_config.json", {{"eos_token", "<|eot|>"}});
  expect_load_error("eos_token '<|eot|>' is not in the vocabulary", "tokenizer_config.json");
  write("tokenizer_config.json", {{"pad_token", 7}});
  expect_load_error("pad_token is 7, not a token string", "tokenizer_config.json");
}

TEST_F(CharTokenizerTest, LoadsFuseUnkAndPerCharacterWordLevel) {
  Json config = embedded_json();
  config["model"]["fuse_unk"] = true;
  write("tokenizer.json", config);
  EXPECT_EQ(CharTokenizer::load(dir_).encode("a\xc3\xa9\xc3\xa9\tb<unk>\t"),
            (Ids{id_of_char('a'), 2, id_of_char('b'), 2, 2}));

  config = embedded_json();
  config["model"] = {{"type", "WordLevel"}, {"vocab", config["model"]["vocab"]}, {"unk_token", "<unk>"}};
  config["pre_tokenizer"] = {
      {"type", "Split"}, {"pattern", {{"Regex", "[\\s\\S]"}}}, {"behavior", "Isolated"}, {"invert", false}};
  write("tokenizer.json", config);
  const CharTokenizer tokenizer = CharTokenizer::load(dir_);
  EXPECT_EQ(tokenizer.encode("<think>1+2=3</think>"), (Ids{3, 24, 18, 25, 36, 26, 4}));
}

TEST_F(CharTokenizerTest, RejectsUnsupportedModels) {
  Json config = embedded_json();
  config["model"] = {{"type", "Unigram"}, {"unk_id", 0}, {"vocab", Json::array()}};
  write("tokenizer.json", config);
  expect_load_error("tokenizer.json: model type 'Unigram' is not supported by CharTokenizer");

  config = embedded_json();
  config["model"]["merges"] = {"a b", "ab c", "d e"};
  write("tokenizer.json", config);
  expect_load_error("model BPE has 3 merges; byte-level BPE tokenizers are loaded by the BPE tokenizer");

  config = embedded_json();
  config["model"]["byte_fallback"] = true;
  write("tokenizer.json", config);
  expect_load_error("model BPE byte_fallback is not supported by CharTokenizer");

  config = embedded_json();
  config["model"]["continuing_subword_prefix"] = "##";
  write("tokenizer.json", config);
  expect_load_error("model BPE continuing_subword_prefix \"##\" is not supported");

  config = embedded_json();
  config["model"]["unk_token"] = nullptr;
  write("tokenizer.json", config);
  expect_load_error("model BPE has no unk_token");

  config = embedded_json();
  config["model"]["unk_token"] = "[UNK]";
  write("tokenizer.json", config);
  expect_load_error("model unk_token '[UNK]' is not in the vocabulary");

  config = embedded_json();
  config["model"] = {{"type", "WordLevel"}, {"vocab", config["model"]["vocab"]}, {"unk_token", "<unk>"}};
  write("tokenizer.json", config);
  expect_load_error("model WordLevel looks up whole pre-tokenized words");
}

TEST_F(CharTokenizerTest, RejectsUnsupportedPipelineComponents) {
  Json config = embedded_json();
  config["normalizer"] = {{"type", "NFC"}};
  write("tokenizer.json", config);
  expect_load_error("normalizer 'NFC' is not supported by CharTokenizer");

  config = embedded_json();
  config["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}};
  write("tokenizer.json", config);
  expect_load_error("pre_tokenizer 'ByteLevel' is not supported by CharTokenizer");

  config = embedded_json();
  config["pre_tokenizer"] = {
      {"type", "Split"}, {"pattern", {{"Regex", "."}}}, {"behavior", "Isolated"}, {"invert", false}};
  write("tokenizer.json", config);
  expect_load_error("pre_tokenizer 'Split' is not supported by CharTokenizer");

  config = embedded_json();
  config["post_processor"] = {{"type", "TemplateProcessing"}};
  write("tokenizer.json", config);
  expect_load_error("post_processor 'TemplateProcessing' is not supported by CharTokenizer");

  config = embedded_json();
  config["decoder"] = {{"type", "ByteLevel"}};
  write("tokenizer.json", config);
  expect_load_error("decoder 'ByteLevel' is not supported by CharTokenizer");

  config = embedded_json();
  config["decoder"] = nullptr;
  write("tokenizer.json", config);
  expect_load_error("decoder is null");

  config = embedded_json();
  config["truncation"] = {{"max_length", 16}};
  write("tokenizer.json", config);
  expect_load_error("truncation '{\"max_length\":16}' is not supported by CharTokenizer");
}

TEST_F(CharTokenizerTest, RejectsMalformedVocabularies) {
  Json config = embedded_json();
  config["model"]["vocab"]["ab"] = 103;
  write("tokenizer.json", config);
  expect_load_error("model vocab entry 'ab' is neither a single character nor an added token");

  config = embedded_json();
  config["model"]["vocab"].erase("~");
  write("tokenizer.json", config);
  expect_load_error("no token has id 101 (ids must run from 0 to 102 without gaps)");

  config = embedded_json();
  config["model"]["vocab"]["~"] = 100;
  write("tokenizer.json", config);
  expect_load_error("id 100 is given to both");

  config = embedded_json();
  config["model"]["vocab"]["x"] = -4;
  write("tokenizer.json", config);
  expect_load_error("model vocab entry 'x' has id -4, not a non-negative integer");

  config = embedded_json();
  config["added_tokens"][3]["lstrip"] = true;
  write("tokenizer.json", config);
  expect_load_error("added token '<think>' sets lstrip, which CharTokenizer does not implement");

  config = embedded_json();
  config["added_tokens"][4]["special"] = "yes";
  write("tokenizer.json", config);
  expect_load_error("added token '</think>' field 'special' is \"yes\", not true or false");

  config = embedded_json();
  config["added_tokens"][5]["id"] = 9;
  write("tokenizer.json", config);
  expect_load_error("added token '<answer>' has id 9 but the model vocab gives it id 5");

  config = embedded_json();
  config["model"]["vocab"] = Json::array();
  write("tokenizer.json", config);
  expect_load_error("model BPE has no 'vocab' object");

  std::ofstream(dir_ / "tokenizer.json") << "{\"model\": ";
  expect_load_error("is not valid JSON");
  fs::remove(dir_ / "tokenizer.json");
  expect_load_error("cannot be opened for reading");
}

TEST_F(CharTokenizerTest, RejectsARealByteLevelTokenizer) {
#ifdef GRPO_SHARED_DIR
  const fs::path qwen = fs::path(GRPO_SHARED_DIR) / "fixtures" / "tokenizers" / "qwen3";
  if (!fs::exists(qwen / "tokenizer.json")) GTEST_SKIP() << "shared fixture " << qwen << " is absent";
  try {
    CharTokenizer::load(qwen);
    ADD_FAILURE() << "the Qwen3 byte-level BPE tokenizer loaded as a CharTokenizer";
  } catch (const TokenizerError& e) {
    EXPECT_NE(std::string(e.what()).find("merges; byte-level BPE tokenizers are loaded by"), std::string::npos)
        << e.what();
  }
#else
  GTEST_SKIP() << "GRPO_SHARED_DIR is not defined for this build";
#endif
}

// Runs `script` with GRPO_PYTHON and returns its standard output; the exit status goes to `status`.
std::string run_python(const fs::path& script, const std::vector<std::string>& args, int& status) {
  std::string command = fmt::format("'{}' '{}'", GRPO_PYTHON, script.string());
  for (const std::string& arg : args) command += fmt::format(" '{}'", arg);
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    status = -1;
    return {};
  }
  std::string output;
  std::array<char, 4096> chunk{};
  while (std::fgets(chunk.data(), static_cast<int>(chunk.size()), pipe) != nullptr) output += chunk.data();
  status = ::pclose(pipe);
  return output;
}

// Exit status 3 means the `tokenizers` package is missing, which skips the test rather than failing it.
constexpr std::string_view kHuggingFaceRunner = R"PY(
import json, sys
try:
    from tokenizers import Tokenizer
except ImportError as error:
    print(f"cannot import tokenizers: {error}")
    sys.exit(3)
tokenizer = Tokenizer.from_file(sys.argv[1])
cases = json.load(open(sys.argv[2], encoding="utf-8"))
encoded = [tokenizer.encode(text, add_special_tokens=False).ids for text in cases]
print(json.dumps({
    "ids": encoded,
    "decoded": [tokenizer.decode(ids, skip_special_tokens=False) for ids in encoded],
    "decoded_skip": [tokenizer.decode(ids, skip_special_tokens=True) for ids in encoded],
}))
)PY";

// ~20 texts over what the tokenizer meets: tags (whole, partial, nested), digits, punctuation, spaces, newlines,
// special tokens written as text, and characters outside the vocabulary.
const std::vector<std::string> kAgreementCases = {
    "<think>1+2=3</think>",
    "<think>7 * 6 = 42, so the answer is 42.</think>\n<answer>42</answer>",
    "",
    " ",
    "  two leading, two trailing  ",
    "line one\nline two\n\n\nend",
    "<thin<think>",
    "<<think>>",
    "</think></think><answer><answer>",
    "<think ></think >< answer>",
    "12 + 34 * (5 - 6) / 7 = ?",
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    "tab\tand \xc3\xa9 and \xe6\x97\xa5\xe6\x9c\xac and \xf0\x9f\x98\x80",
    "<|endoftext|>",
    "x<|pad|>y<unk>z<|endoftext|>",
    "Countdown: use 3, 7, 25 and 50 to make 100.",
    "\xc3\x80\xc3\x80\t\t\r\n",
    "</answer>trailing text after the answer",
    "<answer>-3.5e2</answer><|endoftext|><|pad|><|pad|>",
    "0123456789 9876543210",
};

// Encodes and decodes kAgreementCases with the `tokenizers` package on dir/tokenizer.json and with CharTokenizer
// loaded from dir, and expects identical results.
void expect_agreement_with_hugging_face(const fs::path& dir) {
  const fs::path python = GRPO_PYTHON;
  if (python.empty() || !fs::exists(python)) {
    GTEST_SKIP() << "no Python interpreter at GRPO_PYTHON='" << GRPO_PYTHON << "'";
  }
  std::ofstream(dir / "runner.py") << kHuggingFaceRunner;
  std::ofstream(dir / "cases.json") << Json(kAgreementCases).dump();
  int status = 0;
  const std::string output =
      run_python(dir / "runner.py", {(dir / "tokenizer.json").string(), (dir / "cases.json").string()}, status);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 3) GTEST_SKIP() << output;
  ASSERT_EQ(status, 0) << output;
  const Json expected = Json::parse(output);

  const CharTokenizer tokenizer = CharTokenizer::load(dir);
  for (std::size_t i = 0; i < kAgreementCases.size(); ++i) {
    const std::string& text = kAgreementCases[i];
    const Ids ids = tokenizer.encode(text);
    EXPECT_EQ(ids, expected["ids"][i].get<Ids>()) << "encoding " << Json(text).dump();
    EXPECT_EQ(tokenizer.decode(ids), expected["decoded"][i].get<std::string>()) << "decoding " << Json(text).dump();
    EXPECT_EQ(tokenizer.decode(ids, /*skip_special_tokens=*/true), expected["decoded_skip"][i].get<std::string>())
        << "decoding without specials " << Json(text).dump();
  }
}

TEST_F(CharTokenizerTest, AgreesWithHuggingFaceTokenizers) {
  CharTokenizer::make_embedded().save(dir_);
  expect_agreement_with_hugging_face(dir_);
}

TEST_F(CharTokenizerTest, AgreesWithHuggingFaceTokenizersOnLoadedVariants) {
  Json config = embedded_json();
  config["model"]["fuse_unk"] = true;
  // A normalized added token is split out after the non-normalized ones, as the library does.
  config["added_tokens"].push_back({{"id", 103},
                                    {"content", "</think>\n"},
                                    {"single_word", false},
                                    {"lstrip", false},
                                    {"rstrip", false},
                                    {"normalized", true},
                                    {"special", false}});
  config["model"]["vocab"]["</think>\n"] = 103;
  write("tokenizer.json", config);
  expect_agreement_with_hugging_face(dir_);

  config = embedded_json();
  config["model"] = {{"type", "WordLevel"}, {"vocab", config["model"]["vocab"]}, {"unk_token", "<unk>"}};
  for (const auto& [kind, pattern] :
       std::vector<std::pair<std::string, std::string>>{{"Regex", "[\\s\\S]"}, {"Regex", "(?m)."}, {"String", ""}}) {
    config["pre_tokenizer"] = {
        {"type", "Split"}, {"pattern", {{kind, pattern}}}, {"behavior", "Isolated"}, {"invert", false}};
    write("tokenizer.json", config);
    SCOPED_TRACE(kind + " " + pattern);
    expect_agreement_with_hugging_face(dir_);
  }
}

}  // namespace
}  // namespace grpo::policy

namespace grpo::policy {
namespace {

TEST_F(CharTokenizerTest, IdentityTemplateProcessingAsTransformersSavesItIsAccepted) {
  // transformers 5 adds this post-processor to every tokenizer it saves (a TRL-trained policy has it); it adds nothing.
  auto json = embedded_json();
  json["post_processor"] = Json::parse(R"({"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A", "type_id": 0}}],
      "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}], "special_tokens": {}})");
  write("tokenizer.json", json);
  const auto loaded = CharTokenizer::load(dir_);
  EXPECT_EQ(loaded.encode("2+3"), CharTokenizer::make_embedded().encode("2+3"));
  // One that adds a token is still refused.
  json["post_processor"]["single"] = Json::parse(R"([{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}])");
  write("tokenizer.json", json);
  expect_load_error("post_processor 'TemplateProcessing' is not supported by CharTokenizer");
}

}  // namespace
}  // namespace grpo::policy
