// A small arbitrary-precision signed integer for exact answer comparison: decimal parsing, + - *, ordering and an
// approximate double. Division is deliberately absent: the math grader compares fractions by cross-multiplication.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace grpo::reward {

class BigInt {
 public:
  static constexpr std::uint32_t kBase = 1'000'000'000;  // one limb holds nine decimal digits

  BigInt() = default;  // zero
  explicit BigInt(std::int64_t value);

  // From ASCII decimal digits only (no sign, no separators); nullopt for an empty string or any other byte.
  static std::optional<BigInt> from_digits(std::string_view digits);
  static BigInt pow10(std::size_t exponent);

  bool is_zero() const { return limbs_.empty(); }
  bool is_negative() const { return negative_; }
  int sign() const { return is_zero() ? 0 : (negative_ ? -1 : 1); }
  // Number of base-1e9 limbs of the magnitude: the unit the grader's size caps and work budget count in.
  std::size_t limb_count() const { return limbs_.size(); }
  // The value when |value| < 2^63, else nullopt.
  std::optional<std::int64_t> to_int64() const;

  // Nearest double, or +-infinity beyond the double range.
  double to_double() const;
  // value ~= mantissa * 1e9^exponent with |mantissa| in [1, 1e27): lets callers form ratios of integers whose
  // doubles would overflow.
  double scaled_mantissa(std::int64_t& exponent) const;

  std::string to_string() const;

  BigInt abs() const;
  BigInt operator-() const;
  friend BigInt operator+(const BigInt& a, const BigInt& b);
  friend BigInt operator-(const BigInt& a, const BigInt& b);
  friend BigInt operator*(const BigInt& a, const BigInt& b);
  friend bool operator==(const BigInt& a, const BigInt& b) = default;
  friend std::strong_ordering operator<=>(const BigInt& a, const BigInt& b);

 private:
  // Little-endian limbs with no leading zero limb; empty means zero, which is never negative.
  std::vector<std::uint32_t> limbs_;
  bool negative_ = false;

  void trim();
  static std::strong_ordering compare_magnitude(const std::vector<std::uint32_t>& a,
                                                const std::vector<std::uint32_t>& b);
  static std::vector<std::uint32_t> add_magnitude(const std::vector<std::uint32_t>& a,
                                                  const std::vector<std::uint32_t>& b);
  // Requires |a| >= |b|.
  static std::vector<std::uint32_t> subtract_magnitude(const std::vector<std::uint32_t>& a,
                                                       const std::vector<std::uint32_t>& b);
  static BigInt signed_sum(const BigInt& a, const BigInt& b, bool negate_b);
};

}  // namespace grpo::reward
