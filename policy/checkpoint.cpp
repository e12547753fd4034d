// Hugging Face layout checkpoints of the policy (see checkpoint.h).
#include "policy/checkpoint.h"

#include <charconv>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "policy/checkpoint_weights.h"
#include "policy/safetensors.h"

namespace grpo::policy {
namespace fs = std::filesystem;
namespace {

void write_json(const fs::path& file, const nlohmann::json& json) {
  std::ofstream out(file);
  out << json.dump(2) << "\n";
  if (!out) throw CheckpointError(fmt::format("cannot write {}", file.string()));
}

nlohmann::json read_json(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw CheckpointError(fmt::format("cannot read {}", file.string()));
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& error) {
    throw CheckpointError(fmt::format("{}: invalid JSON: {}", file.string(), error.what()));
  }
}

// generation_config.json's eos_token_id: an id, a list of ids, or absent.
std::vector<std::int64_t> generation_eos_ids(const nlohmann::json& generation, const fs::path& file) {
  if (!generation.is_object() || !generation.contains("eos_token_id") || generation["eos_token_id"].is_null()) return {};
  const auto& value = generation["eos_token_id"];
  std::vector<std::int64_t> ids;
  if (value.is_number_integer()) ids.push_back(value.get<std::int64_t>());
  if (value.is_array()) {
    for (const auto& id : value) {
      if (id.is_number_integer()) ids.push_back(id.get<std::int64_t>());
    }
  }
  if (ids.empty()) throw CheckpointError(fmt::format("{}: eos_token_id must be an integer or a list of integers, got {}", file.string(), value.dump()));
  return ids;
}

std::string dtype_name(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat32: return "float32";
    case torch::kBFloat16: return "bfloat16";
    case torch::kFloat16: return "float16";
    default: return c10::toString(dtype);
  }
}

// The layer of a "model.layers.<n>.<...>" tensor name.
std::optional<std::int64_t> layer_of(std::string_view name) {
  constexpr std::string_view kPrefix = "model.layers.";
  if (!name.starts_with(kPrefix)) return std::nullopt;
  name.remove_prefix(kPrefix.size());
  std::int64_t layer = 0;
  const auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), layer);
  if (error != std::errc() || end == name.data() + name.size() || *end != '.') return std::nullopt;
  return layer;
}

// "0..27" or "0, 2..5, 7".
std::string format_ranges(const std::set<std::int64_t>& values) {
  std::vector<std::string> ranges;
  for (auto it = values.begin(); it != values.end();) {
    auto last = it;
    while (std::next(last) != values.end() && *std::next(last) == *last + 1) ++last;
    ranges.push_back(*last == *it ? std::to_string(*it) : fmt::format("{}..{}", *it, *last));
    it = std::next(last);
  }
  return fmt::format("{}", fmt::join(ranges, ", "));
}

// config.json's num_hidden_layers against the layers the tensors belong to, first: a config claiming 100000 layers
// must fail here, not after 100000 layers of parameter descriptions (or a model) were made.
void check_layer_count(const ModelConfig& config, const SafetensorsFile& weights, const fs::path& dir) {
  std::set<std::int64_t> layers;
  for (const auto& item : weights.tensors) {
    if (const auto layer = layer_of(item.first)) layers.insert(*layer);
  }
  if (!layers.empty() && *layers.rbegin() + 1 == config.num_hidden_layers) return;
  const auto files = fs::exists(dir / kWeightsFileName) ? std::string(kWeightsFileName)
                                                        : fmt::format("the shards of {}", kWeightsIndexFileName);
  throw CheckpointError(
      fmt::format("{}: config.json says num_hidden_layers = {} but {} {}", dir.string(), config.num_hidden_layers,
                  files, layers.empty() ? "has no model.layers.* tensors" : "has layers " + format_ranges(layers)));
}

// With tie_word_embeddings transformers still loads a stored lm_head.weight into the output projection (the tie
// happens before the weights are loaded), so one that differs from the embedding would give other log-probs there.
void check_tied_head(const SafetensorsFile& weights, const fs::path& dir) {
  const auto head = weights.tensors.find("lm_head.weight");
  if (head == weights.tensors.end()) return;
  const auto& embedding = weights.tensors.at("model.embed_tokens.weight");
  const auto& stored = head->second;
  bool same = stored.sizes() == embedding.sizes();
  if (same && stored.scalar_type() == embedding.scalar_type()) {
    same = std::memcmp(stored.const_data_ptr(), embedding.const_data_ptr(), stored.nbytes()) == 0;
  } else if (same) {
    same = torch::equal(stored.to(torch::kFloat32), embedding.to(torch::kFloat32));
  }
  if (!same) {
    throw CheckpointError(
        fmt::format("{}: config.json sets tie_word_embeddings but the checkpoint's lm_head.weight differs from "
                    "model.embed_tokens.weight; set tie_word_embeddings to false",
                    checkpoint_file_of(dir, "lm_head.weight").string()));
  }
}

// Checks the checkpoint's tensors (names, shapes, dtypes: header facts, no data read) against the parameters
// config.json implies, before the model is allocated, so that a config claiming more than the files hold is an
// error naming the file, the tensor and the config field, not an out-of-memory. A tied checkpoint may carry
// lm_head.weight only as a copy of the embedding.
void check_weights_match_config(const ModelConfig& config, const SafetensorsFile& weights, const fs::path& dir) {
  check_layer_count(config, weights, dir);
  const auto file_of = [&](const std::string& name) { return checkpoint_file_of(dir, name).string(); };
  // Whether config.json's attention_bias decides the attention biases (Llama, Qwen3; Qwen2's are fixed), for hints.
  const bool follows_attention_bias =
      config.qkv_bias == config.attention_bias && config.o_bias == config.attention_bias;
  const auto specs = parameter_specs(config);
  std::set<std::string_view> expected;
  for (const auto& spec : specs) {
    expected.insert(spec.name);
    const auto found = weights.tensors.find(spec.name);
    if (found == weights.tensors.end()) {
      std::string why;
      if (spec.name == "lm_head.weight") why = " (config.json's tie_word_embeddings is false)";
      if (spec.name.ends_with("_proj.bias") && follows_attention_bias) why = " (config.json's attention_bias is true)";
      throw CheckpointError(fmt::format("{}: tensor '{}' is missing; {} with this config.json has it{}",
                                        file_of(spec.name), spec.name, config.architecture, why));
    }
    const auto& tensor = found->second;
    if (tensor.sizes() != c10::IntArrayRef(spec.shape)) {
      throw CheckpointError(fmt::format("{}: tensor '{}' has shape [{}], config.json implies [{}] ({})",
                                        file_of(spec.name), spec.name, fmt::join(tensor.sizes(), ", "),
                                        fmt::join(spec.shape, ", "), fmt::join(spec.dimensions, ", ")));
    }
    const auto dtype = tensor.scalar_type();
    if (dtype != torch::kFloat32 && dtype != torch::kBFloat16 && dtype != torch::kFloat16) {
      throw CheckpointError(fmt::format("{}: tensor '{}' has dtype {}; weights must be F32, BF16 or F16",
                                        file_of(spec.name), spec.name, c10::toString(dtype)));
    }
  }
  for (const auto& item : weights.tensors) {
    const auto& name = item.first;
    if (expected.contains(name) || (name == "lm_head.weight" && config.tie_word_embeddings)) continue;
    const bool attention_bias = name.ends_with("_proj.bias") && name.find(".self_attn.") != std::string::npos;
    const auto why = attention_bias && follows_attention_bias ? " (config.json's attention_bias is false)" : "";
    throw CheckpointError(fmt::format("{}: unexpected tensor '{}' for {} with this config.json{}", file_of(name), name,
                                      config.architecture, why));
  }
  if (config.tie_word_embeddings) check_tied_head(weights, dir);
}

// Copies the checked tensors into the model's parameters, converting dtype.
void copy_weights(LlamaForCausalLM& model, const SafetensorsFile& file, const fs::path& dir) {
  std::vector<std::pair<std::string, torch::Tensor>> destinations;
  for (auto& item : model->named_parameters()) destinations.emplace_back(item.key(), item.value());
  try {
    copy_weights_into(file, destinations, dir.string());  // the unused names were judged by check_weights_match_config
  } catch (const SafetensorsError& error) {
    throw CheckpointError(error.what());
  }
}

}  // namespace

std::vector<std::int64_t> encode_prompt(const Policy& policy, std::string_view text) {
  auto ids = policy.tokenizer->encode(text);
  if (const auto bos = policy.tokenizer->prompt_bos_id(); bos && (ids.empty() || ids.front() != *bos)) ids.insert(ids.begin(), *bos);
  return ids;
}

Policy make_policy(LlamaForCausalLM model, std::shared_ptr<const Tokenizer> tokenizer) {
  Policy policy{std::move(model), std::move(tokenizer), {}, 0, nullptr};
  const auto& config = policy.model->config();
  policy.stop_token_ids = config.eos_token_ids;
  if (policy.stop_token_ids.empty() && config.eos_token_id >= 0) policy.stop_token_ids.push_back(config.eos_token_id);
  if (const auto eos = policy.tokenizer->eos_id();
      eos && std::find(policy.stop_token_ids.begin(), policy.stop_token_ids.end(), *eos) == policy.stop_token_ids.end()) {
    policy.stop_token_ids.push_back(*eos);
  }
  if (const auto pad = policy.tokenizer->pad_id()) {
    policy.pad_token_id = *pad;
  } else if (config.pad_token_id >= 0) {
    policy.pad_token_id = config.pad_token_id;
  } else if (!policy.stop_token_ids.empty()) {
    policy.pad_token_id = policy.stop_token_ids.front();
  }
  return policy;
}

void save_policy(const fs::path& dir, const Policy& policy, const SaveOptions& options) {
  const fs::path staging = dir.string() + ".tmp";
  std::error_code ignored;
  fs::remove_all(staging, ignored);
  fs::create_directories(staging);

  auto config = policy.model->config().to_json();
  config["torch_dtype"] = dtype_name(policy.model->dtype());
  write_json(staging / "config.json", config);
  auto generation = policy.generation_config;
  if (!generation.is_object()) {
    generation = {{"do_sample", true}, {"pad_token_id", policy.pad_token_id}};
    if (policy.stop_token_ids.size() == 1) generation["eos_token_id"] = policy.stop_token_ids.front();
    if (policy.stop_token_ids.size() > 1) generation["eos_token_id"] = policy.stop_token_ids;
  }
  write_json(staging / "generation_config.json", generation);
  policy.tokenizer->save(staging);

  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& item : policy.model->named_parameters()) {
    tensors.emplace_back(item.key(), item.value().detach().to(torch::kCPU));
  }
  try {
    save_checkpoint_weights(staging, tensors, options.max_shard_bytes);
  } catch (const std::runtime_error& error) {
    throw CheckpointError(error.what());
  }
  fs::remove_all(dir, ignored);
  fs::rename(staging, dir);
}

Policy load_policy(const fs::path& dir, torch::Device device, torch::ScalarType dtype) {
  if (!fs::is_directory(dir)) {
    throw CheckpointError(fmt::format("model folder {} does not exist (make the base checkpoint with `grpo pretrain`, or point "
                                      "model.path at a Hugging Face layout folder)", dir.string()));
  }
  if (dtype != torch::kFloat32 && dtype != torch::kBFloat16 && dtype != torch::kFloat16) {
    throw CheckpointError(fmt::format("{}: cannot load weights as {}; supported: float32, bfloat16, float16", dir.string(), c10::toString(dtype)));
  }
  for (const char* name : {"config.json", "tokenizer.json"}) {
    if (!fs::exists(dir / name)) throw CheckpointError(fmt::format("{}: missing {}", dir.string(), name));
  }
  ModelConfig config;
  try {
    config = ModelConfig::from_json(read_json(dir / "config.json"), dir / "config.json");
  } catch (const std::invalid_argument& error) {
    throw CheckpointError(error.what());
  } catch (const nlohmann::json::exception& error) {
    throw CheckpointError(fmt::format("{}: {}", (dir / "config.json").string(), error.what()));
  }
  std::shared_ptr<const Tokenizer> tokenizer;
  try {
    tokenizer = load_tokenizer(dir);
  } catch (const TokenizerError& error) {
    throw CheckpointError(error.what());
  }
  // Added tokens may lie past config.json's vocab_size only if the embedding covers them; Qwen pads the embedding
  // beyond the tokenizer (151936 rows for 151665 tokens), which is fine.
  if (tokenizer->vocab_size() > config.vocab_size) {
    throw CheckpointError(fmt::format("{}: tokenizer has {} tokens but config.json says vocab_size {}", dir.string(),
                                      tokenizer->vocab_size(), config.vocab_size));
  }
  SafetensorsFile weights;
  try {
    weights = load_checkpoint_weights(dir);
  } catch (const std::runtime_error& error) {
    throw CheckpointError(error.what());
  }
  check_weights_match_config(config, weights, dir);
  LlamaForCausalLM model(config, dtype);
  copy_weights(model, weights, dir);
  weights.tensors.clear();  // unmaps the files before the device copy allocates more memory
  model->to(device);
  auto policy = make_policy(model, std::move(tokenizer));
  if (fs::exists(dir / "generation_config.json")) {
    policy.generation_config = read_json(dir / "generation_config.json");
    if (const auto ids = generation_eos_ids(policy.generation_config, dir / "generation_config.json"); !ids.empty()) {
      for (const auto id : ids) {
        if (id < 0 || id >= config.vocab_size) {
          throw CheckpointError(fmt::format("{}: eos_token_id {} is outside the vocabulary of {}", (dir / "generation_config.json").string(), id,
                                            config.vocab_size));
        }
      }
      policy.stop_token_ids = ids;
    }
  }
  if (policy.stop_token_ids.empty()) {
    throw CheckpointError(fmt::format("{}: no end-of-sequence token: set eos_token_id in generation_config.json or config.json, or "
                                      "eos_token in tokenizer_config.json", dir.string()));
  }
  return policy;
}

LlamaForCausalLM clone_model(LlamaForCausalLM& model) {
  LlamaForCausalLM copy(model->config(), model->dtype());
  torch::NoGradGuard no_grad;
  auto source = model->named_parameters();
  for (auto& item : copy->named_parameters()) item.value().copy_(source[item.key()]);
  copy->to(model->device());
  return copy;
}

}  // namespace grpo::policy
