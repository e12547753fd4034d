// Prompt templates: the R1-Zero text verbatim, and "chat" resolved from the checkpoint's chat_template (ChatML,
// Llama 3, DeepSeek-R1) with the format's end-of-turn token added to the stop ids; checked on the real Qwen3 and
// DeepSeek-V3 tokenizer files where the shared fixtures are present.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "policy/prompt_template.h"
#include "policy/tokenizer.h"

namespace grpo::policy {
namespace {
namespace fs = std::filesystem;

// Only what resolve_prompt_template reads: the chat template and token lookups.
class ChatTemplateOnly final : public Tokenizer {
 public:
  ChatTemplateOnly(std::string chat_template, std::map<std::string, std::int64_t> tokens)
      : chat_template_(std::move(chat_template)), tokens_(std::move(tokens)) {}
  std::vector<std::int64_t> encode(std::string_view) const override { return {}; }
  std::string decode(std::span<const std::int64_t>, bool) const override { return {}; }
  std::int64_t vocab_size() const override { return 0; }
  std::optional<std::int64_t> token_to_id(std::string_view token) const override {
    const auto it = tokens_.find(std::string(token));
    return it == tokens_.end() ? std::nullopt : std::optional<std::int64_t>(it->second);
  }
  std::string id_to_token(std::int64_t) const override { return {}; }
  bool is_special(std::int64_t) const override { return false; }
  std::optional<std::int64_t> eos_id() const override { return std::nullopt; }
  std::optional<std::int64_t> pad_id() const override { return std::nullopt; }
  std::optional<std::int64_t> model_max_length() const override { return std::nullopt; }
  const std::string& chat_template() const override { return chat_template_; }
  void save(const fs::path&) const override {}

 private:
  std::string chat_template_;
  std::map<std::string, std::int64_t> tokens_;
};

TEST(PromptTemplate, R1ZeroIsTheVerbatimPaperText) {
  EXPECT_EQ(prompt_template("r1_zero").apply("2+2"),
            "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The assistant "
            "first thinks about the reasoning process in the mind and then provides the user with the answer. The reasoning "
            "process and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., "
            "<think> reasoning process here </think> <answer> answer here </answer>. User: 2+2. Assistant:");
  EXPECT_EQ(prompt_template("r1_zero_compact").apply("2+2"), "User: 2+2\nAssistant:");
  EXPECT_THROW(prompt_template("r2"), std::invalid_argument);
}

TEST(PromptTemplate, ChatIsResolvedFromTheCheckpointFormat) {
  const ChatTemplateOnly chatml("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}",
                                {{"<|im_end|>", 151645}});
  const auto qwen = resolve_prompt_template("chat", chatml);
  EXPECT_EQ(qwen.name, "qwen_chat");
  const auto text = qwen.apply("What is 6*7?");
  EXPECT_TRUE(text.starts_with("<|im_start|>system\nA conversation between User and Assistant."));
  EXPECT_TRUE(text.ends_with("<|im_start|>user\nWhat is 6*7?<|im_end|>\n<|im_start|>assistant\n"));
  std::vector<std::int64_t> stops = {151643};
  add_template_stop_ids(qwen, chatml, stops);
  add_template_stop_ids(qwen, chatml, stops);  // no duplicates
  EXPECT_EQ(stops, (std::vector<std::int64_t>{151643, 151645}));

  EXPECT_EQ(resolve_prompt_template("chat", ChatTemplateOnly("<|start_header_id|>{{ role }}<|end_header_id|>", {})).name, "llama3_chat");
  EXPECT_EQ(resolve_prompt_template("chat", ChatTemplateOnly("{{'<｜User｜>' + content}}", {})).name, "deepseek_r1_chat");
  EXPECT_EQ(resolve_prompt_template("r1_zero", ChatTemplateOnly("", {})).name, "r1_zero");
  EXPECT_THROW(resolve_prompt_template("chat", ChatTemplateOnly("", {})), std::invalid_argument);
  EXPECT_THROW(resolve_prompt_template("chat", ChatTemplateOnly("[INST] {{ content }} [/INST]", {})), std::invalid_argument);
}

TEST(PromptTemplate, RealCheckpointTokenizers) {
  const fs::path fixtures = fs::path(GRPO_SHARED_DIR) / "fixtures/tokenizers";
  if (!fs::exists(fixtures)) GTEST_SKIP() << "shared tokenizer fixtures not found at " << fixtures << " (they live beside the checkout in CI)";
  const auto qwen = load_tokenizer(fixtures / "qwen3");
  const auto resolved = resolve_prompt_template("chat", *qwen);
  EXPECT_EQ(resolved.name, "qwen_chat");
  std::vector<std::int64_t> stops;
  add_template_stop_ids(resolved, *qwen, stops);
  EXPECT_EQ(stops, (std::vector<std::int64_t>{151645}));
  // The role markers are single added tokens, as in the model's training data.
  const auto ids = qwen->encode(resolved.apply("2+2"));
  EXPECT_EQ(ids.front(), 151644);  // <|im_start|>
  const auto deepseek = load_tokenizer(fixtures / "deepseek_v3");
  EXPECT_EQ(resolve_prompt_template("chat", *deepseek).name, "deepseek_r1_chat");
  // DeepSeek's tokenizer_config.json says add_bos_token: prompts start with <｜begin▁of▁sentence｜> (id 0), as
  // transformers encodes them; Qwen adds none.
  EXPECT_EQ(deepseek->prompt_bos_id(), std::optional<std::int64_t>(0));
  EXPECT_FALSE(qwen->prompt_bos_id().has_value());
}

}  // namespace
}  // namespace grpo::policy
