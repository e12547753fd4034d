// Prompt templates: how a task's question becomes the text the policy continues. Registered by name, chosen in the
// config (task.prompt_template). "chat" takes the format from the checkpoint's own chat template
// (tokenizer_config.json), so a Qwen, Llama 3 or DeepSeek-R1 checkpoint is prompted the way it was trained.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "policy/tokenizer.h"

namespace grpo::policy {

struct PromptTemplate {
  std::string name;
  std::string text;  // contains "{prompt}" exactly once
  // Tokens that end the assistant's turn in this format ("<|im_end|>"), added to the checkpoint's stop ids when
  // the tokenizer has them.
  std::vector<std::string> stop_tokens;
  std::string apply(std::string_view prompt) const;
};

// A registered template by name ("r1_zero", "r1_zero_compact", "qwen_chat", ...); "chat" is resolved by
// resolve_prompt_template. Throws std::invalid_argument listing the names.
const PromptTemplate& prompt_template(std::string_view name);
// Every name the config accepts, "chat" included.
std::vector<std::string> prompt_template_names();

// `name`, or for "chat" the registered template whose format the tokenizer's chat_template uses (ChatML for Qwen,
// Llama 3 headers, DeepSeek-R1's markers), with the R1-Zero instruction as the system turn. Throws
// std::invalid_argument when the checkpoint has no chat template or one of a format we do not know.
PromptTemplate resolve_prompt_template(std::string_view name, const Tokenizer& tokenizer);

// The ids of the template's stop tokens that the tokenizer knows, appended to `stop_ids` without duplicates.
void add_template_stop_ids(const PromptTemplate& prompt_template, const Tokenizer& tokenizer, std::vector<std::int64_t>& stop_ids);

}  // namespace grpo::policy
