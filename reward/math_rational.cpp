// Exact rational arithmetic under a size cap and a work budget (see math_rational.h).
#include "reward/math_rational.h"

#include <cmath>
#include <limits>
#include <numeric>
#include <utility>

#include <fmt/format.h>

namespace grpo::reward {
namespace {

// Charges the cost of multiplying two integers (limb pairs touched) and checks the result's size bound up front.
bool charge_multiply(const BigInt& a, const BigInt& b, ExactBudget& budget) {
  const auto steps =
      static_cast<std::int64_t>(std::max<std::size_t>(a.limb_count(), 1) * std::max<std::size_t>(b.limb_count(), 1));
  budget.work_left -= steps;
  if (budget.work_left < 0 || a.limb_count() + b.limb_count() > budget.max_limbs) {
    budget.exceeded = true;
    return false;
  }
  return true;
}

std::optional<Rational> checked(Rational value, ExactBudget& budget) {
  if (value.limb_count() > budget.max_limbs) {
    budget.exceeded = true;
    return std::nullopt;
  }
  return value;
}

// log10 of |value| for a non-zero integer, without overflowing a double.
double log10_abs(const BigInt& value) {
  std::int64_t exponent = 0;
  const double mantissa = std::fabs(value.scaled_mantissa(exponent));
  return std::log10(mantissa) + 9.0 * static_cast<double>(exponent);
}

// The integer k-th root of a non-negative 64-bit value when it is exact.
std::optional<std::int64_t> exact_integer_root(std::int64_t value, std::int64_t k) {
  const double estimate = std::pow(static_cast<double>(value), 1.0 / static_cast<double>(k));
  const auto guess = static_cast<std::int64_t>(std::llround(estimate));
  for (std::int64_t candidate = std::max<std::int64_t>(guess - 1, 0); candidate <= guess + 1; ++candidate) {
    std::int64_t product = 1;
    bool overflow = false;
    for (std::int64_t i = 0; i < k && !overflow; ++i) {
      overflow = candidate != 0 && product > value / candidate;
      if (!overflow) product *= candidate;
    }
    if (!overflow && product == value) return candidate;
  }
  return std::nullopt;
}

}  // namespace

Rational::Rational(BigInt num, BigInt den) : num_(std::move(num)), den_(std::move(den)) {
  if (den_.is_negative()) {
    num_ = -num_;
    den_ = -den_;
  }
  reduce_if_small();
}

void Rational::reduce_if_small() {
  const std::optional<std::int64_t> num = num_.to_int64();
  const std::optional<std::int64_t> den = den_.to_int64();
  if (!num || !den || *den == 0) return;
  const std::int64_t divisor = std::gcd(*num, *den);
  if (divisor > 1) {
    num_ = BigInt(*num / divisor);
    den_ = BigInt(*den / divisor);
  }
}

double Rational::to_double() const {
  std::int64_t num_exponent = 0;
  std::int64_t den_exponent = 0;
  const double num = num_.scaled_mantissa(num_exponent);
  const double den = den_.scaled_mantissa(den_exponent);
  return num / den * std::pow(static_cast<double>(BigInt::kBase), static_cast<double>(num_exponent - den_exponent));
}

std::string Rational::to_string() const {
  return is_integer() ? num_.to_string() : fmt::format("{}/{}", num_.to_string(), den_.to_string());
}

bool operator==(const Rational& a, const Rational& b) { return (a <=> b) == 0; }

std::strong_ordering operator<=>(const Rational& a, const Rational& b) {
  if (a.den_ == b.den_) return a.num_ <=> b.num_;
  return a.num_ * b.den_ <=> b.num_ * a.den_;  // denominators are positive
}

std::optional<Rational> add(const Rational& a, const Rational& b, ExactBudget& budget) {
  if (a.den() == b.den()) return checked(Rational(a.num() + b.num(), a.den()), budget);
  if (!charge_multiply(a.num(), b.den(), budget) || !charge_multiply(b.num(), a.den(), budget) ||
      !charge_multiply(a.den(), b.den(), budget)) {
    return std::nullopt;
  }
  return checked(Rational(a.num() * b.den() + b.num() * a.den(), a.den() * b.den()), budget);
}

std::optional<Rational> subtract(const Rational& a, const Rational& b, ExactBudget& budget) {
  return add(a, -b, budget);
}

std::optional<Rational> multiply(const Rational& a, const Rational& b, ExactBudget& budget) {
  if (!charge_multiply(a.num(), b.num(), budget) || !charge_multiply(a.den(), b.den(), budget)) return std::nullopt;
  return checked(Rational(a.num() * b.num(), a.den() * b.den()), budget);
}

std::optional<Rational> divide(const Rational& a, const Rational& b, ExactBudget& budget) {
  if (b.is_zero()) return std::nullopt;
  if (!charge_multiply(a.num(), b.den(), budget) || !charge_multiply(a.den(), b.num(), budget)) return std::nullopt;
  return checked(Rational(a.num() * b.den(), a.den() * b.num()), budget);
}

std::optional<Rational> power(const Rational& base, std::int64_t exponent, ExactBudget& budget) {
  if (exponent == 0) return Rational(BigInt(1));
  if (base.is_zero()) return exponent > 0 ? std::optional<Rational>(Rational()) : std::nullopt;
  if (exponent < 0) {
    if (exponent == std::numeric_limits<std::int64_t>::min()) {
      budget.exceeded = true;
      return std::nullopt;
    }
    std::optional<Rational> positive = power(base, -exponent, budget);
    if (!positive) return std::nullopt;
    return Rational(positive->den(), positive->num());
  }
  // Refuse before computing anything when the result cannot fit: 10^{10^{10}} must not even start.
  const double digits = static_cast<double>(exponent) * (log10_abs(base.num()) + log10_abs(base.den()));
  if (digits / 9.0 > static_cast<double>(budget.max_limbs)) {
    budget.exceeded = true;
    return std::nullopt;
  }
  Rational result(BigInt(1));
  Rational square = base;
  for (std::int64_t rest = exponent;;) {
    if (rest & 1) {
      std::optional<Rational> next = multiply(result, square, budget);
      if (!next) return std::nullopt;
      result = std::move(*next);
    }
    rest >>= 1;
    if (rest == 0) return result;
    std::optional<Rational> next = multiply(square, square, budget);
    if (!next) return std::nullopt;
    square = std::move(*next);
  }
}

std::optional<Rational> exact_root(const Rational& value, std::int64_t k) {
  if (k < 2 || k > 64) return std::nullopt;
  const std::optional<std::int64_t> num = value.num().to_int64();
  const std::optional<std::int64_t> den = value.den().to_int64();
  if (!num || !den || *num == std::numeric_limits<std::int64_t>::min()) return std::nullopt;
  if (*num < 0 && k % 2 == 0) return std::nullopt;
  const std::optional<std::int64_t> num_root = exact_integer_root(*num < 0 ? -*num : *num, k);
  const std::optional<std::int64_t> den_root = exact_integer_root(*den, k);
  if (!num_root || !den_root) return std::nullopt;
  return Rational(BigInt(*num < 0 ? -*num_root : *num_root), BigInt(*den_root));
}

}  // namespace grpo::reward
