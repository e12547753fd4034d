// The R1-Zero template (verbatim from the DeepSeek-R1 paper, as reused by its reproductions) and a compact form of
// the same contract for the embedded character-level policy, whose context is a few hundred characters.
#include "policy/prompt_template.h"

#include <array>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace grpo::policy {
namespace {

const std::array<PromptTemplate, 2>& registry() {
  static const std::array<PromptTemplate, 2> templates = {{
      {"r1_zero",
       "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The assistant "
       "first thinks about the reasoning process in the mind and then provides the user with the answer. The reasoning "
       "process and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., "
       "<think> reasoning process here </think> <answer> answer here </answer>. User: {prompt}. Assistant:"},
      {"r1_zero_compact", "User: {prompt}\nAssistant:"},
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
  throw std::invalid_argument(fmt::format("unknown prompt template '{}'; valid: {}", name, fmt::join(prompt_template_names(), ", ")));
}

std::vector<std::string> prompt_template_names() {
  std::vector<std::string> names;
  for (const auto& entry : registry()) names.push_back(entry.name);
  return names;
}

}  // namespace grpo::policy
