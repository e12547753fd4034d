// Exact rationals for answer comparison, with a size cap and a work budget so that hostile answers (huge powers,
// long chains of fractions) give up cleanly instead of allocating or looping without bound.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>

#include "reward/math_big_int.h"

namespace grpo::reward {

// Limits shared by every exact operation of one comparison. An operation that would exceed them returns nullopt and
// sets `exceeded`, and the caller falls back to floating point.
struct ExactBudget {
  // ~2,300 decimal digits: far beyond any real answer, small enough that one multiplication costs microseconds.
  std::size_t max_limbs = 256;
  // Limb-by-limb multiply steps left for the whole comparison (~a millisecond of work).
  std::int64_t work_left = 4'000'000;
  bool exceeded = false;
};

// num/den with den > 0. Not always in lowest terms (no BigInt division): equality and ordering cross-multiply.
// Small values are reduced (when both parts fit in 64 bits), which keeps common answers compact.
class Rational {
 public:
  Rational() : den_(1) {}
  explicit Rational(BigInt integer) : num_(std::move(integer)), den_(1) {}
  // Requires den != 0; the sign moves to the numerator.
  Rational(BigInt num, BigInt den);

  const BigInt& num() const { return num_; }
  const BigInt& den() const { return den_; }
  bool is_zero() const { return num_.is_zero(); }
  int sign() const { return num_.sign(); }
  bool is_integer() const { return den_ == BigInt(1); }
  std::size_t limb_count() const { return num_.limb_count() + den_.limb_count(); }

  double to_double() const;
  std::string to_string() const;

  Rational operator-() const { return Rational(-num_, den_); }
  friend bool operator==(const Rational& a, const Rational& b);
  friend std::strong_ordering operator<=>(const Rational& a, const Rational& b);

 private:
  BigInt num_;
  BigInt den_;

  void reduce_if_small();
};

std::optional<Rational> add(const Rational& a, const Rational& b, ExactBudget& budget);
std::optional<Rational> subtract(const Rational& a, const Rational& b, ExactBudget& budget);
std::optional<Rational> multiply(const Rational& a, const Rational& b, ExactBudget& budget);
// nullopt also for division by zero (without setting `exceeded`).
std::optional<Rational> divide(const Rational& a, const Rational& b, ExactBudget& budget);
// base^exponent for an integer exponent; nullopt for 0 to a negative power or when the result would be too large.
std::optional<Rational> power(const Rational& base, std::int64_t exponent, ExactBudget& budget);
// The exact k-th root (k >= 2) when numerator and denominator are perfect powers that fit in 64 bits, else nullopt.
std::optional<Rational> exact_root(const Rational& value, std::int64_t k);

}  // namespace grpo::reward
