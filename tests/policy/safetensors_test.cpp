// Tests of policy/safetensors: exact round trips of every dtype, files built byte by byte in the test, one malformed
// file per rejection rule, and the writer's output read back by an independent Python (standard library) reader.
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

// Writes a safetensors file by hand: 8-byte little-endian header length, header text, data bytes.
void write_raw(const fs::path& path, std::string_view header, const std::vector<std::uint8_t>& data = {},
               std::uint64_t header_length_field = std::numeric_limits<std::uint64_t>::max()) {
  const std::uint64_t length =
      header_length_field == std::numeric_limits<std::uint64_t>::max() ? header.size() : header_length_field;
  std::ofstream out(path, std::ios::binary);
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((length >> (8 * i)) & 0xFF));
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
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
