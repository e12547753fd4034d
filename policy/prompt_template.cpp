// The R1-Zero template (verbatim from the DeepSeek-R1 paper, as reused by its reproductions), a compact form of the
// same contract for the embedded character-level policy, and the same instruction in the chat formats of the
// checkpoint families we load.
#include "policy/prompt_template.h"

#include <algorithm>
#include <array>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace grpo::policy {
namespace {

#define GRPO_R1_ZERO_INSTRUCTION                                                                                           \
  "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The assistant "    \
  "first thinks about the reasoning process in the mind and then provides the user with the answer. The reasoning "    \
  "process and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., "          \
  "<think> reasoning process here </think> <answer> answer here </answer>."

constexpr std::string_view kChat = "chat";

const std::array<PromptTemplate, 5>& registry() {
  static const std::array<PromptTemplate, 5> templates = {{
      {"r1_zero", GRPO_R1_ZERO_INSTRUCTION " User: {prompt}. Assistant:", {}},
      {"r1_zero_compact", "User: {prompt}\nAssistant:", {}},
      // Qwen2/2.5/3 and other ChatML models.
      {"qwen_chat",
       "<|im_start|>system\n" GRPO_R1_ZERO_INSTRUCTION "<|im_end|>\n<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n",
       {"<|im_end|>"}},
      {"llama3_chat",
       "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n" GRPO_R1_ZERO_INSTRUCTION
       "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n{prompt}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
       {"<|eot_id|>"}},
      // DeepSeek-R1 and its distills: the system text goes right after BOS, no role markers around it.
      {"deepseek_r1_chat", "<｜begin▁of▁sentence｜>" GRPO_R1_ZERO_INSTRUCTION "<｜User｜>{prompt}<｜Assistant｜>", {"<｜end▁of▁sentence｜>"}},
  }};
  return templates;
}

}  // namespace

std::string PromptTemplate::apply(std::string_view prompt) const {
  const auto at = text.find("{prompt}");
  std::string out = text.substr(0, at);
  out.append(prompt);
  out.append(text.substr(at + 8));
  return out;
}

const PromptTemplate& prompt_template(std::string_view name) {
  for (const auto& entry : registry()) {
    if (entry.name == name) return entry;
  }
  if (name == kChat) throw std::invalid_argument("prompt template 'chat' depends on the checkpoint: use resolve_prompt_template");
  throw std::invalid_argument(fmt::format("unknown prompt template '{}'; valid: {}", name, fmt::join(prompt_template_names(), ", ")));
}

std::vector<std::string> prompt_template_names() {
  std::vector<std::string> names;
  for (const auto& entry : registry()) names.push_back(entry.name);
  names.emplace_back(kChat);
  return names;
}

PromptTemplate resolve_prompt_template(std::string_view name, const Tokenizer& tokenizer) {
  if (name != kChat) return prompt_template(name);
  const auto& chat = tokenizer.chat_template();
  if (chat.empty()) {
    throw std::invalid_argument("prompt template 'chat': the checkpoint's tokenizer_config.json has no chat_template; choose one of " +
                                fmt::format("{}", fmt::join(prompt_template_names(), ", ")));
  }
  // Recognised by the markers each format writes; the Jinja itself is not executed.
  if (chat.find("<|im_start|>") != std::string::npos) return prompt_template("qwen_chat");
  if (chat.find("<|start_header_id|>") != std::string::npos) return prompt_template("llama3_chat");
  if (chat.find("<｜User｜>") != std::string::npos) return prompt_template("deepseek_r1_chat");
  throw std::invalid_argument("prompt template 'chat': the checkpoint's chat_template is not ChatML, Llama 3 or DeepSeek-R1; "
                              "choose a template by name");
}

void add_template_stop_ids(const PromptTemplate& prompt_template, const Tokenizer& tokenizer, std::vector<std::int64_t>& stop_ids) {
  for (const auto& token : prompt_template.stop_tokens) {
    const auto id = tokenizer.token_to_id(token);
    if (id && std::find(stop_ids.begin(), stop_ids.end(), *id) == stop_ids.end()) stop_ids.push_back(*id);
  }
}

}  // namespace grpo::policy
