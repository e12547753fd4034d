// TensorBoard event files: CRC-32C against its published check value, our reader against our writer, and the
// `tensorboard` package (TensorBoard's own reader, from PyPI) reading what we wrote; corrupt files are refused.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "rl/tensorboard/event_writer.h"
#include "tests/testing/python.h"

namespace grpo::rl {
namespace {

namespace fs = std::filesystem;

fs::path scratch(const std::string& name) {
  const auto dir = fs::temp_directory_path() / fmt::format("grpo_tb_{}_{}", name, ::getpid());
  fs::remove_all(dir);
  return dir;
}

TEST(Crc32c, PublishedCheckValue) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);  // the CRC-32C check value (RFC 3720, appendix B.4)
  EXPECT_EQ(crc32c(""), 0u);
}

TEST(EventWriter, RowsBecomeGroupedScalarsThatReadBack) {
  const auto dir = scratch("rows");
  fs::path file;
  {
    EventWriter writer(dir);
    file = writer.path();
    for (int step = 1; step <= 3; ++step) {
      writer.add_row({{"step", step}, {"loss", 0.5 / step}, {"time_update_s", 0.1}, {"note", "text is skipped"}, {"nan", NAN}}, "", 1.0);
    }
    writer.add_row({{"step", 3}, {"eval_accuracy", 0.75}}, "", 2.0);
  }
  EXPECT_TRUE(file.filename().string().starts_with("events.out.tfevents."));
  const auto events = read_scalar_events(file);
  ASSERT_EQ(events.size(), 7u);  // 3 × (loss, time) + the eval accuracy; no text, no NaN, no step
  EXPECT_EQ(events[0].tag, "train/loss");
  EXPECT_EQ(events[1].tag, "time/update_s");
  EXPECT_EQ(events[6].tag, "eval/accuracy");
  EXPECT_EQ(events[4].step, 3);
  EXPECT_FLOAT_EQ(events[4].value, 0.5f / 3);

  // The tensorboard package reads the same numbers.
  const auto python = testing::reference_python();
  if (python.empty()) GTEST_SKIP() << "GRPO_PYTHON is not set: the cross-check with the tensorboard package is skipped";
  const auto run = testing::run_python(fs::path(GRPO_SOURCE_DIR) / "scripts" / "tensorboard_read.py", {dir.string()});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto read = nlohmann::json::parse(run.output);
  ASSERT_TRUE(read.contains("train/loss")) << run.output;
  ASSERT_EQ(read["train/loss"].size(), 3u);
  EXPECT_EQ(read["train/loss"][1][0], 2);
  EXPECT_NEAR(read["train/loss"][1][1].get<double>(), 0.25, 1e-7);
  EXPECT_NEAR(read["eval/accuracy"][0][1].get<double>(), 0.75, 1e-7);
  fs::remove_all(dir);
}

TEST(EventWriter, CorruptOrTruncatedFilesAreRefusedWithTheOffset) {
  const auto dir = scratch("corrupt");
  fs::path file;
  {
    EventWriter writer(dir);
    file = writer.path();
    writer.add_scalar("train/x", 1.0, 1, 0.0);
  }
  std::string bytes;
  {
    std::ifstream in(file, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  auto rewrite = [&](const std::string& content) { std::ofstream(file, std::ios::binary | std::ios::trunc) << content; };
  auto flipped = bytes;
  flipped[flipped.size() - 6] ^= 0x40;  // inside the last record's data
  rewrite(flipped);
  try {
    read_scalar_events(file);
    FAIL() << "a flipped bit must be found";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("data CRC mismatch"), std::string::npos) << error.what();
  }
  rewrite(bytes.substr(0, bytes.size() - 3));
  EXPECT_THROW(read_scalar_events(file), std::runtime_error);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace grpo::rl
