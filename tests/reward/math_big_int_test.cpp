// BigInt and Rational: parsing, arithmetic beyond 64 bits checked against hand-computed values, ordering, and the
// size cap and work budget that stop hostile powers.
#include <cmath>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "reward/math_big_int.h"
#include "reward/math_rational.h"

namespace grpo::reward {
namespace {

BigInt big(const std::string& digits) {
  const bool negative = !digits.empty() && digits[0] == '-';
  const std::optional<BigInt> value = BigInt::from_digits(negative ? digits.substr(1) : digits);
  EXPECT_TRUE(value.has_value()) << digits;
  return negative ? -*value : *value;
}

TEST(BigInt, ParsesAndPrints) {
  EXPECT_EQ(big("0").to_string(), "0");
  EXPECT_EQ(big("000123").to_string(), "123");
  EXPECT_EQ(big("1000000000").to_string(), "1000000000");
  EXPECT_EQ(big("-1000000000000000000001").to_string(), "-1000000000000000000001");
  EXPECT_EQ(BigInt(-9'223'372'036'854'775'807LL - 1).to_string(), "-9223372036854775808");
  EXPECT_FALSE(BigInt::from_digits("").has_value());
  EXPECT_FALSE(BigInt::from_digits("12a").has_value());
  EXPECT_FALSE(BigInt::from_digits("-1").has_value());
  EXPECT_EQ(BigInt::pow10(20).to_string(), "100000000000000000000");
  EXPECT_EQ(big("-0").sign(), 0);
}

TEST(BigInt, AddsSubtractsAndMultipliesBeyond64Bits) {
  // 99999999999999999999 + 1 = 10^20; (10^20) - 1 = 99999999999999999999.
  EXPECT_EQ((big("99999999999999999999") + big("1")).to_string(), "100000000000000000000");
  EXPECT_EQ((big("100000000000000000000") - big("1")).to_string(), "99999999999999999999");
  EXPECT_EQ((big("5") - big("12")).to_string(), "-7");
  EXPECT_EQ((big("-5") + big("12")).to_string(), "7");
  EXPECT_EQ((big("-5") - big("-5")).to_string(), "0");
  // (10^10 + 1)^2 = 10^20 + 2*10^10 + 1.
  EXPECT_EQ((big("10000000001") * big("10000000001")).to_string(), "100000000020000000001");
  EXPECT_EQ((big("-123456789123456789") * big("987654321")).to_string(), "-121932631234567900112635269");
  EXPECT_EQ((big("0") * big("-5")).sign(), 0);
}

TEST(BigInt, OrdersAndConverts) {
  EXPECT_LT(big("-100000000000000000000"), big("-99999999999999999999"));
  EXPECT_LT(big("99999999999999999999"), big("100000000000000000000"));
  EXPECT_GT(big("1"), big("-1"));
  EXPECT_EQ(big("12"), BigInt(12));
  EXPECT_EQ(big("9223372036854775807").to_int64(), 9'223'372'036'854'775'807LL);
  EXPECT_FALSE(big("9223372036854775808").to_int64().has_value());
  EXPECT_DOUBLE_EQ(big("123456789012").to_double(), 123456789012.0);
  EXPECT_TRUE(std::isinf(BigInt::pow10(400).to_double()));
}

TEST(Rational, ComparesByCrossMultiplication) {
  ExactBudget budget;
  const Rational half(BigInt(1), BigInt(2));
  const Rational two_quarters(BigInt(2), BigInt(4));
  EXPECT_EQ(half, two_quarters);
  EXPECT_EQ(Rational(BigInt(3), BigInt(-6)), -half);
  EXPECT_LT(Rational(BigInt(1), BigInt(3)), half);
  EXPECT_EQ(add(half, Rational(BigInt(1), BigInt(3)), budget)->to_string(), "5/6");
  EXPECT_EQ(multiply(half, Rational(BigInt(4)), budget)->to_string(), "2");
  EXPECT_FALSE(divide(half, Rational(), budget).has_value());
  EXPECT_FALSE(budget.exceeded);
  EXPECT_DOUBLE_EQ(Rational(BigInt(1), BigInt(8)).to_double(), 0.125);
}

TEST(Rational, PowersAndRootsAreExactOrRefused) {
  ExactBudget budget;
  EXPECT_EQ(power(Rational(BigInt(2)), 100, budget)->to_string(), "1267650600228229401496703205376");
  EXPECT_EQ(power(Rational(BigInt(2), BigInt(3)), -2, budget)->to_string(), "9/4");
  EXPECT_FALSE(power(Rational(), -1, budget).has_value());
  EXPECT_EQ(exact_root(Rational(BigInt(27), BigInt(8)), 3)->to_string(), "3/2");
  EXPECT_EQ(exact_root(Rational(BigInt(-8)), 3)->to_string(), "-2");
  EXPECT_FALSE(exact_root(Rational(BigInt(2)), 2).has_value());
  EXPECT_FALSE(exact_root(Rational(BigInt(-4)), 2).has_value());
  EXPECT_FALSE(budget.exceeded);
  // 10^(10^10) would have ten billion digits: refused before any work.
  EXPECT_FALSE(power(Rational(BigInt(10)), 10'000'000'000LL, budget).has_value());
  EXPECT_TRUE(budget.exceeded);
}

TEST(Rational, WorkBudgetRunsOut) {
  ExactBudget budget{.max_limbs = 256, .work_left = 100};
  const Rational large(BigInt::pow10(900));  // 100 limbs
  EXPECT_FALSE(multiply(large, large, budget).has_value());
  EXPECT_TRUE(budget.exceeded);
}

}  // namespace
}  // namespace grpo::reward
