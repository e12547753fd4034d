// The process-wide grader registry: built-ins are registered when it is first used, so there is no dependence on
// static initialisation order across translation units.
#include "reward/grader_registry.h"

#include <map>
#include <mutex>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "reward/accuracy_grader.h"
#include "reward/code_grader.h"
#include "reward/countdown_grader.h"
#include "reward/format_grader.h"
#include "reward/math_grader.h"

namespace grpo::reward {
namespace {

class Registry {
 public:
  static Registry& instance() {
    static Registry registry;
    return registry;
  }

  void add(std::string name, GraderFactory factory) {
    if (name.empty()) throw std::invalid_argument("register_grader: grader name is empty");
    if (!factory) throw std::invalid_argument(fmt::format("register_grader: factory for grader '{}' is null", name));
    const std::lock_guard lock(mutex_);
    if (factories_.contains(name)) {
      throw std::invalid_argument(fmt::format("register_grader: a grader named '{}' is already registered", name));
    }
    factories_.emplace(std::move(name), std::move(factory));
  }

  // A copy, so the factory runs outside the lock and may itself use the registry.
  GraderFactory find(std::string_view name) const {
    const std::lock_guard lock(mutex_);
    const auto it = factories_.find(name);
    if (it == factories_.end()) {
      throw std::invalid_argument(
          fmt::format("unknown grader '{}'; registered graders: {}", name, fmt::join(names_locked(), ", ")));
    }
    return it->second;
  }

  std::vector<std::string> names() const {
    const std::lock_guard lock(mutex_);
    return names_locked();
  }

 private:
  Registry() {
    factories_.emplace("accuracy", [] { return std::make_unique<AccuracyGrader>(); });
    factories_.emplace("code", [] { return std::make_unique<CodeGrader>(); });
    factories_.emplace("countdown", [] { return std::make_unique<CountdownGrader>(); });
    factories_.emplace("format", [] { return std::make_unique<FormatGrader>(); });
    factories_.emplace("math", [] { return std::make_unique<MathGrader>(); });
  }

  std::vector<std::string> names_locked() const {
    std::vector<std::string> names;
    names.reserve(factories_.size());
    for (const auto& [name, factory] : factories_) names.push_back(name);
    return names;
  }

  mutable std::mutex mutex_;
  std::map<std::string, GraderFactory, std::less<>> factories_;  // ordered, so listings come out sorted
};

}  // namespace

std::unique_ptr<Grader> make_grader(std::string_view name) {
  const GraderFactory factory = Registry::instance().find(name);
  std::unique_ptr<Grader> grader = factory();
  if (!grader) throw std::runtime_error(fmt::format("the factory registered for grader '{}' returned null", name));
  return grader;
}

std::vector<std::string> registered_grader_names() { return Registry::instance().names(); }

void register_grader(std::string name, GraderFactory factory) {
  Registry::instance().add(std::move(name), std::move(factory));
}

}  // namespace grpo::reward
