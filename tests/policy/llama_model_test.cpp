// The Llama-family model against an independent, deliberately plain re-implementation (per-head loops, explicit
// softmax, rotary embedding by pair rotation), plus KV-cache and left-padding consistency.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "policy/architecture.h"
#include "policy/llama_model.h"

namespace grpo::policy {
namespace {

ModelConfig tiny_config(bool tied = true) {
  ModelConfig c;
  c.vocab_size = 23;
  c.hidden_size = 16;
  c.intermediate_size = 40;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 4;
  c.max_position_embeddings = 64;
  c.rope_theta = 10000.0;
  c.rms_norm_eps = 1e-6;
  c.tie_word_embeddings = tied;
  return c;
}

LlamaForCausalLM make_model(bool tied = true) {
  LlamaForCausalLM model(tiny_config(tied));
  initialize_weights(model, 7);
  // Larger-than-default weights so that attention patterns are far from uniform and errors would show.
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.mul_(5.0);
  return model;
}

// Plain reference for one unpadded sequence [T] → logits [T, V], written from the Llama paper / HF description
// without sharing code with the model: RMSNorm, RoPE as rotation of (x_i, x_{i+D/2}) pairs, causal softmax
// attention with K/V head h/(H/K), SwiGLU.
torch::Tensor reference_logits(LlamaForCausalLM& model, const std::vector<std::int64_t>& ids) {
  torch::NoGradGuard no_grad;
  const auto& c = model->config();
  auto params = model->named_parameters();
  auto p = [&](const std::string& name) { return params[name].to(torch::kFloat64); };
  auto rms = [&](const torch::Tensor& x, const torch::Tensor& w) { return w * x / (x.pow(2).mean(-1, true) + c.rms_norm_eps).sqrt(); };
  const auto T = static_cast<std::int64_t>(ids.size());
  const auto D = c.head_dim;
  auto h = p("model.embed_tokens.weight").index_select(0, torch::tensor(ids));
  auto rope = [&](torch::Tensor x) {  // x [T, D]
    auto out = x.clone();
    for (std::int64_t t = 0; t < T; ++t) {
      for (std::int64_t i = 0; i < D / 2; ++i) {
        const double angle = static_cast<double>(t) / std::pow(c.rope_theta, 2.0 * static_cast<double>(i) / static_cast<double>(D));
        const double a = x[t][i].item<double>(), b = x[t][i + D / 2].item<double>();
        out[t][i] = a * std::cos(angle) - b * std::sin(angle);
        out[t][i + D / 2] = b * std::cos(angle) + a * std::sin(angle);
      }
    }
    return out;
  };
  for (std::int64_t layer = 0; layer < c.num_hidden_layers; ++layer) {
    const auto prefix = "model.layers." + std::to_string(layer) + ".";
    const auto x = rms(h, p(prefix + "input_layernorm.weight"));
    const auto q = x.matmul(p(prefix + "self_attn.q_proj.weight").t());
    const auto k = x.matmul(p(prefix + "self_attn.k_proj.weight").t());
    const auto v = x.matmul(p(prefix + "self_attn.v_proj.weight").t());
    std::vector<torch::Tensor> heads;
    for (std::int64_t head = 0; head < c.num_attention_heads; ++head) {
      const auto kv = head / (c.num_attention_heads / c.num_key_value_heads);
      const auto qh = rope(q.narrow(1, head * D, D));
      const auto kh = rope(k.narrow(1, kv * D, D));
      const auto vh = v.narrow(1, kv * D, D);
      auto scores = qh.matmul(kh.t()) / std::sqrt(static_cast<double>(D));
      scores = scores.masked_fill(torch::ones({T, T}, torch::kBool).triu(1), -INFINITY);
      heads.push_back(scores.softmax(-1).matmul(vh));
    }
    h = h + torch::cat(heads, 1).matmul(p(prefix + "self_attn.o_proj.weight").t());
    const auto y = rms(h, p(prefix + "post_attention_layernorm.weight"));
    const auto gate = y.matmul(p(prefix + "mlp.gate_proj.weight").t());
    const auto up = y.matmul(p(prefix + "mlp.up_proj.weight").t());
    h = h + (gate * torch::sigmoid(gate) * up).matmul(p(prefix + "mlp.down_proj.weight").t());
  }
  h = rms(h, p("model.norm.weight"));
  const auto head = c.tie_word_embeddings ? p("model.embed_tokens.weight") : p("lm_head.weight");
  return h.matmul(head.t()).to(torch::kFloat32);
}

torch::Tensor full_forward(LlamaForCausalLM& model, const std::vector<std::int64_t>& ids) {
  torch::NoGradGuard no_grad;
  const auto input = torch::tensor(ids).unsqueeze(0);
  const auto valid = torch::ones_like(input, torch::kBool);
  return model->forward(input, positions_from_valid(valid), causal_padding_mask(valid, input.size(1))).squeeze(0);
}

TEST(LlamaModel, MatchesPlainReferenceTiedAndUntied) {
  for (bool tied : {true, false}) {
    auto model = make_model(tied);
    const std::vector<std::int64_t> ids = {3, 17, 5, 5, 22, 0, 9, 11, 4};
    const auto ours = full_forward(model, ids);
    const auto expected = reference_logits(model, ids);
    ASSERT_EQ(ours.sizes(), expected.sizes());
    EXPECT_LT((ours - expected).abs().max().item<double>(), 2e-4) << "tied=" << tied;
    EXPECT_GT(expected.abs().max().item<double>(), 1.0);  // the comparison is not trivially between zeros
  }
}

TEST(LlamaModel, ParameterNamesAreHuggingFaceNames) {
  auto model = make_model(/*tied=*/false);
  std::set<std::string> names;
  for (const auto& item : model->named_parameters()) names.insert(item.key());
  std::set<std::string> expected = {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"};
  for (int layer = 0; layer < 2; ++layer) {
    const auto prefix = "model.layers." + std::to_string(layer) + ".";
    for (const char* name : {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight",
                             "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight", "input_layernorm.weight",
                             "post_attention_layernorm.weight"}) {
      expected.insert(prefix + name);
    }
  }
  EXPECT_EQ(names, expected);
}

TEST(LlamaModel, KvCacheDecodingEqualsFullForward) {
  auto model = make_model();
  const std::vector<std::int64_t> ids = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  const auto full = full_forward(model, ids);
  torch::NoGradGuard no_grad;
  auto cache = model->make_cache(1, 16);
  const std::int64_t prefix = 4;
  auto valid = torch::ones({1, prefix}, torch::kBool);
  const auto prefill = model->forward(torch::tensor(std::vector<std::int64_t>(ids.begin(), ids.begin() + prefix)).unsqueeze(0),
                                      positions_from_valid(valid), causal_padding_mask(valid, prefix), &cache);
  EXPECT_LT((prefill.squeeze(0) - full.narrow(0, 0, prefix)).abs().max().item<double>(), 1e-5);
  for (std::int64_t t = prefix; t < static_cast<std::int64_t>(ids.size()); ++t) {
    valid = torch::ones({1, t + 1}, torch::kBool);
    const auto step = model->forward(torch::tensor({ids[static_cast<std::size_t>(t)]}).view({1, 1}), torch::tensor({t}).view({1, 1}),
                                     causal_padding_mask(valid, 1), &cache);
    EXPECT_LT((step.view({-1}) - full[t]).abs().max().item<double>(), 1e-5) << "position " << t;
  }
  EXPECT_EQ(cache.length, static_cast<std::int64_t>(ids.size()));
}

TEST(LlamaModel, LeftPaddingDoesNotChangeLogits) {
  auto model = make_model();
  const std::vector<std::int64_t> short_ids = {4, 8, 15};
  const std::vector<std::int64_t> long_ids = {16, 0, 19, 1, 2, 3};
  torch::NoGradGuard no_grad;
  auto input = torch::zeros({2, 6}, torch::kInt64);
  auto valid = torch::zeros({2, 6}, torch::kBool);
  for (int t = 0; t < 3; ++t) {
    input[0][3 + t] = short_ids[static_cast<std::size_t>(t)];
    valid[0][3 + t] = true;
  }
  for (int t = 0; t < 6; ++t) {
    input[1][t] = long_ids[static_cast<std::size_t>(t)];
    valid[1][t] = true;
  }
  const auto batched = model->forward(input, positions_from_valid(valid), causal_padding_mask(valid, 6));
  EXPECT_FALSE(batched.isnan().any().item<bool>());
  EXPECT_LT((batched[0].narrow(0, 3, 3) - full_forward(model, short_ids)).abs().max().item<double>(), 1e-5);
  EXPECT_LT((batched[1] - full_forward(model, long_ids)).abs().max().item<double>(), 1e-5);
}

TEST(LlamaModel, MaskHelpers) {
  const auto valid = torch::tensor({false, true, true}).view({1, 3});
  EXPECT_TRUE(torch::equal(positions_from_valid(valid), torch::tensor({0L, 0L, 1L}).view({1, 3})));
  const auto mask = causal_padding_mask(valid, 3).squeeze();
  // Query 0 is padding: it sees only itself. Query 1 sees key 1. Query 2 sees keys 1 and 2.
  const auto expected = torch::tensor({true, false, false, false, true, false, false, true, true}).view({3, 3});
  EXPECT_TRUE(torch::equal(mask, expected));
}

TEST(ModelConfig, RejectsWhatItDoesNotImplement) {
  auto json = tiny_config().to_json();
  EXPECT_NO_THROW(ModelConfig::from_json(json, "config.json"));
  auto scaled = json;
  scaled["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  EXPECT_THROW(ModelConfig::from_json(scaled, "config.json"), std::invalid_argument);
  auto other = json;
  other["architectures"] = {"MambaForCausalLM"};
  try {
    ModelConfig::from_json(other, "dir/config.json");
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("MambaForCausalLM"), std::string::npos);
    EXPECT_NE(std::string(error.what()).find("dir/config.json"), std::string::npos);
  }
  auto bad_heads = json;
  bad_heads["num_key_value_heads"] = 3;
  EXPECT_THROW(ModelConfig::from_json(bad_heads, "config.json"), std::invalid_argument);
  auto missing = json;
  missing.erase("hidden_size");
  EXPECT_THROW(ModelConfig::from_json(missing, "config.json"), std::invalid_argument);
}

// Every registered architecture: config.json round trip, and the parameters its flags imply (Qwen2: q/k/v biases
// without an o_proj bias; Qwen3: q_norm/k_norm; Llama: biases only with attention_bias).
TEST(Architectures, EveryEntryRoundTripsAndHasItsParameters) {
  for (const auto& arch : architectures()) {
    SCOPED_TRACE(std::string(arch.name));
    auto json = tiny_config().to_json();
    json["architectures"] = {arch.name};
    json["model_type"] = arch.model_type;
    const auto config = ModelConfig::from_json(json, "config.json");
    EXPECT_EQ(config.to_json()["model_type"], arch.model_type);
    EXPECT_EQ(ModelConfig::from_json(config.to_json(), "config.json").to_json(), config.to_json());
    LlamaForCausalLM model(config);
    const auto params = model->named_parameters();
    const std::string prefix = "model.layers.0.self_attn.";
    EXPECT_EQ(params.contains(prefix + "q_proj.bias"), arch.name == "Qwen2ForCausalLM");
    EXPECT_EQ(params.contains(prefix + "v_proj.bias"), arch.name == "Qwen2ForCausalLM");
    EXPECT_FALSE(params.contains(prefix + "o_proj.bias"));
    EXPECT_EQ(params.contains(prefix + "q_norm.weight"), arch.name == "Qwen3ForCausalLM");
    EXPECT_EQ(params.contains(prefix + "k_norm.weight"), arch.name == "Qwen3ForCausalLM");
    json["attention_bias"] = true;
    const auto biased = ModelConfig::from_json(json, "config.json");
    EXPECT_EQ(biased.o_bias, arch.name != "Qwen2ForCausalLM");
    EXPECT_TRUE(biased.qkv_bias);
  }
  EXPECT_THROW(find_architecture("MistralForCausalLM"), std::invalid_argument);
}

TEST(ModelConfig, ReadsBothRopeSpellingsAndRejectsSlidingWindows) {
  auto json = tiny_config().to_json();
  json.erase("rope_theta");
  json.erase("rope_scaling");
  json["rope_parameters"] = {{"rope_type", "llama3"}, {"rope_theta", 500000.0}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                             {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
  auto config = ModelConfig::from_json(json, "config.json");
  EXPECT_EQ(config.rope_theta, 500000.0);
  EXPECT_EQ(config.rope_scaling.type, RopeScaling::Type::kLlama3);
  EXPECT_EQ(config.rope_scaling.original_max_position_embeddings, 8192);
  json.erase("rope_parameters");
  json["rope_theta"] = 1e6;
  json["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  try {
    ModelConfig::from_json(json, "m/config.json");
    FAIL() << "linear rope scaling accepted";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("rope scaling type 'linear' is not supported"), std::string::npos) << error.what();
  }
  json["rope_scaling"] = nullptr;
  json["architectures"] = {"Qwen2ForCausalLM"};
  json["model_type"] = "qwen2";
  json["use_sliding_window"] = true;
  EXPECT_THROW(ModelConfig::from_json(json, "config.json"), std::invalid_argument);
  json["use_sliding_window"] = false;
  json["layer_types"] = {"full_attention", "sliding_attention"};
  EXPECT_THROW(ModelConfig::from_json(json, "config.json"), std::invalid_argument);
  json.erase("layer_types");
  json["eos_token_id"] = {151645, 151643};
  json["vocab_size"] = 151936;
  config = ModelConfig::from_json(json, "config.json");
  EXPECT_EQ(config.eos_token_ids, (std::vector<std::int64_t>{151645, 151643}));
  json["hidden_size"] = "16";
  EXPECT_THROW(ModelConfig::from_json(json, "config.json"), std::invalid_argument);
}

// tiny_config()'s config.json as `arch_name` (architectures and model_type both set).
nlohmann::json config_json_as(std::string_view arch_name) {
  auto json = tiny_config().to_json();
  const auto& arch = find_architecture(arch_name);
  json["architectures"] = {arch.name};
  json["model_type"] = arch.model_type;
  return json;
}

// The message of from_json's error, or "no error".
std::string config_error(const nlohmann::json& json) {
  try {
    ModelConfig::from_json(json, "m/config.json");
  } catch (const std::invalid_argument& error) {
    return error.what();
  }
  return "no error";
}

// What a JSON null means per field follows transformers 5.23's config classes (checked by hand with
// Config.from_dict): null is unset for its Optional fields, an error for its strictly typed ones. Every type error
// names the file and the field.
TEST(ModelConfig, NullAndWronglyTypedFieldsFollowTransformers) {
  for (const auto& arch : architectures()) {
    SCOPED_TRACE(std::string(arch.name));
    const auto base = config_json_as(arch.name);
    // Null = unset.
    for (const char* field :
         {"rope_scaling", "rope_parameters", "num_key_value_heads", "pretraining_tp", "bos_token_id", "eos_token_id",
          "pad_token_id", "model_type", "sliding_window", "layer_types"}) {
      auto json = base;
      json[field] = nullptr;
      EXPECT_EQ(config_error(json), "no error") << field;
    }
    auto null_kv = base;
    null_kv["num_key_value_heads"] = nullptr;
    EXPECT_EQ(ModelConfig::from_json(null_kv, "config.json").num_key_value_heads,
              base["num_attention_heads"].get<std::int64_t>());
    // Null = an error naming the field.
    std::vector<std::string> strict = {"hidden_act", "rms_norm_eps", "tie_word_embeddings", "vocab_size", "rope_theta"};
    if (arch.name != "Qwen2ForCausalLM") strict.push_back("attention_bias");
    if (arch.name == "LlamaForCausalLM") strict.push_back("mlp_bias");
    if (arch.name != "LlamaForCausalLM") strict.push_back("use_sliding_window");
    if (!arch.null_head_dim_is_computed) strict.push_back("head_dim");
    for (const auto& field : strict) {
      auto json = base;
      json.erase("rope_parameters");  // rope_parameters.rope_theta would stand in for a null rope_theta
      json[field] = nullptr;
      const auto error = config_error(json);
      EXPECT_NE(error.find("m/config.json: field '" + field + "' must be"), std::string::npos) << error;
      EXPECT_NE(error.find("got null"), std::string::npos) << error;
    }
  }
  auto json = config_json_as("LlamaForCausalLM");
  json["hidden_act"] = nullptr;
  EXPECT_EQ(config_error(json), "m/config.json: field 'hidden_act' must be a string, got null");
  json = config_json_as("LlamaForCausalLM");
  json["head_dim"] = nullptr;  // LlamaConfig computes it
  EXPECT_EQ(ModelConfig::from_json(json, "config.json").head_dim, 4);
  json["use_sliding_window"] = nullptr;  // not a LlamaConfig field
  EXPECT_EQ(config_error(json), "no error");
  json["mlp_bias"] = "false";
  EXPECT_EQ(config_error(json), "m/config.json: field 'mlp_bias' must be true or false, got \"false\"");
  json = config_json_as("Qwen2ForCausalLM");
  json["use_sliding_window"] = 0;
  EXPECT_EQ(config_error(json), "m/config.json: field 'use_sliding_window' must be true or false, got 0");
  json = config_json_as("Qwen2ForCausalLM");
  json["layer_types"] = "full_attention";
  EXPECT_NE(config_error(json).find("field 'layer_types' must be a list of strings"), std::string::npos)
      << config_error(json);
  json = config_json_as("Qwen3ForCausalLM");
  json.erase("rope_parameters");
  json["rope_scaling"] = {{"rope_type", 3}};
  EXPECT_EQ(config_error(json), "m/config.json: field 'rope_scaling.rope_type' must be a string, got 3");
  json["rope_scaling"] = {{"rope_type", nullptr}, {"type", "default"}};  // transformers: KeyError None
  EXPECT_EQ(config_error(json), "m/config.json: field 'rope_scaling.rope_type' must be a string, got null");
  json["rope_scaling"] = {{"type", "default"}};
  EXPECT_EQ(config_error(json), "no error");
  json["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", nullptr}};
  EXPECT_EQ(config_error(json), "m/config.json: field 'rope_parameters.rope_theta' must be a number, got null");
  json["rope_theta"] = nullptr;
  json["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 5.0}};  // what transformers uses then
  EXPECT_EQ(ModelConfig::from_json(json, "config.json").rope_theta, 5.0);
  json["model_type"] = 3;
  EXPECT_EQ(config_error(json), "m/config.json: field 'model_type' must be a string, got 3");
  json = config_json_as("LlamaForCausalLM");
  json["vocab_size"] = 18446744073709551615ULL;  // an unsigned JSON integer past INT64_MAX
  EXPECT_NE(config_error(json).find("field 'vocab_size' must be an integer"), std::string::npos) << config_error(json);
}

// transformers builds the model that model_type names; "architectures" picks ours. A mismatch would make the two
// different models from one checkpoint.
TEST(ModelConfig, ModelTypeMustMatchArchitectures) {
  auto json = config_json_as("Qwen3ForCausalLM");
  json["model_type"] = "llama";
  const auto error = config_error(json);
  EXPECT_NE(error.find("m/config.json: model_type 'llama' (which is LlamaForCausalLM) does not match architectures "
                       "[\"Qwen3ForCausalLM\"]"),
            std::string::npos)
      << error;
  json["model_type"] = "mistral";
  EXPECT_NE(config_error(json).find("model_type 'mistral' does not match"), std::string::npos) << config_error(json);
  json.erase("model_type");
  EXPECT_EQ(config_error(json), "no error");
  for (const auto& arch : architectures()) {
    for (const auto& other : architectures()) {
      json = config_json_as(arch.name);
      json["model_type"] = other.model_type;
      EXPECT_EQ(config_error(json) == "no error", arch.name == other.name) << arch.name << " / " << other.model_type;
    }
  }
}

// head_dim and num_key_value_heads left out take each family's transformers 5.23 default (tests/policy/
// hf_parity_test.cpp checks the same against transformers itself): LlamaConfig hidden/heads and heads; Qwen2
// hidden/heads and 32; Qwen3Config 128 and 32.
TEST(ModelConfig, MissingHeadSizesTakeTheArchitecturesDefaults) {
  const std::map<std::string_view, std::pair<std::int64_t, std::int64_t>> expected = {
      {"LlamaForCausalLM", {2, 32}}, {"Qwen2ForCausalLM", {2, 32}}, {"Qwen3ForCausalLM", {128, 32}}};
  for (const auto& arch : architectures()) {
    SCOPED_TRACE(std::string(arch.name));
    auto json = config_json_as(arch.name);
    json["hidden_size"] = 64;
    json["num_attention_heads"] = 32;
    json.erase("head_dim");
    json.erase("num_key_value_heads");
    const auto config = ModelConfig::from_json(json, "config.json");
    ASSERT_TRUE(expected.contains(arch.name));
    EXPECT_EQ(config.head_dim, expected.at(arch.name).first);
    EXPECT_EQ(config.num_key_value_heads, expected.at(arch.name).second);
    // 4 heads: the Qwen default of 32 KV heads cannot be right, and the error says why.
    json["num_attention_heads"] = 4;
    const auto error = config_error(json);
    if (arch.missing_num_key_value_heads > 0) {
      EXPECT_NE(error.find("num_key_value_heads is missing, and " + std::string(arch.name) + " then takes 32"),
                std::string::npos)
          << error;
    } else {
      EXPECT_EQ(error, "no error");
    }
  }
}

// parameter_specs describes exactly what the model allocates, for every architecture and flag combination.
TEST(Architectures, ParameterSpecsAreTheModelsParameters) {
  for (const auto& arch : architectures()) {
    for (const bool tied : {true, false}) {
      for (const bool bias : {true, false}) {
        SCOPED_TRACE(fmt::format("{} tied={} attention_bias={}", arch.name, tied, bias));
        auto json = config_json_as(arch.name);
        json["tie_word_embeddings"] = tied;
        json["attention_bias"] = bias;
        const auto config = ModelConfig::from_json(json, "config.json");
        LlamaForCausalLM model(config);
        const auto params = model->named_parameters();
        const auto specs = parameter_specs(config);
        ASSERT_EQ(specs.size(), params.size());
        for (std::size_t i = 0; i < specs.size(); ++i) {
          EXPECT_EQ(specs[i].name, params[i].key());
          EXPECT_EQ(c10::IntArrayRef(specs[i].shape), params[i].value().sizes()) << specs[i].name;
          EXPECT_EQ(specs[i].dimensions.size(), specs[i].shape.size()) << specs[i].name;
        }
      }
    }
  }
  auto config = ModelConfig::from_json(config_json_as("Qwen3ForCausalLM"), "config.json");
  const auto specs = parameter_specs(config);
  const auto k_proj = std::find_if(specs.begin(), specs.end(),
                                   [](const auto& s) { return s.name == "model.layers.0.self_attn.k_proj.weight"; });
  ASSERT_NE(k_proj, specs.end());
  EXPECT_EQ(k_proj->dimensions, (std::vector<std::string>{"num_key_value_heads 2 × head_dim 4", "hidden_size 16"}));
}

// llama3 RoPE scaling against the formula of Meta's reference code, evaluated here in double precision for
// head_dim 8, theta 100, factor 8, low/high 1/4, original context 32 (wavelengths 6.3, 19.9, 62.8, 199): long
// wavelengths divided by 8, short ones kept, the band between interpolated.
TEST(RotaryEmbedding, Llama3ScalingMatchesTheReferenceFormula) {
  auto config = tiny_config();
  config.head_dim = 8;
  config.num_attention_heads = 2;
  config.num_key_value_heads = 2;
  config.rope_theta = 100.0;
  config.rope_scaling = {RopeScaling::Type::kLlama3, 8.0, 1.0, 4.0, 32};
  RotaryEmbedding rope(config);
  const auto [cos, sin] = rope->forward(torch::tensor({{1L}}));
  const auto angles = torch::atan2(sin, cos).view({-1});  // position 1: angle = inv_freq
  int scaled = 0, kept = 0, smoothed = 0;
  for (int i = 0; i < 4; ++i) {
    const double freq = 1.0 / std::pow(100.0, 2.0 * i / 8.0);
    const double wavelen = 2 * M_PI / freq;
    double expected = freq;
    if (wavelen > 32.0) {
      expected = freq / 8.0;
      ++scaled;
    } else if (wavelen >= 8.0) {
      const double smooth = (32.0 / wavelen - 1.0) / 3.0;
      expected = (1 - smooth) * freq / 8.0 + smooth * freq;
      ++smoothed;
    } else {
      ++kept;
    }
    EXPECT_NEAR(angles[i].item<double>(), expected, 1e-6 * std::max(1.0, expected)) << "frequency " << i;
  }
  EXPECT_GT(scaled, 0);
  EXPECT_GT(kept, 0);
  EXPECT_GT(smoothed, 0);
}

}  // namespace
}  // namespace grpo::policy
