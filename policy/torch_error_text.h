// The first line of an exception's message, without LibTorch's C++ backtrace: c10::Error (what c10d and most of
// LibTorch throw) carries one that would bury the reason under a page of frames in a user-facing message.
#pragma once

#include <exception>
#include <string>

#include <c10/util/Exception.h>

namespace grpo::policy {

inline std::string short_error(const std::exception& error) {
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&error)) {
    std::string text = c10_error->what_without_backtrace();
    if (const auto cut = text.find('\n'); cut != std::string::npos) text.resize(cut);
    return text;
  }
  return error.what();
}

}  // namespace grpo::policy
