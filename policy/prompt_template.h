// Prompt templates: how a task's question becomes the text the policy continues. Registered by name, chosen in the
// config (task.prompt_template).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace grpo::policy {

struct PromptTemplate {
  std::string name;
  std::string text;  // contains "{prompt}" exactly once
  std::string apply(std::string_view prompt) const;
};

// Throws std::invalid_argument listing the registered names.
const PromptTemplate& prompt_template(std::string_view name);
std::vector<std::string> prompt_template_names();

}  // namespace grpo::policy
