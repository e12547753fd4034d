// Exact and numeric evaluation of parsed answers (see math_evaluate.h).
#include "reward/math_evaluate.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <numbers>

#include <fmt/format.h>

namespace grpo::reward {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr std::int64_t kMaxExactFactorial = 1000;

std::optional<Rational> exact_number(const MathNode& node, ExactBudget& budget) {
  // value = digits * 10^(exponent10 - frac_digits); refuse sizes beyond the cap before building anything.
  const std::int64_t shift = static_cast<std::int64_t>(node.exponent10) - node.frac_digits;
  const auto max_digits = static_cast<std::int64_t>(budget.max_limbs) * 9;
  if (static_cast<std::int64_t>(node.digits.size()) + (shift > 0 ? shift : -shift) > max_digits) {
    budget.exceeded = true;
    return std::nullopt;
  }
  std::optional<BigInt> digits = BigInt::from_digits(node.digits);
  if (!digits) return std::nullopt;
  if (shift >= 0) return Rational(*digits * BigInt::pow10(static_cast<std::size_t>(shift)));
  return Rational(std::move(*digits), BigInt::pow10(static_cast<std::size_t>(-shift)));
}

std::optional<std::int64_t> as_int64(const Rational& value) {
  if (!value.is_integer()) return std::nullopt;
  return value.num().to_int64();
}

// base^exponent for a rational exponent p/q: exact when the q-th root of the base is.
std::optional<Rational> exact_power(const Rational& base, const Rational& exponent, ExactBudget& budget) {
  if (const std::optional<std::int64_t> integer = as_int64(exponent)) return power(base, *integer, budget);
  const std::optional<std::int64_t> num = exponent.num().to_int64();
  const std::optional<std::int64_t> den = exponent.den().to_int64();
  if (!num || !den) return std::nullopt;
  const std::optional<Rational> root = exact_root(base, *den);
  if (!root) return std::nullopt;
  return power(*root, *num, budget);
}

std::optional<Rational> exact_factorial(const Rational& value, ExactBudget& budget) {
  const std::optional<std::int64_t> n = as_int64(value);
  if (!n || *n < 0) return std::nullopt;
  if (*n > kMaxExactFactorial) {
    budget.exceeded = true;
    return std::nullopt;
  }
  Rational result(BigInt(1));
  for (std::int64_t i = 2; i <= *n; ++i) {
    std::optional<Rational> next = multiply(result, Rational(BigInt(i)), budget);
    if (!next) return std::nullopt;
    result = std::move(*next);
  }
  return result;
}

using ExactBinary = std::optional<Rational> (*)(const Rational&, const Rational&, ExactBudget&);

// Folds the children of an n-ary node with `op`, starting from `start`.
std::optional<Rational> exact_fold(const MathExpr& expr, const MathNode& node, MathEvalContext& context, Rational start,
                                   ExactBinary op) {
  Rational total = std::move(start);
  for (const std::int32_t child : node.children) {
    const std::optional<Rational> value = evaluate_exact(expr, child, context);
    if (!value) return std::nullopt;
    std::optional<Rational> next = op(total, *value, context.budget);
    if (!next) return std::nullopt;
    total = std::move(*next);
  }
  return total;
}

double numeric_number(const MathNode& node) {
  const std::string text =
      fmt::format("{}e{}", node.digits, static_cast<std::int64_t>(node.exponent10) - node.frac_digits);
  return std::strtod(text.c_str(), nullptr);
}

double numeric_function(const std::string& name, double x, double base) {
  if (name == "sin") return std::sin(x);
  if (name == "cos") return std::cos(x);
  if (name == "tan") return std::tan(x);
  if (name == "cot") return 1.0 / std::tan(x);
  if (name == "sec") return 1.0 / std::cos(x);
  if (name == "csc") return 1.0 / std::sin(x);
  if (name == "arcsin") return std::asin(x);
  if (name == "arccos") return std::acos(x);
  if (name == "arctan") return std::atan(x);
  if (name == "sinh") return std::sinh(x);
  if (name == "cosh") return std::cosh(x);
  if (name == "tanh") return std::tanh(x);
  if (name == "exp") return std::exp(x);
  if (name == "ln") return std::log(x);
  if (name == "lg") return std::log10(x);
  // \log without a base is the natural logarithm, as in SymPy (and so in Math-Verify).
  if (name == "log") return std::isnan(base) ? std::log(x) : std::log(x) / std::log(base);
  return kNaN;
}

double numeric_root(double radicand, double index) {
  const bool odd_integer = index == std::floor(index) && std::fmod(index, 2.0) != 0.0;
  if (radicand < 0 && odd_integer) return -std::pow(-radicand, 1.0 / index);
  return std::pow(radicand, 1.0 / index);
}

}  // namespace

std::optional<Rational> evaluate_exact(const MathExpr& expr, std::int32_t index, MathEvalContext& context) {
  const MathNode& node = expr.at(index);
  auto child = [&](std::size_t i) { return evaluate_exact(expr, node.children[i], context); };
  switch (node.kind) {
    case MathNodeKind::kNumber:
      return exact_number(node, context.budget);
    case MathNodeKind::kAdd:
      return exact_fold(expr, node, context, Rational(), add);
    case MathNodeKind::kMultiply:
      return exact_fold(expr, node, context, Rational(BigInt(1)), multiply);
    case MathNodeKind::kDivide: {
      const std::optional<Rational> num = child(0);
      const std::optional<Rational> den = num ? child(1) : std::nullopt;
      return den ? divide(*num, *den, context.budget) : std::nullopt;
    }
    case MathNodeKind::kReciprocal: {
      const std::optional<Rational> value = child(0);
      return value ? divide(Rational(BigInt(1)), *value, context.budget) : std::nullopt;
    }
    case MathNodeKind::kNegate:
    case MathNodeKind::kAbs: {
      const std::optional<Rational> value = child(0);
      if (!value) return std::nullopt;
      const bool flip = node.kind == MathNodeKind::kNegate || value->sign() < 0;
      return flip ? -*value : *value;
    }
    case MathNodeKind::kPlusMinus: {
      const std::optional<Rational> left = child(0);
      const std::optional<Rational> right = left ? child(1) : std::nullopt;
      if (!right) return std::nullopt;
      const bool minus = node.ordinal < 32 && ((context.sign_mask >> node.ordinal) & 1u) != 0;
      return minus ? subtract(*left, *right, context.budget) : add(*left, *right, context.budget);
    }
    case MathNodeKind::kPower: {
      const std::optional<Rational> base = child(0);
      const std::optional<Rational> exponent = base ? child(1) : std::nullopt;
      return exponent ? exact_power(*base, *exponent, context.budget) : std::nullopt;
    }
    case MathNodeKind::kRoot: {
      const std::optional<Rational> radicand = child(0);
      const std::optional<Rational> root_index = radicand ? child(1) : std::nullopt;
      const std::optional<std::int64_t> k = root_index ? as_int64(*root_index) : std::nullopt;
      return k ? exact_root(*radicand, *k) : std::nullopt;
    }
    case MathNodeKind::kPercent: {
      const std::optional<Rational> value = child(0);
      return value ? divide(*value, Rational(BigInt(100)), context.budget) : std::nullopt;
    }
    case MathNodeKind::kFactorial: {
      const std::optional<Rational> value = child(0);
      return value ? exact_factorial(*value, context.budget) : std::nullopt;
    }
    default:
      return std::nullopt;  // variables, constants, functions, text and structures have no exact rational value
  }
}

double evaluate_numeric(const MathExpr& expr, std::int32_t index, const MathEvalContext& context) {
  const MathNode& node = expr.at(index);
  auto child = [&](std::size_t i) { return evaluate_numeric(expr, node.children[i], context); };
  switch (node.kind) {
    case MathNodeKind::kNumber:
      return numeric_number(node);
    case MathNodeKind::kSymbol:
      for (const auto& [name, value] : context.variables) {
        if (name == node.text) return value;
      }
      return kNaN;
    case MathNodeKind::kPi:
      return std::numbers::pi;
    case MathNodeKind::kEuler:
      return std::numbers::e;
    case MathNodeKind::kInfinity:
      return std::numeric_limits<double>::infinity();
    case MathNodeKind::kAdd: {
      double sum = 0.0;
      for (std::size_t i = 0; i < node.children.size(); ++i) sum += child(i);
      return sum;
    }
    case MathNodeKind::kMultiply: {
      double product = 1.0;
      for (std::size_t i = 0; i < node.children.size(); ++i) product *= child(i);
      return product;
    }
    case MathNodeKind::kDivide:
      return child(0) / child(1);
    case MathNodeKind::kReciprocal:
      return 1.0 / child(0);
    case MathNodeKind::kNegate:
      return -child(0);
    case MathNodeKind::kAbs:
      return std::fabs(child(0));
    case MathNodeKind::kPlusMinus: {
      const bool minus = node.ordinal < 32 && ((context.sign_mask >> node.ordinal) & 1u) != 0;
      return minus ? child(0) - child(1) : child(0) + child(1);
    }
    case MathNodeKind::kPower:
      return std::pow(child(0), child(1));
    case MathNodeKind::kRoot:
      return numeric_root(child(0), child(1));
    case MathNodeKind::kPercent:
      return child(0) / 100.0;
    case MathNodeKind::kFactorial: {
      const double n = child(0);
      return n >= 0 && n == std::floor(n) ? std::tgamma(n + 1.0) : kNaN;
    }
    case MathNodeKind::kFunction:
      return numeric_function(node.text, child(0), node.children.size() > 1 ? child(1) : kNaN);
    default:
      return kNaN;
  }
}

std::vector<std::string> free_variables(const MathExpr& expr, std::int32_t index) {
  std::vector<std::string> names;
  std::vector<std::int32_t> stack = {index};  // explicit stack: no recursion over arbitrary trees
  while (!stack.empty()) {
    const MathNode& node = expr.at(stack.back());
    stack.pop_back();
    if (node.kind == MathNodeKind::kSymbol) names.push_back(node.text);
    stack.insert(stack.end(), node.children.begin(), node.children.end());
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

bool contains_kind(const MathExpr& expr, std::int32_t index, MathNodeKind kind) {
  std::vector<std::int32_t> stack = {index};
  while (!stack.empty()) {
    const MathNode& node = expr.at(stack.back());
    stack.pop_back();
    if (node.kind == kind) return true;
    stack.insert(stack.end(), node.children.begin(), node.children.end());
  }
  return false;
}

}  // namespace grpo::reward
