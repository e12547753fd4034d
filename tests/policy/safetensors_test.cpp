// Tests of policy/safetensors: exact round trips of every dtype, files built byte by byte in the test, one malformed
// file per rejection rule (through load_safetensors and through the pure parse_safetensors, whose messages must name
// the file and the tensor), and the writer's output read back by an independent Python (standard library) reader.
#include "policy/safetensors.h"

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

namespace grpo::policy {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device seed;
    dir_ = fs::temp_directory_path() / fmt::format("grpo_safetensors_test_{}", seed());
    fs::create_directories(dir_);
  }
  // Files only, so no fs::remove_all: LibTorch wheels export a broken copy of it that can shadow libstdc++'s
  // (pytorch/pytorch#133437) and crash the test binary.
  void TearDown() override {
    for (const fs::directory_entry& entry : fs::directory_iterator(dir_)) fs::remove(entry.path());
    fs::remove(dir_);
  }

  fs::path dir_;
};

// A safetensors file built by hand: 8-byte little-endian header length (by default the header's), header, data.
std::string raw_file(std::string_view header, const std::vector<std::uint8_t>& data = {},
                     std::uint64_t header_length_field = std::numeric_limits<std::uint64_t>::max()) {
  const std::uint64_t length =
      header_length_field == std::numeric_limits<std::uint64_t>::max() ? header.size() : header_length_field;
  std::string bytes;
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((length >> (8 * i)) & 0xFF));
  bytes.append(header);
  bytes.append(data.begin(), data.end());
  return bytes;
}

void write_raw(const fs::path& path, std::string_view header, const std::vector<std::uint8_t>& data = {},
               std::uint64_t header_length_field = std::numeric_limits<std::uint64_t>::max()) {
  const std::string bytes = raw_file(header, data, header_length_field);
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::span<const std::byte> as_bytes(const std::string& bytes) {
  return std::as_bytes(std::span<const char>(bytes.data(), bytes.size()));
}

// Loads `path` expecting a SafetensorsError whose message names the file and contains every fragment.
void expect_load_error(const fs::path& path, std::initializer_list<std::string_view> fragments) {
  try {
    load_safetensors(path);
    ADD_FAILURE() << "loading " << path << " succeeded; expected an error containing " << *fragments.begin();
  } catch (const SafetensorsError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path.string()), std::string::npos) << "message does not name the file: " << message;
    for (std::string_view fragment : fragments) {
      EXPECT_NE(message.find(fragment), std::string::npos) << "missing '" << fragment << "' in: " << message;
    }
  }
}

void expect_save_error(const fs::path& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       std::string_view fragment) {
  try {
    save_safetensors(path, tensors);
    ADD_FAILURE() << "saving " << path << " succeeded; expected an error containing " << fragment;
  } catch (const SafetensorsError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(path.string() + ".tmp")) << "a failed save left its temporary file";
}

// One tensor per supported dtype, with values at the edges of each type (all exactly representable).
std::vector<std::pair<std::string, torch::Tensor>> every_dtype() {
  const auto i64 = std::numeric_limits<std::int64_t>::min();
  return {
      {"f64", torch::tensor({1.5, -0.0, 1e300, 4.9e-324, -3.25, 0.1}, torch::kFloat64).reshape({2, 3})},
      {"f32", torch::tensor({1.0F, -2.5F, 3.4e38F, 1.4e-45F}, torch::kFloat32)},
      {"f16", torch::tensor({65504.0, -2.0, 0.5, 6e-8}, torch::kFloat32).to(torch::kFloat16).reshape({2, 2})},
      {"bf16", torch::tensor({1.0, -3.0, 3.3895e38, 0.0078125}, torch::kFloat32).to(torch::kBFloat16)},
      {"i64", torch::tensor({i64, std::numeric_limits<std::int64_t>::max(), std::int64_t{-1}}, torch::kInt64)},
      {"i32", torch::tensor({std::numeric_limits<std::int32_t>::min(), 7, std::numeric_limits<std::int32_t>::max()},
                            torch::kInt32)},
      {"i16", torch::tensor({-32768, 258, 32767}, torch::kInt16).reshape({1, 3})},
      {"i8", torch::tensor({-128, 0, 127}, torch::kInt8)},
      {"u8", torch::tensor({0, 1, 255}, torch::kUInt8)},
      {"bool", torch::tensor({true, false, true}, torch::kBool)},
      {"scalar", torch::tensor(42.0F)},
  };
}

// Bitwise equality: torch::equal treats -0.0 == 0.0 and NaN != NaN, which is not what a file format promises.
void expect_same_bytes(const torch::Tensor& expected, const torch::Tensor& actual, const std::string& name) {
  ASSERT_EQ(expected.scalar_type(), actual.scalar_type()) << name;
  ASSERT_EQ(expected.sizes(), actual.sizes()) << name;
  const torch::Tensor a = expected.contiguous();
  const torch::Tensor b = actual.contiguous();
  EXPECT_EQ(std::memcmp(a.data_ptr(), b.data_ptr(), a.nbytes()), 0) << name;
}

TEST_F(SafetensorsTest, RoundTripsEveryDtypeExactly) {
  const fs::path path = dir_ / "model.safetensors";
  const auto tensors = every_dtype();
  save_safetensors(path, tensors);
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
  const SafetensorsFile file = load_safetensors(path);
  ASSERT_EQ(file.tensors.size(), tensors.size());
  for (const auto& [name, tensor] : tensors) {
    ASSERT_TRUE(file.tensors.contains(name)) << name;
    expect_same_bytes(tensor, file.tensors.at(name), name);
    EXPECT_TRUE(file.tensors.at(name).device().is_cpu());
  }
  EXPECT_EQ(file.metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
}

TEST_F(SafetensorsTest, CopiesStridedInputsToContiguousData) {
  const fs::path path = dir_ / "strided.safetensors";
  const torch::Tensor base = torch::arange(12, torch::kFloat32).reshape({3, 4});
  save_safetensors(path, {{"t", base.t()}, {"slice", base.index({torch::indexing::Slice(), 1})}});
  const SafetensorsFile file = load_safetensors(path);
  EXPECT_TRUE(torch::equal(file.tensors.at("t"), base.t()));
  EXPECT_TRUE(torch::equal(file.tensors.at("slice"), torch::tensor({1.0F, 5.0F, 9.0F})));
}

TEST_F(SafetensorsTest, RoundTripsMetadata) {
  const fs::path path = dir_ / "meta.safetensors";
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {"step", "1200"}, {"note", "quotes \" and \\ and \u00e9 and newline\n"}, {"empty", ""}};
  save_safetensors(path, {{"w", torch::ones({2})}}, metadata);
  EXPECT_EQ(load_safetensors(path).metadata, metadata);

  save_safetensors(path, {{"w", torch::ones({2})}}, /*metadata=*/{});
  EXPECT_TRUE(load_safetensors(path).metadata.empty());
}

TEST_F(SafetensorsTest, RoundTripsZeroElementTensors) {
  const fs::path path = dir_ / "empty.safetensors";
  save_safetensors(path, {{"a", torch::ones({2})},
                          {"none", torch::empty({0, 3}, torch::kFloat32)},
                          {"also_none", torch::empty({4, 0}, torch::kInt64)},
                          {"b", torch::full({1}, 7, torch::kInt32)}});
  const SafetensorsFile file = load_safetensors(path);
  EXPECT_EQ(file.tensors.at("none").sizes(), (std::vector<std::int64_t>{0, 3}));
  EXPECT_EQ(file.tensors.at("also_none").sizes(), (std::vector<std::int64_t>{4, 0}));
  EXPECT_EQ(file.tensors.at("also_none").scalar_type(), torch::kInt64);
  EXPECT_EQ(file.tensors.at("b").item<std::int32_t>(), 7);
}

TEST_F(SafetensorsTest, WritesTheReferenceLayout) {
  const fs::path path = dir_ / "layout.safetensors";
  save_safetensors(path,
                   {{"z_first", torch::ones({3}, torch::kInt8)}, {"a_second", torch::ones({1}, torch::kFloat32)}});
  std::ifstream in(path, std::ios::binary);
  std::ostringstream contents;
  contents << in.rdbuf();
  const std::string bytes = contents.str();
  std::uint64_t length = 0;
  for (int i = 7; i >= 0; --i) length = (length << 8) | static_cast<std::uint8_t>(bytes[static_cast<std::size_t>(i)]);
  EXPECT_EQ(length % 8, 0U);
  const std::string expected =
      R"({"__metadata__":{"format":"pt"},"z_first":{"dtype":"I8","shape":[3],"data_offsets":[0,3]},)"
      R"("a_second":{"dtype":"F32","shape":[1],"data_offsets":[3,7]}})";
  ASSERT_GE(length, expected.size());
  EXPECT_LT(length - expected.size(), 8U);
  EXPECT_EQ(bytes.substr(8, length), expected + std::string(length - expected.size(), ' '));
  EXPECT_EQ(bytes.size(), 8 + length + 7);
}

TEST_F(SafetensorsTest, ReadsAHandBuiltFile) {
  const fs::path path = dir_ / "hand.safetensors";
  // F32 [1.0, -2.0] = 00 00 80 3F, 00 00 00 C0; I16 [[258, -1]] = 02 01, FF FF; BOOL [1, 0].
  write_raw(path,
            R"({"b":{"dtype":"I16","shape":[1,2],"data_offsets":[8,12]},)"
            R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
            R"("flags":{"dtype":"BOOL","shape":[2],"data_offsets":[12,14]},)"
            R"("__metadata__":{"source":"hand"}})",
            {0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0, 0x02, 0x01, 0xFF, 0xFF, 0x01, 0x00});
  const SafetensorsFile file = load_safetensors(path);
  ASSERT_EQ(file.tensors.size(), 3U);
  EXPECT_TRUE(torch::equal(file.tensors.at("a"), torch::tensor({1.0F, -2.0F})));
  EXPECT_TRUE(torch::equal(file.tensors.at("b"), torch::tensor({{258, -1}}, torch::kInt16)));
  EXPECT_TRUE(torch::equal(file.tensors.at("flags"), torch::tensor({true, false})));
  EXPECT_EQ(file.metadata.at("source"), "hand");
}

TEST_F(SafetensorsTest, ReadsMisalignedTensorsAsCopies) {
  const fs::path path = dir_ / "misaligned.safetensors";
  std::string header = R"({"u":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                       R"("d":{"dtype":"F64","shape":[1],"data_offsets":[1,9]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  // 2.0 as a little-endian double is 00 00 00 00 00 00 00 40; it starts at buffer byte 1.
  write_raw(path, header, {0x07, 0, 0, 0, 0, 0, 0, 0, 0x40});
  const SafetensorsFile file = load_safetensors(path);
  EXPECT_EQ(file.tensors.at("u").item<std::uint8_t>(), 7);
  EXPECT_EQ(file.tensors.at("d").item<double>(), 2.0);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(file.tensors.at("d").data_ptr()) % 8, 0U);
}

TEST_F(SafetensorsTest, TensorsOutliveTheFileAndWritesStayInMemory) {
  const fs::path path = dir_ / "mapped.safetensors";
  save_safetensors(path, {{"w", torch::arange(4, torch::kFloat32)}});
  torch::Tensor kept;
  {
    SafetensorsFile file = load_safetensors(path);
    kept = file.tensors.at("w");
  }
  // The writer renames a new file into place; the old mapping keeps the old contents.
  save_safetensors(path, {{"w", torch::zeros({4})}});
  EXPECT_TRUE(torch::equal(kept, torch::arange(4, torch::kFloat32)));
  kept.mul_(2);
  EXPECT_TRUE(torch::equal(kept, torch::arange(4, torch::kFloat32) * 2));
  EXPECT_TRUE(torch::equal(load_safetensors(path).tensors.at("w"), torch::zeros({4})));

  SafetensorsFile fresh = load_safetensors(path);
  fresh.tensors.at("w").add_(1);
  EXPECT_TRUE(torch::equal(load_safetensors(path).tensors.at("w"), torch::zeros({4})))
      << "writing to a loaded tensor changed the file";
}

TEST_F(SafetensorsTest, WriterRejectsBadInput) {
  const fs::path path = dir_ / "bad.safetensors";
  expect_save_error(path, {{"a", torch::ones({1})}, {"a", torch::ones({1})}}, "tensor 'a': the name is given twice");
  expect_save_error(path, {{"__metadata__", torch::ones({1})}}, "reserved");
  expect_save_error(path, {{"", torch::ones({1})}}, "empty name");
  expect_save_error(path, {{"u", torch::Tensor()}}, "tensor 'u': the tensor is undefined");
  expect_save_error(path, {{"c", torch::ones({1}, torch::kComplexFloat)}},
                    "tensor 'c': dtype ComplexFloat cannot be stored");
  expect_save_error(path, {{"bad\xff", torch::ones({1})}}, "not valid UTF-8");
  EXPECT_FALSE(fs::exists(path));
  try {
    save_safetensors(dir_ / "missing_dir" / "x.safetensors", {{"a", torch::ones({1})}});
    ADD_FAILURE() << "saving into a missing directory succeeded";
  } catch (const SafetensorsError& e) {
    EXPECT_NE(std::string(e.what()).find("missing_dir/x.safetensors.tmp: cannot create"), std::string::npos)
        << e.what();
  }
}

TEST_F(SafetensorsTest, RejectsShortAndOversizedFiles) {
  const fs::path path = dir_ / "bad.safetensors";
  {
    std::ofstream out(path, std::ios::binary);
    out << "abc";
  }
  expect_load_error(path, {"file is 3 bytes, shorter than the 8-byte header length"});
  write_raw(path, "{}", {}, /*header_length_field=*/100);
  expect_load_error(path, {"header length 100 runs past the end of the 10-byte file"});
  write_raw(path, "{}", {}, /*header_length_field=*/200'000'000);
  expect_load_error(path, {"header length 200000000 is larger than the 100000000-byte limit"});
  write_raw(path, "{}", {}, /*header_length_field=*/std::numeric_limits<std::uint64_t>::max() - 1);
  expect_load_error(path, {"is larger than the"});
  expect_load_error(dir_ / "absent.safetensors", {"cannot open"});
  expect_load_error(dir_, {"is not a regular file"});
}

TEST_F(SafetensorsTest, RejectsHeadersThatAreNotJsonObjects) {
  const fs::path path = dir_ / "bad.safetensors";
  write_raw(path, R"({"a": {"dtype": "F32",)");
  expect_load_error(path, {"header is not valid JSON"});
  write_raw(path, "[1, 2]");
  expect_load_error(path, {"header is a JSON array, not an object"});
  write_raw(path, R"({"a": [1, 2]})");
  expect_load_error(path, {"tensor 'a': entry is a JSON array, not an object"});
  write_raw(path, R"({"__metadata__": ["x"]})");
  expect_load_error(path, {"'__metadata__' is a JSON array, not an object of strings"});
  write_raw(path, R"({"__metadata__": {"step": 3}})");
  expect_load_error(path, {"'__metadata__' entry 'step' is a JSON number, not a string"});
}

TEST_F(SafetensorsTest, RejectsWrongFieldTypes) {
  const fs::path path = dir_ / "bad.safetensors";
  const std::vector<std::uint8_t> data(8, 0);
  write_raw(path, R"({"a": {"dtype": 4, "shape": [2], "data_offsets": [0, 8]}})", data);
  expect_load_error(path, {"tensor 'a': 'dtype' is missing or not a string"});
  write_raw(path, R"({"a": {"shape": [2], "data_offsets": [0, 8]}})", data);
  expect_load_error(path, {"tensor 'a': 'dtype' is missing or not a string"});
  write_raw(path, R"({"a": {"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}})", data);
  expect_load_error(path, {"tensor 'a': 'shape' is missing or not an array"});
  write_raw(path, R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": {"begin": 0}}})", data);
  expect_load_error(path, {"tensor 'a': 'data_offsets' is missing or not an array of two integers"});
}

TEST_F(SafetensorsTest, RejectsUnknownDtypes) {
  const fs::path path = dir_ / "bad.safetensors";
  write_raw(path, R"({"a": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}})", {0});
  expect_load_error(path, {"tensor 'a': unknown dtype 'F8_E4M3'", "supported: F64, F32, F16, BF16"});
}

TEST_F(SafetensorsTest, RejectsBadShapes) {
  const fs::path path = dir_ / "bad.safetensors";
  write_raw(path, R"({"a": {"dtype": "U8", "shape": [-1], "data_offsets": [0, 1]}})", {0});
  expect_load_error(path, {"tensor 'a': shape entry -1 is negative"});
  write_raw(path, R"({"a": {"dtype": "U8", "shape": [1.5], "data_offsets": [0, 1]}})", {0});
  expect_load_error(path, {"tensor 'a': shape entry 1.5 is not a non-negative integer"});
  write_raw(path, R"({"a": {"dtype": "U8", "shape": ["1"], "data_offsets": [0, 1]}})", {0});
  expect_load_error(path, {"tensor 'a': shape entry \"1\" is not a non-negative integer"});
}

TEST_F(SafetensorsTest, RejectsBadDataOffsets) {
  const fs::path path = dir_ / "bad.safetensors";
  const std::vector<std::uint8_t> data(8, 0);
  write_raw(path, R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0]}})", data);
  expect_load_error(path, {"tensor 'a': 'data_offsets' is missing or not an array of two integers"});
  write_raw(path, R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4, 8]}})", data);
  expect_load_error(path, {"tensor 'a': 'data_offsets' is missing or not an array of two integers"});
  write_raw(path, R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, "8"]}})", data);
  expect_load_error(path, {"tensor 'a': data offset \"8\" is not a non-negative integer"});
  write_raw(path, R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]}})", data);
  expect_load_error(path, {"tensor 'a': data offset -8 is negative"});
  write_raw(path, R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", data);
  expect_load_error(path, {"tensor 'a': data_offsets [8,0] decrease"});
}

TEST_F(SafetensorsTest, RejectsOffsetsOutsideTheBuffer) {
  const fs::path path = dir_ / "bad.safetensors";
  write_raw(path, R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", std::vector<std::uint8_t>(8, 0));
  expect_load_error(path, {"tensor 'a': data_offsets [4,12] lie outside the data buffer of 8 bytes"});
}

TEST_F(SafetensorsTest, RejectsSizeMismatches) {
  const fs::path path = dir_ / "bad.safetensors";
  write_raw(path, R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}})", std::vector<std::uint8_t>(8, 0));
  expect_load_error(path, {"tensor 'a': data_offsets [0,4] span 4 bytes, but dtype F32 with shape [2] needs 8"});
}

TEST_F(SafetensorsTest, RejectsOverlappingTensors) {
  const fs::path path = dir_ / "bad.safetensors";
  write_raw(path,
            R"({"b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},)"
            R"( "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})",
            std::vector<std::uint8_t>(12, 0));
  expect_load_error(path, {"tensors 'a' (bytes [0, 8)) and 'b' (bytes [4, 12)) overlap"});
  write_raw(path,
            R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
            R"( "e": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]}})",
            std::vector<std::uint8_t>(8, 0));
  expect_load_error(path, {"tensors 'a' (bytes [0, 8)) and 'e' (bytes [4, 4)) overlap"});
}

TEST_F(SafetensorsTest, RejectsDuplicateNamesAndKeys) {
  const fs::path path = dir_ / "bad.safetensors";
  const std::vector<std::uint8_t> data(8, 0);
  write_raw(path,
            R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
            R"( "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
            data);
  expect_load_error(path, {"header has two entries named 'a'"});
  write_raw(path, R"({"a": {"dtype": "F32", "dtype": "I32", "shape": [1], "data_offsets": [0, 4]}})", data);
  expect_load_error(path, {"header repeats key 'dtype' inside the entry of 'a'"});
}

TEST_F(SafetensorsTest, RejectsByteCountOverflow) {
  const fs::path path = dir_ / "bad.safetensors";
  write_raw(path, R"({"a": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}})");
  expect_load_error(path, {"tensor 'a': total byte count of shape [4294967296,4294967296] overflows"});
  write_raw(path, R"({"a": {"dtype": "U8", "shape": [9223372036854775808], "data_offsets": [0, 0]}})");
  expect_load_error(path, {"tensor 'a': total byte count", "overflows"});
}

TEST_F(SafetensorsTest, RejectsBoolBytesOtherThanZeroAndOne) {
  const fs::path path = dir_ / "bad.safetensors";
  write_raw(path, R"({"a": {"dtype": "BOOL", "shape": [3], "data_offsets": [0, 3]}})", {1, 0, 2});
  expect_load_error(path, {"tensor 'a': BOOL element 2 has byte value 2"});
}

TEST_F(SafetensorsTest, ReportsAnEmptyFileAsTooShort) {
  const fs::path path = dir_ / "empty.safetensors";
  { std::ofstream create(path); }
  expect_load_error(path, {"file is 0 bytes, shorter than the 8-byte header length"});
}

TEST(ParseSafetensors, DescribesTensorsInByteOrderWithOffsetsFromTheFileStart) {
  const std::string header = R"({"b":{"dtype":"I16","shape":[1,2],"data_offsets":[8,12]},)"
                             R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("e":{"dtype":"BF16","shape":[0,5],"data_offsets":[12,12]},)"
                             R"("__metadata__":{"format":"pt"}})";
  const std::string file = raw_file(header, std::vector<std::uint8_t>(12, 0));
  const SafetensorsHeader parsed = parse_safetensors(as_bytes(file), "mem");
  ASSERT_EQ(parsed.tensors.size(), 3U);
  const std::uint64_t start = 8 + header.size();
  EXPECT_EQ(parsed.tensors[0].name, "a");
  EXPECT_EQ(parsed.tensors[0].dtype, torch::kFloat32);
  EXPECT_EQ(parsed.tensors[0].shape, (std::vector<std::int64_t>{2}));
  EXPECT_EQ(parsed.tensors[0].begin, start);
  EXPECT_EQ(parsed.tensors[0].end, start + 8);
  EXPECT_EQ(parsed.tensors[1].name, "b");
  EXPECT_EQ(parsed.tensors[1].dtype, torch::kInt16);
  EXPECT_EQ(parsed.tensors[1].shape, (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(parsed.tensors[1].begin, start + 8);
  EXPECT_EQ(parsed.tensors[2].name, "e");
  EXPECT_EQ(parsed.tensors[2].dtype, torch::kBFloat16);
  EXPECT_EQ(parsed.tensors[2].begin, parsed.tensors[2].end);
  EXPECT_EQ(parsed.metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
  EXPECT_EQ(safetensors_dtype_name(torch::kBFloat16), "BF16");
  EXPECT_EQ(safetensors_dtype_name(torch::kComplexFloat), std::nullopt);
}

struct MalformedCase {
  std::string what;
  std::string file;
  std::vector<std::string> fragments;  // besides the source name, which every message starts with
};

std::string entry(std::string_view name, std::string_view body) { return fmt::format(R"("{}": {{{}}})", name, body); }

// One file per rejection rule; where the problem lies in a tensor's entry, the message must name the tensor.
std::vector<MalformedCase> malformed_cases() {
  const std::vector<std::uint8_t> eight(8, 0);
  const std::string ok_a = entry("a", R"("dtype": "F32", "shape": [2], "data_offsets": [0, 8])");
  return {
      {"short file", "abc", {"file is 3 bytes, shorter than the 8-byte header length"}},
      {"header past the end", raw_file("{}", {}, 100), {"header length 100 runs past the end of the 10-byte file"}},
      {"header over the limit", raw_file("{}", {}, 1ULL << 40), {"is larger than the 100000000-byte limit"}},
      {"not JSON", raw_file(R"({"a": {"dtype": "F32",)"), {"header is not valid JSON (in the entry of 'a')"}},
      {"not JSON after a tensor",
       raw_file("{" + ok_a + R"(, "bad": {"dtype": F32}})", eight),
       {"header is not valid JSON (in the entry of 'bad')"}},
      {"not an object", raw_file("[1, 2]"), {"header is a JSON array, not an object"}},
      {"entry not an object", raw_file(R"({"a": 3})"), {"tensor 'a': entry is a JSON number, not an object"}},
      {"dtype not a string",
       raw_file("{" + entry("a", R"("dtype": 4, "shape": [2], "data_offsets": [0, 8])") + "}", eight),
       {"tensor 'a': 'dtype' is missing or not a string"}},
      {"no shape",
       raw_file("{" + entry("a", R"("dtype": "F32", "data_offsets": [0, 8])") + "}", eight),
       {"tensor 'a': 'shape' is missing or not an array"}},
      {"offsets not an array",
       raw_file("{" + entry("a", R"("dtype": "F32", "shape": [2], "data_offsets": 8)") + "}", eight),
       {"tensor 'a': 'data_offsets' is missing or not an array of two integers [begin, end]"}},
      {"three offsets",
       raw_file("{" + entry("a", R"("dtype": "F32", "shape": [2], "data_offsets": [0, 4, 8])") + "}", eight),
       {"tensor 'a': 'data_offsets' is missing or not an array of two integers [begin, end]"}},
      {"unknown dtype",
       raw_file("{" + entry("a", R"("dtype": "F4", "shape": [2], "data_offsets": [0, 1])") + "}", eight),
       {"tensor 'a': unknown dtype 'F4' (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)"}},
      {"negative dim",
       raw_file("{" + entry("a", R"("dtype": "U8", "shape": [-2], "data_offsets": [0, 2])") + "}", eight),
       {"tensor 'a': shape entry -2 is negative"}},
      {"fractional dim",
       raw_file("{" + entry("a", R"("dtype": "U8", "shape": [2.0], "data_offsets": [0, 2])") + "}", eight),
       {"tensor 'a': shape entry 2.0 is not a non-negative integer"}},
      {"overflowing dims",
       raw_file("{" + entry("a", R"("dtype": "BF16", "shape": [4611686018427387904, 2], "data_offsets": [0, 0])") +
                "}"),
       {"tensor 'a': total byte count of shape [4611686018427387904,2] overflows"}},
      {"dim past uint64",
       raw_file("{" + entry("a", R"("dtype": "U8", "shape": [1e30], "data_offsets": [0, 0])") + "}"),
       {"tensor 'a': shape entry 1e+30 is not a non-negative integer"}},
      {"begin after end",
       raw_file("{" + entry("a", R"("dtype": "F32", "shape": [2], "data_offsets": [8, 0])") + "}", eight),
       {"tensor 'a': data_offsets [8,0] decrease (begin after end)"}},
      {"negative offset",
       raw_file("{" + entry("a", R"("dtype": "F32", "shape": [2], "data_offsets": [-8, 0])") + "}", eight),
       {"tensor 'a': data offset -8 is negative"}},
      {"offsets out of bounds",
       raw_file("{" + entry("a", R"("dtype": "F32", "shape": [2], "data_offsets": [4, 12])") + "}", eight),
       {"tensor 'a': data_offsets [4,12] lie outside the data buffer of 8 bytes"}},
      {"huge offsets",
       raw_file(
           "{" +
               entry("a",
                     R"("dtype": "U8", "shape": [0], "data_offsets": [18446744073709551615, 18446744073709551615])") +
               "}",
           eight),
       {"tensor 'a': data_offsets [18446744073709551615,18446744073709551615] lie outside"}},
      {"byte count mismatch",
       raw_file("{" + entry("a", R"("dtype": "F32", "shape": [1], "data_offsets": [0, 8])") + "}", eight),
       {"tensor 'a': data_offsets [0,8] span 8 bytes, but dtype F32 with shape [1] needs 4"}},
      {"overlap",
       raw_file("{" + entry("b", R"("dtype": "F32", "shape": [1], "data_offsets": [4, 8])") + ", " +
                    entry("a", R"("dtype": "F32", "shape": [2], "data_offsets": [0, 8])") + "}",
                eight),
       {"tensors 'a' (bytes [0, 8)) and 'b' (bytes [4, 8)) overlap"}},
      {"duplicate tensor", raw_file("{" + ok_a + ", " + ok_a + "}", eight), {"header has two entries named 'a'"}},
      {"duplicate key in an entry",
       raw_file("{" + entry("a", R"("dtype": "F32", "shape": [2], "shape": [2], "data_offsets": [0, 8])") + "}", eight),
       {"header repeats key 'shape' inside the entry of 'a'"}},
      {"metadata not an object",
       raw_file("{" + ok_a + R"(, "__metadata__": "pt"})", eight),
       {"'__metadata__' is a JSON string, not an object of strings"}},
      {"non-string metadata",
       raw_file("{" + ok_a + R"(, "__metadata__": {"step": 3}})", eight),
       {"'__metadata__' entry 'step' is a JSON number, not a string"}},
      {"bool bytes",
       raw_file("{" + entry("a", R"("dtype": "BOOL", "shape": [2], "data_offsets": [0, 2])") + "}", {0, 7}),
       {"tensor 'a': BOOL element 1 has byte value 7, not 0 or 1"}},
      {"deep nesting",
       raw_file(R"({"a": {"shape": )" + std::string(100, '[') + std::string(100, ']') + "}}"),
       {"header nests deeper than 8 levels (in the entry of 'a')"}},
      {"invalid UTF-8", raw_file("{\"a\xff\": 1}"), {"header is not valid JSON"}},
  };
}

TEST(ParseSafetensors, RejectsEveryMalformedCaseNamingTheFileAndTheTensor) {
  for (const MalformedCase& c : malformed_cases()) {
    try {
      parse_safetensors(as_bytes(c.file), "/models/in-memory.safetensors");
      ADD_FAILURE() << c.what << ": parsed; expected an error containing " << c.fragments.front();
    } catch (const SafetensorsError& e) {
      const std::string message = e.what();
      EXPECT_TRUE(message.starts_with("/models/in-memory.safetensors: ")) << c.what << ": " << message;
      for (const std::string& fragment : c.fragments) {
        EXPECT_NE(message.find(fragment), std::string::npos)
            << c.what << ": missing '" << fragment << "' in " << message;
      }
    }
  }
}

// The writer's bytes decoded by Python's json and struct modules, which share no code with the reader above.
constexpr std::string_view kPythonReader = R"PY(
import json, struct, sys
data = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", data[:8])
assert n % 8 == 0, "header length is not a multiple of 8"
header = json.loads(data[8:8 + n].decode("utf-8"))
buffer = data[8 + n:]
codes = {"F64": "d", "F32": "f", "F16": "e", "I64": "q", "I32": "i", "I16": "h", "I8": "b", "U8": "B", "BOOL": "?"}
out = {"__metadata__": header.pop("__metadata__", {}), "order": list(header)}
end_of_previous = 0
for name, info in header.items():
    begin, end = info["data_offsets"]
    assert begin == end_of_previous, f"{name} does not follow the previous tensor"
    end_of_previous = end
    count = 1
    for d in info["shape"]:
        count *= d
    raw = buffer[begin:end]
    if info["dtype"] == "BF16":
        halves = struct.unpack(f"<{count}H", raw)
        values = [struct.unpack("<f", struct.pack("<I", h << 16))[0] for h in halves]
    else:
        values = list(struct.unpack(f"<{count}{codes[info['dtype']]}", raw))
    out[name] = {"dtype": info["dtype"], "shape": info["shape"], "values": values}
assert end_of_previous == len(buffer), "bytes after the last tensor"
print(json.dumps(out))
)PY";

TEST_F(SafetensorsTest, PythonStandardLibraryReadsTheWriterOutput) {
  const fs::path python = GRPO_PYTHON;
  if (python.empty() || !fs::exists(python)) {
    GTEST_SKIP() << "no Python interpreter at GRPO_PYTHON='" << GRPO_PYTHON << "'";
  }
  const fs::path path = dir_ / "cross.safetensors";
  const auto tensors = every_dtype();
  save_safetensors(path, tensors, {{"format", "pt"}, {"origin", "grpo-cpp"}});
  const fs::path script = dir_ / "reader.py";
  std::ofstream(script) << kPythonReader;

  const std::string command = fmt::format("'{}' '{}' '{}' 2>&1", python.string(), script.string(), path.string());
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr) << command;
  std::string output;
  std::array<char, 4096> chunk{};
  while (std::fgets(chunk.data(), static_cast<int>(chunk.size()), pipe) != nullptr) output += chunk.data();
  ASSERT_EQ(::pclose(pipe), 0) << command << "\n" << output;

  const nlohmann::json read = nlohmann::json::parse(output);
  EXPECT_EQ(read["__metadata__"], (nlohmann::json{{"format", "pt"}, {"origin", "grpo-cpp"}}));
  std::vector<std::string> order;
  for (const auto& [name, tensor] : tensors) order.push_back(name);
  EXPECT_EQ(read["order"].get<std::vector<std::string>>(), order);
  for (const auto& [name, tensor] : tensors) {
    const nlohmann::json& entry = read[name];
    EXPECT_EQ(entry["shape"].get<std::vector<std::int64_t>>(), tensor.sizes().vec()) << name;
    const torch::Tensor flat = tensor.reshape({-1});
    ASSERT_EQ(entry["values"].size(), static_cast<std::size_t>(flat.numel())) << name;
    for (std::int64_t i = 0; i < flat.numel(); ++i) {
      const nlohmann::json& value = entry["values"][static_cast<std::size_t>(i)];
      if (tensor.is_floating_point()) {
        EXPECT_EQ(value.get<double>(), flat[i].item<double>()) << name << "[" << i << "]";
      } else if (tensor.scalar_type() == torch::kBool) {
        EXPECT_EQ(value.get<bool>(), flat[i].item<bool>()) << name << "[" << i << "]";
      } else {
        EXPECT_EQ(value.get<std::int64_t>(), flat[i].item<std::int64_t>()) << name << "[" << i << "]";
      }
    }
  }
}

}  // namespace
}  // namespace grpo::policy
