// Tests for metrics.jsonl: rows parse back with their key order, lines are on disk as soon as write() returns,
// non-finite numbers become null at any depth, append vs truncate, and errors that name the path and the reason.
#include "rl/metrics_writer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace grpo::rl {
namespace {

using nlohmann::ordered_json;

class MetricsWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("grpo_metrics_writer_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static std::vector<std::string> read_lines(const std::filesystem::path& file) {
    std::ifstream in(file);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  std::filesystem::path dir_;
};

TEST_F(MetricsWriterTest, RowsParseBackWithKeyOrderKept) {
  const std::filesystem::path file = dir_ / "metrics.jsonl";
  MetricsWriter writer(file);
  EXPECT_EQ(writer.path(), file);
  ordered_json first;
  first["step"] = 1;
  first["reward"] = 0.25;
  first["accuracy"] = 0.5;
  first["phase"] = "train";
  ordered_json second;
  second["step"] = 2;
  second["zeta"] = 1;
  second["alpha"] = 2;
  writer.write(first);
  writer.write(second);

  const std::vector<std::string> lines = read_lines(file);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], R"({"step":1,"reward":0.25,"accuracy":0.5,"phase":"train"})");
  EXPECT_EQ(ordered_json::parse(lines[0]), first);
  EXPECT_EQ(ordered_json::parse(lines[1]), second);
  const ordered_json parsed = ordered_json::parse(lines[1]);
  std::vector<std::string> keys;
  for (const auto& item : parsed.items()) keys.push_back(item.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"step", "zeta", "alpha"}));
}

TEST_F(MetricsWriterTest, EachLineIsOnDiskWhenWriteReturns) {
  const std::filesystem::path file = dir_ / "metrics.jsonl";
  MetricsWriter writer(file);
  writer.write(ordered_json{{"step", 1}});
  // Read while the writer is still open: nothing may wait in a user-space buffer.
  EXPECT_EQ(read_lines(file), std::vector<std::string>{R"({"step":1})"});
}

TEST_F(MetricsWriterTest, NonFiniteNumbersBecomeNullAtAnyDepth) {
  const std::filesystem::path file = dir_ / "metrics.jsonl";
  constexpr double kInf = std::numeric_limits<double>::infinity();
  ordered_json row;
  row["loss"] = std::nan("");
  row["kl"] = kInf;
  row["nested"]["grad_norm"] = -kInf;
  row["nested"]["per_group"] = {1.5, std::nan(""), -kInf};
  row["nested"]["deeper"]["ok"] = 2.0;
  {
    MetricsWriter writer(file);
    writer.write(row);
  }
  const std::vector<std::string> lines = read_lines(file);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0],
            R"({"loss":null,"kl":null,"nested":{"grad_norm":null,"per_group":[1.5,null,null],"deeper":{"ok":2.0}}})");
  EXPECT_TRUE(ordered_json::parse(lines[0])["nested"]["per_group"][1].is_null());
}

TEST_F(MetricsWriterTest, AppendKeepsEarlierLinesAndDefaultTruncates) {
  const std::filesystem::path file = dir_ / "metrics.jsonl";
  {
    MetricsWriter writer(file);
    writer.write(ordered_json{{"step", 1}});
  }
  {
    MetricsWriter writer(file, /*append=*/true);
    writer.write(ordered_json{{"step", 2}});
  }
  EXPECT_EQ(read_lines(file), (std::vector<std::string>{R"({"step":1})", R"({"step":2})"}));
  {
    MetricsWriter writer(file);
    writer.write(ordered_json{{"step", 3}});
  }
  EXPECT_EQ(read_lines(file), std::vector<std::string>{R"({"step":3})"});
}

TEST_F(MetricsWriterTest, InvalidUtf8IsReplacedNotThrown) {
  const std::filesystem::path file = dir_ / "metrics.jsonl";
  MetricsWriter writer(file);
  writer.write(ordered_json{{"sample", std::string("ok\xff")}});
  const std::vector<std::string> lines = read_lines(file);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(ordered_json::parse(lines[0])["sample"], "ok\xEF\xBF\xBD");
}

TEST_F(MetricsWriterTest, RowsMustBeObjects) {
  MetricsWriter writer(dir_ / "metrics.jsonl");
  EXPECT_THROW(writer.write(ordered_json::array({1, 2})), std::invalid_argument);
  EXPECT_THROW(writer.write(ordered_json(3)), std::invalid_argument);
}

TEST_F(MetricsWriterTest, UnopenablePathNamesThePathAndTheReason) {
  const std::filesystem::path missing = dir_ / "no_such_dir" / "metrics.jsonl";
  try {
    MetricsWriter writer(missing);
    ADD_FAILURE() << "expected std::runtime_error";
  } catch (const std::runtime_error& error) {
    EXPECT_EQ(std::string(error.what()),
              "cannot open metrics file '" + missing.string() + "' for writing: No such file or directory");
  }
  // A folder where the file should be: fails even for root, unlike a read-only folder.
  try {
    MetricsWriter writer(dir_, /*append=*/true);
    ADD_FAILURE() << "expected std::runtime_error";
  } catch (const std::runtime_error& error) {
    EXPECT_EQ(std::string(error.what()),
              "cannot open metrics file '" + dir_.string() + "' for appending: Is a directory");
  }
}

TEST_F(MetricsWriterTest, FailedWriteNamesThePathAndTheReason) {
  const std::filesystem::path full = "/dev/full";  // Linux: every write fails with ENOSPC
  if (!std::filesystem::exists(full)) GTEST_SKIP() << "/dev/full is not available on this system";
  MetricsWriter writer(full);
  try {
    writer.write(ordered_json{{"step", 1}});
    ADD_FAILURE() << "expected std::runtime_error";
  } catch (const std::runtime_error& error) {
    EXPECT_EQ(std::string(error.what()), "cannot write metrics file '/dev/full': No space left on device");
  }
}

}  // namespace
}  // namespace grpo::rl
