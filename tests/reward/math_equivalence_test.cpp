// Math answer equivalence: a (gold, prediction, expected) table over every supported form, true and false cases,
// the stated policies (percent, rounding, tolerance, text), bad references, and hostile inputs under a time bound.
#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "reward/math_equivalence.h"

namespace grpo::reward {
namespace {

struct Case {
  std::string gold;
  std::string prediction;
  bool equal;
};

void expect_cases(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    const MathVerdict verdict = math_equivalent(c.gold, c.prediction);
    EXPECT_TRUE(verdict.reference_ok) << c.gold << " | " << verdict.reason;
    EXPECT_EQ(verdict.equal, c.equal) << "gold '" << c.gold << "' prediction '" << c.prediction
                                      << "' reason: " << verdict.reason;
    EXPECT_EQ(verdict.reason.empty(), verdict.equal) << c.gold << " | " << c.prediction;
  }
}

TEST(MathEquivalence, Integers) {
  expect_cases({
      {"42", "42", true},
      {"42", "042", true},
      {"42", "43", false},
      {"-5", "-5", true},
      {"-5", "5", false},
      {"0", "-0", true},
      {"+7", "7", true},
      {"123456789012345678901234567890", "123456789012345678901234567890", true},
      {"123456789012345678901234567890", "123456789012345678901234567891", false},
      {"-98765432109876543210", "-98765432109876543210", true},
      {"18446744073709551616", "2^{64}", true},  // 2^64, past every machine integer
      {"18446744073709551615", "2^{64}", false},
  });
}

TEST(MathEquivalence, DecimalsFractionsAndMixedNumbers) {
  expect_cases({
      {"0.5", "\\frac{1}{2}", true},
      {"\\frac{1}{2}", "0.50", true},
      {"0.4", ".4", true},
      {"\\frac{1}{2}", "\\dfrac{1}{2}", true},
      {"\\frac{1}{2}", "\\tfrac12", true},
      {"\\frac{2}{4}", "1/2", true},
      {"10/9", "\\frac{10}{9}", true},
      {"-10/9", "-\\frac{10}{9}", true},
      {"-10/9", "\\frac{-10}{9}", true},
      {"\\frac{10}{9}", "-\\frac{10}{9}", false},
      {"\\frac{3}{4}", "\\frac{4}{3}", false},
      {"3\\frac{1}{2}", "3.5", true},
      {"3\\frac{1}{2}", "\\frac{7}{2}", true},
      {"3 1/2", "7/2", true},
      {"-3\\frac{1}{2}", "-3.5", true},
      {"3\\frac{1}{2}", "1.5", false},     // a mixed number, not 3 * 1/2
      {"\\frac{1}{3}", "0.333333", true},  // 6 significant digits round to 1/3
      {"\\frac{2}{3}", "0.666667", true},
      {"\\frac{1}{3}", "0.33333", false},  // 5 digits are not enough
      {"\\frac{1}{3}", "0.33", false},
      {"1.5", "1.50001", false},
      {"1000000", "1000001.0", false},  // rounding never stretches to a different integer
      {"1.25", "5/4", true},
  });
}

TEST(MathEquivalence, RootsPowersAndConstants) {
  expect_cases({
      {"\\sqrt{2}", "\\sqrt2", true},
      {"\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", true},
      {"2\\sqrt{3}", "\\sqrt{12}", true},
      {"2\\sqrt{3}", "\\sqrt{13}", false},
      {"\\sqrt{4}", "2", true},
      {"\\sqrt[3]{8}", "2", true},
      {"\\sqrt{2}", "1.414214", true},  // within the 1e-6 relative tolerance
      {"\\sqrt{2}", "1.41", false},
      {"2^{10}", "1024", true},
      {"2^{-1}", "0.5", true},
      {"8^{2/3}", "4", true},
      {"\\pi", "\\pi", true},
      {"2\\pi", "6.283185", true},
      {"\\pi", "3.14", false},
      {"\\frac{\\pi}{2}", "\\pi/2", true},
      {"e^{2}", "7.389056", true},
      {"e", "2.718282", true},
      {"5!", "120", true},
      {"\\sin(\\pi/6)", "0.5", true},
      {"\\log_2 8", "3", true},
      {"|-3|", "3", true},
  });
}

// Policy: "28\%" stands for 28 and for 0.28 (Math-Verify's tests accept a bare 28 against gold 28%); a bare number
// never becomes a percentage (gold 0.28 rejects 28).
TEST(MathEquivalence, PercentagesFollowMathVerify) {
  expect_cases({
      {"50\\%", "50\\%", true},
      {"50\\%", "50", true},
      {"50\\%", "0.5", true},
      {"50\\%", "50 percent", true},
      {"0.5", "50\\%", true},
      {"50", "50\\%", true},
      {"50\\%", "5", false},
      {"0.28", "28", false},
      {"\\frac{28}{100}", "28", false},
      {"28", "28/100", false},
      {"12.5\\%", "0.125", true},
  });
}

TEST(MathEquivalence, SeparatorsScientificNotationUnitsAndText) {
  expect_cases({
      {"1000", "1,000", true},
      {"7425000", "7,425,000", true},
      {"14916", "14{,}916", true},
      {"1000", "1\\,000", true},
      {"1000", "1 000", true},
      {"1000.99", "1,000.99", true},
      {"1000", "1,001", false},
      {"1500", "1.5e3", true},
      {"0.002", "2E-3", true},
      {"1500", "1.5 \\times 10^{3}", true},
      {"1500", "1.5 \\times 10^{4}", false},
      {"5", "5\\text{ cm}", true},
      {"5\\text{ cm}^2", "5", true},
      {"18.90", "\\$18.90", true},
      {"18.9", "18.90 dollars", true},
      {"90", "90^\\circ", true},
      {"90^{\\circ}", "90", true},
      {"\\frac{1}{3}", "\\frac{1}{3} \\text{meters}", true},
      {"\\text{Evelyn}", "Evelyn", true},
      {"\\text{Evelyn}", "\\textbf{evelyn}", true},
      {"Evelyn", "Nylev", false},
      {"\\text{odd}", "Odd.", true},
      {"\\text{odd}", "even", false},
      {"\\text{(C)}", "C", true},
      {"\\text{(C)}", "(D)", false},
  });
}

TEST(MathEquivalence, EquationsAndVariables) {
  expect_cases({
      {"3", "x = 3", true},
      {"3", "x = 2 + 1 = 3", true},
      {"x = 3", "3", true},
      {"3", "x = 4", false},
      {"\\frac{1}{3}", "k = \\frac{1}{3}", true},
      {"y = 2x + 1", "y = 1 + 2x", true},
      {"y = 2x + 1", "2x + 1 = y", true},
      {"y = 2x + 1", "y - 2x = 1", true},
      {"y = 2x + 1", "y = 2x - 1", false},
      {"x^2+2x+1", "(x+1)^2", true},
      {"x^2+2x+1", "(x+2)^2", false},
      {"2-2p", "-2p+2", true},
      {"x + 1", "y + 1", false},  // variables must match
      {"\\frac{x}{2}", "0.5x", true},
  });
}

TEST(MathEquivalence, TuplesSetsAndLists) {
  expect_cases({
      {"(1, 2)", "(1,2)", true},
      {"(1, 2)", "(2, 1)", false},  // tuples are ordered
      {"(3, \\frac{\\pi}{2})", "\\left( 3, \\frac{\\pi}{2} \\right)", true},
      {"(1, 2, 3)", "(1, 2)", false},
      {"\\{1, 2\\}", "\\{2, 1\\}", true},  // sets are not
      {"\\{1, 2\\}", "\\{1, 3\\}", false},
      {"\\{1, 2, 2\\}", "\\{1, 2, 3\\}", false},
      {"1, 2", "2, 1", true},
      {"1, 2", "\\{2, 1\\}", true},
      {"(1, 2)", "\\{1, 2\\}", false},
      {"\\{3\\}", "3", true},
      {"12, 13", "12 \\text{ and } 13", true},
      {"(1, 2)", "x = 1, y = 2", true},
      {"\\frac{-1 \\pm \\sqrt{5}}{2}", "\\frac{-1 + \\sqrt{5}}{2}, \\frac{-1 - \\sqrt{5}}{2}", true},
      {"\\frac{-1 \\pm \\sqrt{5}}{2}", "\\frac{-1 + \\sqrt{5}}{2}", false},
      {"\\pm 2", "-2, 2", true},
      {"(100, 200)", "(100,200)", true},  // inside brackets a comma separates, it is never a thousands separator
  });
}

TEST(MathEquivalence, IntervalsAndInequalities) {
  expect_cases({
      {"[0, 1)", "[0,1)", true},
      {"[0, 9)", "[0, 1)", false},
      {"(0, 9)", "[0, 9)", false},
      {"(1, 2]", "(1, 2]", true},
      {"(1, 2]", "[1, 2]", false},
      {"(3, \\infty)", "x > 3", true},
      {"x > 3", "(3, \\infty)", true},
      {"x > 3", "x \\ge 3", false},
      {"[3, \\infty)", "x \\geq 3", true},
      {"(-\\infty, 2)", "x < 2", true},
      {"(1, 2]", "1 < x \\le 2", true},
      {"(1, 2]", "2 \\ge x > 1", true},
      {"x > 3", "3 < x", true},
      {"(3, \\infty)", "x \\in (3, \\infty)", true},
      {"(-\\infty, 1) \\cup (2, \\infty)", "(2, \\infty) \\cup (-\\infty, 1)", true},
      {"(-\\infty, 1) \\cup (2, \\infty)", "(-\\infty, 1] \\cup (2, \\infty)", false},
      {"(-\\infty, \\infty)", "(-\\infty, \\infty)", true},
  });
}

TEST(MathEquivalence, Matrices) {
  expect_cases({
      {"\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}", true},
      {"\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{pmatrix} 1 & 2 \\\\ 3 & 5 \\end{pmatrix}", false},
      {"\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{pmatrix} 1 & 3 \\\\ 2 & 4 \\end{pmatrix}", false},
      {"\\begin{pmatrix} 1 & 2 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", false},
      {"\\begin{pmatrix} \\frac{1}{2} \\\\ 0 \\end{pmatrix}", "\\begin{pmatrix} 0.5 \\\\ 0 \\\\ \\end{pmatrix}", true},
      {"\\begin{pmatrix} 3 \\\\ 2 \\\\ -6 \\end{pmatrix}", "(3, 2, -6)", true},
  });
}

TEST(MathEquivalence, BadReferencesCannotBeScored) {
  for (const std::string gold : {"", "\\frac{1}{", "(1, 2", "3 +", "\\begin{cases} 1 \\end{cases}"}) {
    const MathVerdict verdict = math_equivalent(gold, "1");
    EXPECT_FALSE(verdict.reference_ok) << "'" << gold << "'";
    EXPECT_FALSE(verdict.equal) << "'" << gold << "'";
    EXPECT_FALSE(verdict.reason.empty());
  }
  const MathVerdict unparsable_answer = math_equivalent("1", "\\frac{1}{");
  EXPECT_TRUE(unparsable_answer.reference_ok);
  EXPECT_FALSE(unparsable_answer.equal);
  EXPECT_NE(unparsable_answer.reason.find("answer does not parse"), std::string::npos) << unparsable_answer.reason;
}

// Each hostile pair must finish quickly (the bound is loose: it catches hangs, not slowness) with a reason.
TEST(MathEquivalence, HostileInputsReturnQuicklyWithAReason) {
  const std::string megabyte(1 << 20, '9');
  const std::string deep_braces = std::string(100'000, '{') + "1" + std::string(100'000, '}');
  const std::string deep_parens = std::string(100'000, '(') + "1" + std::string(100'000, ')');
  const std::string deep_within_limit = std::string(4000, '{') + "2" + std::string(4000, '}');
  std::string long_sum = "1";
  for (int i = 0; i < 3000; ++i) long_sum += "+1";
  std::string long_set = "\\{";
  for (int i = 0; i < 1000; ++i) long_set += std::to_string(i) + ",";
  long_set += "1000\\}";
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"10^{10^{10^{10}}}", "10^{10^{10^{11}}}"},
      {"1", "10^{10^{10^{10}}}"},
      {"2^{10000}", "4^{5000}"},
      {"1", "99999!"},
      {"1", "1e9999999"},
      {"1", megabyte},
      {"1", deep_braces},
      {"1", deep_parens},
      {"1", deep_within_limit},
      {"1", std::string(4000, '(') + "1" + std::string(4000, ')')},
      {"1", std::string(4000, '-') + "1"},
      {"1", "2^" + std::string(3000, '{') + "2" + std::string(3000, '}')},
      {"1", "\\frac" + std::string(50'000, '{') + "1"},
      {long_set, long_set.substr(0, long_set.size() - 6) + "1001\\}"},
      {"\\pm 1 \\pm 2 \\pm 3 \\pm 4 \\pm 5", "1"},
      {"x", std::string(4000, 'x')},
  };
  for (const auto& [gold, prediction] : pairs) {
    const auto start = std::chrono::steady_clock::now();
    const MathVerdict verdict = math_equivalent(gold, prediction);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_LT(seconds, 1.0) << gold.substr(0, 40) << " | " << prediction.substr(0, 40);
    EXPECT_FALSE(verdict.equal) << gold.substr(0, 40) << " | " << prediction.substr(0, 40);
    EXPECT_FALSE(verdict.reason.empty()) << gold.substr(0, 40) << " | " << prediction.substr(0, 40);
  }
  EXPECT_NE(math_equivalent("1", megabyte).reason.find("longer than"), std::string::npos);
  EXPECT_NE(math_equivalent("1", deep_within_limit).reason.find("nested deeper"), std::string::npos);
  EXPECT_NE(math_equivalent("1", "10^{10^{10^{10}}}").reason.find("too large"), std::string::npos);
  // A long flat sum is not deep: 3,001 ones add up exactly.
  EXPECT_TRUE(math_equivalent("3001", long_sum).equal);
  // Identical hostile text is still recognised as the same answer without evaluating it.
  EXPECT_TRUE(math_equivalent("10^{10^{10^{10}}}", "10^{10^{10^{10}}}").equal);
}

TEST(MathEquivalence, NormalizesTextAnswers) {
  EXPECT_EQ(normalize_text_answer("  \\text{The  Answer}. "), "the answer");
  EXPECT_EQ(normalize_text_answer("$\\textbf{Yes}$"), "yes");
  EXPECT_EQ(normalize_text_answer("a\\ b~c"), "a b c");
}

}  // namespace
}  // namespace grpo::reward
