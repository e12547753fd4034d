// Llama/Qwen2-family decoder, numerically following Hugging Face's modeling_llama.py (float32 RMSNorm, rotate_half
// RoPE, SDPA attention with grouped-query heads).
#include "policy/llama_model.h"

#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "kernels/autocast.h"
#include "kernels/cpu_decode_ops.h"
#include "kernels/decode_attention.h"

namespace grpo::policy {

void KvCache::select_rows(const torch::Tensor& rows) {
  for (auto& k : keys) k = k.index_select(0, rows);
  for (auto& v : values) v = v.index_select(0, rows);
}

LinearImpl::LinearImpl(std::int64_t in_features, std::int64_t out_features, bool with_bias, torch::Dtype dtype) {
  weight = register_parameter("weight", torch::empty({out_features, in_features}, dtype));
  if (with_bias) bias = register_parameter("bias", torch::empty({out_features}, dtype));
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) { return torch::nn::functional::linear(x, weight, bias); }

EmbeddingImpl::EmbeddingImpl(std::int64_t num_embeddings, std::int64_t dim, torch::Dtype dtype) {
  weight = register_parameter("weight", torch::empty({num_embeddings, dim}, dtype));
}

torch::Tensor EmbeddingImpl::forward(const torch::Tensor& ids) { return torch::embedding(weight, ids); }

RmsNormImpl::RmsNormImpl(std::int64_t size, double eps, torch::Dtype dtype) : eps_(eps) {
  weight_ = register_parameter("weight", torch::ones({size}, dtype));
}

torch::Tensor RmsNormImpl::forward(const torch::Tensor& x) {
  // As in Hugging Face: normalise in float32, scale in the input dtype (kernels::rms_norm_reference); fused on the
  // CPU when nothing is recorded for autograd (generation, old and reference log-probs).
  if (kernels::fused_cpu_inference(x) && weight_.scalar_type() == torch::kFloat32) return kernels::rms_norm(x, weight_, eps_);
  return kernels::rms_norm_reference(x, weight_, eps_);
}

namespace {

// transformers' _compute_llama3_parameters (modeling_rope_utils.py), in float32 as there: wavelengths beyond the
// original context are stretched by `factor`, short ones kept, and the band between interpolated smoothly.
torch::Tensor llama3_inv_freq(const torch::Tensor& inv_freq, const RopeScaling& rope) {
  const auto old_context = static_cast<double>(rope.original_max_position_embeddings);
  const double low_freq_wavelen = old_context / rope.low_freq_factor;
  const double high_freq_wavelen = old_context / rope.high_freq_factor;
  const auto wavelen = 2 * M_PI / inv_freq;
  auto scaled = torch::where(wavelen > low_freq_wavelen, inv_freq / rope.factor, inv_freq);
  const auto smooth = (old_context / wavelen - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor);
  const auto smoothed = (1 - smooth) * scaled / rope.factor + smooth * scaled;
  const auto medium = (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
  return torch::where(medium, smoothed, scaled);
}

}  // namespace

RotaryEmbeddingImpl::RotaryEmbeddingImpl(const ModelConfig& config) {
  const auto head_dim = config.head_dim;
  const auto exponents = torch::arange(0, head_dim, 2, torch::kInt64).to(torch::kFloat32) / static_cast<double>(head_dim);
  auto inv_freq = 1.0 / torch::pow(torch::tensor(config.rope_theta, torch::kFloat32), exponents);
  if (config.rope_scaling.type == RopeScaling::Type::kLlama3) inv_freq = llama3_inv_freq(inv_freq, config.rope_scaling);
  inv_freq_ = register_buffer("inv_freq", inv_freq);
}

std::pair<torch::Tensor, torch::Tensor> RotaryEmbeddingImpl::forward(const torch::Tensor& position_ids) {
  // position_ids [B, T] → freqs [B, T, D/2] → emb [B, T, D].
  const auto freqs = position_ids.to(torch::kFloat32).unsqueeze(-1) * inv_freq_.to(position_ids.device());
  const auto emb = torch::cat({freqs, freqs}, -1);
  return {emb.cos().unsqueeze(1), emb.sin().unsqueeze(1)};
}

LlamaAttentionImpl::LlamaAttentionImpl(const ModelConfig& config, torch::Dtype dtype)
    : num_heads_(config.num_attention_heads), num_kv_heads_(config.num_key_value_heads), head_dim_(config.head_dim) {
  const auto bias = config.qkv_bias;
  q_proj = register_module("q_proj", Linear(config.hidden_size, num_heads_ * head_dim_, bias, dtype));
  k_proj = register_module("k_proj", Linear(config.hidden_size, num_kv_heads_ * head_dim_, bias, dtype));
  v_proj = register_module("v_proj", Linear(config.hidden_size, num_kv_heads_ * head_dim_, bias, dtype));
  o_proj = register_module("o_proj", Linear(num_heads_ * head_dim_, config.hidden_size, config.o_bias, dtype));
  if (config.qk_norm) {
    q_norm = register_module("q_norm", RmsNorm(head_dim_, config.rms_norm_eps, dtype));
    k_norm = register_module("k_norm", RmsNorm(head_dim_, config.rms_norm_eps, dtype));
  }
}

torch::Tensor LlamaAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                          const torch::Tensor& mask, KvCache* cache, std::int64_t layer, SharedPrefix* prefix) {
  const auto batch = x.size(0);
  const auto steps = x.size(1);
  // [B, T, H*D] → [B, T, H, D] (Qwen3 normalises each head here) → [B, H, T, D]
  auto q = q_proj(x).view({batch, steps, num_heads_, head_dim_});
  auto k = k_proj(x).view({batch, steps, num_kv_heads_, head_dim_});
  if (q_norm) {
    q = q_norm(q);
    k = k_norm(k);
  }
  q = q.transpose(1, 2);
  k = k.transpose(1, 2);
  auto v = v_proj(x).view({batch, steps, num_kv_heads_, head_dim_}).transpose(1, 2);
  const auto cos_t = cos.to(q.scalar_type());
  const auto sin_t = sin.to(q.scalar_type());
  if (kernels::fused_cpu_inference(q)) {
    q = kernels::apply_rotary(q, cos_t, sin_t);
    k = kernels::apply_rotary(k, cos_t, sin_t);
  } else {
    q = kernels::apply_rotary_reference(q, cos_t, sin_t);
    k = kernels::apply_rotary_reference(k, cos_t, sin_t);
  }
  if (cache != nullptr) {
    TORCH_CHECK(cache->length + steps <= cache->capacity(), "KV cache overflow: ", cache->length, " + ", steps, " > ",
                cache->capacity());
    cache->keys[layer].narrow(2, cache->length, steps).copy_(k);
    cache->values[layer].narrow(2, cache->length, steps).copy_(v);
    k = cache->keys[layer].narrow(2, 0, cache->length + steps);
    v = cache->values[layer].narrow(2, 0, cache->length + steps);
  }
  if (prefix != nullptr && !prefix->rows.defined()) {  // the prompts: remember their keys and values
    prefix->keys.resize(static_cast<std::size_t>(layer) + 1);
    prefix->values.resize(static_cast<std::size_t>(layer) + 1);
    prefix->keys[static_cast<std::size_t>(layer)] = k;
    prefix->values[static_cast<std::size_t>(layer)] = v;
  } else if (prefix != nullptr) {  // continuations: each row's prompt first
    if (prefix->packed_positions.defined()) {
      // Padding-free: [1, heads, N, D] → [B, heads, T, D] with zeros at padding, for attention only.
      const auto rows = prefix->rows.size(0);
      const auto width = prefix->padded_width;
      auto padded = [&](const torch::Tensor& t) {
        const auto heads = t.size(1);
        const auto flat = t.squeeze(0).transpose(0, 1).reshape({steps, heads * head_dim_});  // [N, heads·D]
        return torch::zeros({rows * width, heads * head_dim_}, flat.options())
            .index_copy(0, prefix->packed_positions, flat)
            .view({rows, width, heads, head_dim_})
            .transpose(1, 2);
      };
      q = padded(q);
      k = padded(k);
      v = padded(v);
    }
    k = torch::cat({prefix->keys.at(static_cast<std::size_t>(layer)).index_select(0, prefix->rows), k}, 2);
    v = torch::cat({prefix->values.at(static_cast<std::size_t>(layer)).index_select(0, prefix->rows), v}, 2);
  }
  // (decode_attention has no backward: only cached generation, which runs without grad, takes it)
  if (steps == 1 && cache != nullptr && x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && mask.scalar_type() == torch::kBool) {
    // A decode step on the CPU: the kernel that reads each cache row once for all heads sharing it.
    return o_proj(kernels::decode_attention(q, k, v, mask).view({batch, 1, num_heads_ * head_dim_}));
  }
  const auto attended = at::scaled_dot_product_attention(q, k, v, mask, /*dropout_p=*/0.0, /*is_causal=*/false,
                                                         /*scale=*/std::nullopt, /*enable_gqa=*/num_heads_ != num_kv_heads_);
  if (prefix != nullptr && prefix->packed_positions.defined()) {  // back to the real tokens, [1, N, H·D]
    const auto flat = attended.transpose(1, 2).reshape({-1, num_heads_ * head_dim_});
    return o_proj(flat.index_select(0, prefix->packed_positions).unsqueeze(0));
  }
  return o_proj(attended.transpose(1, 2).reshape({batch, steps, num_heads_ * head_dim_}));
}

LlamaMlpImpl::LlamaMlpImpl(const ModelConfig& config, torch::Dtype dtype) {
  gate_proj = register_module("gate_proj", Linear(config.hidden_size, config.intermediate_size, /*bias=*/false, dtype));
  up_proj = register_module("up_proj", Linear(config.hidden_size, config.intermediate_size, /*bias=*/false, dtype));
  down_proj = register_module("down_proj", Linear(config.intermediate_size, config.hidden_size, /*bias=*/false, dtype));
}

torch::Tensor LlamaMlpImpl::forward(const torch::Tensor& x) { return down_proj(torch::silu(gate_proj(x)) * up_proj(x)); }

LlamaDecoderLayerImpl::LlamaDecoderLayerImpl(const ModelConfig& config, torch::Dtype dtype) {
  self_attn = register_module("self_attn", LlamaAttention(config, dtype));
  mlp = register_module("mlp", LlamaMlp(config, dtype));
  input_layernorm = register_module("input_layernorm", RmsNorm(config.hidden_size, config.rms_norm_eps, dtype));
  post_attention_layernorm = register_module("post_attention_layernorm", RmsNorm(config.hidden_size, config.rms_norm_eps, dtype));
}

torch::Tensor LlamaDecoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                             const torch::Tensor& mask, KvCache* cache, std::int64_t layer, SharedPrefix* prefix) {
  const auto h = x + self_attn(input_layernorm(x), cos, sin, mask, cache, layer, prefix);
  return h + mlp(post_attention_layernorm(h));
}

LlamaBackboneImpl::LlamaBackboneImpl(const ModelConfig& config, torch::Dtype dtype) {
  embed_tokens = register_module("embed_tokens", Embedding(config.vocab_size, config.hidden_size, dtype));
  layers = register_module("layers", torch::nn::ModuleList());
  for (std::int64_t i = 0; i < config.num_hidden_layers; ++i) layers->push_back(LlamaDecoderLayer(config, dtype));
  norm = register_module("norm", RmsNorm(config.hidden_size, config.rms_norm_eps, dtype));
  // inv_freq is a non-persistent buffer in Hugging Face; it is kept out of named_parameters() and of checkpoints
  // (see policy/checkpoint.cpp, which saves parameters only).
  rotary_ = register_module("rotary_emb", RotaryEmbedding(config));
}

namespace {

// One decoder layer whose forward keeps no activations: backward recomputes them from the saved input (the reentrant
// checkpoint of torch.utils.checkpoint). Layers are deterministic (no dropout): the recomputed activations equal the
// first ones. The layer's parameters are inputs of the function and their gradients its results, as are the shared
// prompt keys and values of a SharedPrefix forward: so torch::autograd::grad over the parameters works (micro-batches
// on parallel workers, kernels/cpu_workers.h), nothing is written to .grad behind autograd's back, and gradients
// reach the prompts from their continuations.
//
// Three uses, as in LlamaAttentionImpl::forward: a plain layer; the prompts of a shared prefix (`record`: the layer's
// keys and values are outputs 1 and 2); continuations (`prefix_keys`, `prefix_values`, `rows`, and `packed` when
// padding-free, with `padded_width`).
class CheckpointedLayer : public torch::autograd::Function<CheckpointedLayer> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& h, const torch::Tensor& cos,
                                                const torch::Tensor& sin, const torch::Tensor& mask, const std::optional<torch::Tensor>& prefix_keys,
                                                const std::optional<torch::Tensor>& prefix_values, const std::optional<torch::Tensor>& rows,
                                                const std::optional<torch::Tensor>& packed, torch::TensorList parameters,
                                                LlamaDecoderLayerImpl* layer, std::int64_t index, std::int64_t padded_width, bool record) {
    auto value = [](const std::optional<torch::Tensor>& t) { return t.value_or(torch::Tensor()); };
    ctx->save_for_backward({h, cos, sin, mask, value(prefix_keys), value(prefix_values), value(rows), value(packed)});
    // The layer outlives the graph (the model owns it); autograd's context stores integers, not pointers.
    ctx->saved_data["layer"] = static_cast<std::int64_t>(reinterpret_cast<std::intptr_t>(layer));
    ctx->saved_data["index"] = index;
    ctx->saved_data["padded_width"] = padded_width;
    ctx->saved_data["record"] = record;
    ctx->saved_data["parameters"] = static_cast<std::int64_t>(parameters.size());
    const auto autocast = kernels::AutocastState::capture(h.device().type());
    ctx->saved_data["autocast"] = autocast.enabled;
    ctx->saved_data["autocast_dtype"] = static_cast<std::int64_t>(autocast.dtype);
    return run(layer, index, h, cos, sin, mask, value(prefix_keys), value(prefix_values), value(rows), value(packed), padded_width, record);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    auto* layer = reinterpret_cast<LlamaDecoderLayerImpl*>(static_cast<std::intptr_t>(ctx->saved_data["layer"].toInt()));
    const auto index = ctx->saved_data["index"].toInt();
    const bool record = ctx->saved_data["record"].toBool();
    const auto input = saved[0].detach().requires_grad_(true);
    const bool continuation = saved[4].defined();
    const auto prefix_keys = continuation ? saved[4].detach().requires_grad_(true) : torch::Tensor();
    const auto prefix_values = continuation ? saved[5].detach().requires_grad_(true) : torch::Tensor();
    torch::autograd::variable_list outputs;
    {
      torch::AutoGradMode enable(true);
      const kernels::AutocastGuard autocast(input.device().type(), ctx->saved_data["autocast"].toBool(),
                                            static_cast<c10::ScalarType>(ctx->saved_data["autocast_dtype"].toInt()));
      outputs = run(layer, index, input, saved[1], saved[2], saved[3], prefix_keys, prefix_values, saved[6], saved[7],
                    ctx->saved_data["padded_width"].toInt(), record);
    }
    // What to differentiate: the outputs that received a gradient, with respect to the input, the prefix and the
    // parameters that train.
    torch::autograd::variable_list used, used_grads;
    for (std::size_t i = 0; i < outputs.size(); ++i) {
      if (i < grads.size() && grads[i].defined()) {
        used.push_back(outputs[i]);
        used_grads.push_back(grads[i]);
      }
    }
    const auto parameters = layer->parameters();
    torch::autograd::variable_list wrt = {input};
    if (continuation) wrt.insert(wrt.end(), {prefix_keys, prefix_values});
    std::vector<std::size_t> trained;
    for (std::size_t j = 0; j < parameters.size(); ++j) {
      if (parameters[j].requires_grad()) {
        trained.push_back(j);
        wrt.push_back(parameters[j]);
      }
    }
    // One result per argument of forward: h, cos, sin, mask, prefix keys, prefix values, rows, packed, each
    // parameter, then layer, index, padded_width, record.
    constexpr std::size_t kParametersAt = 8;
    torch::autograd::variable_list result(kParametersAt + static_cast<std::size_t>(ctx->saved_data["parameters"].toInt()) + 4);
    if (used.empty()) return result;
    const auto g = torch::autograd::grad(used, wrt, used_grads, /*retain_graph=*/false, /*create_graph=*/false, /*allow_unused=*/true);
    std::size_t next = 0;
    result[0] = g[next++];
    if (continuation) {
      result[4] = g[next++];
      result[5] = g[next++];
    }
    for (const auto j : trained) result[kParametersAt + j] = g[next++];
    return result;
  }

 private:
  static torch::autograd::variable_list run(LlamaDecoderLayerImpl* layer, std::int64_t index, const torch::Tensor& h, const torch::Tensor& cos,
                                            const torch::Tensor& sin, const torch::Tensor& mask, const torch::Tensor& prefix_keys,
                                            const torch::Tensor& prefix_values, const torch::Tensor& rows, const torch::Tensor& packed,
                                            std::int64_t padded_width, bool record) {
    SharedPrefix prefix;
    SharedPrefix* use = nullptr;
    const auto layer_index = static_cast<std::size_t>(index);
    if (record) {
      use = &prefix;
    } else if (prefix_keys.defined()) {
      prefix.keys.resize(layer_index + 1);
      prefix.values.resize(layer_index + 1);
      prefix.keys[layer_index] = prefix_keys;
      prefix.values[layer_index] = prefix_values;
      prefix.rows = rows;
      prefix.packed_positions = packed;
      prefix.padded_width = padded_width;
      use = &prefix;
    }
    const auto out = layer->forward(h, cos, sin, mask, nullptr, index, use);
    if (!record) return {out};
    return {out, prefix.keys.at(layer_index), prefix.values.at(layer_index)};
  }
};

}  // namespace

torch::Tensor LlamaBackboneImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& position_ids,
                                         const torch::Tensor& mask, KvCache* cache, SharedPrefix* prefix) {
  TORCH_CHECK(cache == nullptr || prefix == nullptr, "a forward takes a KV cache or a shared prefix, not both");
  auto h = embed_tokens(input_ids);
  const auto [cos, sin] = rotary_(position_ids);
  const bool checkpoint = gradient_checkpointing && cache == nullptr && mask.defined() && torch::GradMode::is_enabled();
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(layers->size()); ++i) {
    auto* layer = layers[i]->as<LlamaDecoderLayer>();
    if (!checkpoint) {
      h = layer->forward(h, cos, sin, mask, cache, i, prefix);
      continue;
    }
    const bool record = prefix != nullptr && !prefix->rows.defined();
    const bool continuation = prefix != nullptr && prefix->rows.defined();
    auto part = [&](const torch::Tensor& t) { return continuation && t.defined() ? std::optional<torch::Tensor>(t) : std::nullopt; };
    const auto layer_index = static_cast<std::size_t>(i);
    const auto parameters = layer->parameters();
    const auto outputs = CheckpointedLayer::apply(
        h, cos, sin, mask, continuation ? part(prefix->keys.at(layer_index)) : std::nullopt,
        continuation ? part(prefix->values.at(layer_index)) : std::nullopt, continuation ? part(prefix->rows) : std::nullopt,
        continuation ? part(prefix->packed_positions) : std::nullopt, torch::TensorList(parameters), layer, i,
        continuation ? prefix->padded_width : 0, record);  // (a TensorList, so that autograd sees each parameter as an input)
    h = outputs[0];
    if (record) {
      prefix->keys.resize(layer_index + 1);
      prefix->values.resize(layer_index + 1);
      prefix->keys[layer_index] = outputs[1];
      prefix->values[layer_index] = outputs[2];
    }
  }
  if (cache != nullptr) cache->length += input_ids.size(1);
  return norm(h);
}

LlamaForCausalLMImpl::LlamaForCausalLMImpl(ModelConfig config, torch::Dtype dtype) : config_(std::move(config)) {
  config_.validate();
  model = register_module("model", LlamaBackbone(config_, dtype));
  if (!config_.tie_word_embeddings) {
    lm_head = register_module("lm_head", Linear(config_.hidden_size, config_.vocab_size, /*bias=*/false, dtype));
  }
}

torch::Tensor LlamaForCausalLMImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& position_ids,
                                            const torch::Tensor& mask, KvCache* cache) {
  TORCH_CHECK(input_ids.dim() == 2 && input_ids.sizes() == position_ids.sizes(), "input_ids and position_ids must be [B, T], got ",
              input_ids.sizes(), " and ", position_ids.sizes());
  return logits(hidden_states(input_ids, position_ids, mask, cache));
}

torch::Tensor LlamaForCausalLMImpl::hidden_states(const torch::Tensor& input_ids, const torch::Tensor& position_ids,
                                                  const torch::Tensor& mask, KvCache* cache, SharedPrefix* prefix) {
  return model->forward(input_ids, position_ids, mask, cache, prefix);
}

torch::Tensor LlamaForCausalLMImpl::output_weight() const {
  return config_.tie_word_embeddings ? model->embed_tokens->weight : lm_head->weight;
}

torch::Tensor LlamaForCausalLMImpl::logits(const torch::Tensor& hidden) {
  const auto& head_weight = config_.tie_word_embeddings ? model->embed_tokens->weight : lm_head->weight;
  return torch::nn::functional::linear(hidden, head_weight).to(torch::kFloat32);
}

KvCache LlamaForCausalLMImpl::make_cache(std::int64_t batch_size, std::int64_t capacity) const {
  TORCH_CHECK(capacity <= config_.max_position_embeddings, "a sequence of ", capacity,
              " positions exceeds max_position_embeddings = ", config_.max_position_embeddings);
  const auto options = model->embed_tokens->weight.options().requires_grad(false);
  KvCache cache;
  for (std::int64_t i = 0; i < config_.num_hidden_layers; ++i) {
    cache.keys.push_back(torch::empty({batch_size, config_.num_key_value_heads, capacity, config_.head_dim}, options));
    cache.values.push_back(torch::empty({batch_size, config_.num_key_value_heads, capacity, config_.head_dim}, options));
  }
  return cache;
}

torch::Device LlamaForCausalLMImpl::device() const { return model->embed_tokens->weight.device(); }

torch::Dtype LlamaForCausalLMImpl::dtype() const { return model->embed_tokens->weight.scalar_type(); }

std::vector<ParameterSpec> parameter_specs(const ModelConfig& c) {
  const auto field = [](const char* name, std::int64_t value) { return fmt::format("{} {}", name, value); };
  const auto hidden = field("hidden_size", c.hidden_size);
  const auto intermediate = field("intermediate_size", c.intermediate_size);
  const auto q_dim =
      fmt::format("{} × {}", field("num_attention_heads", c.num_attention_heads), field("head_dim", c.head_dim));
  const auto kv_dim =
      fmt::format("{} × {}", field("num_key_value_heads", c.num_key_value_heads), field("head_dim", c.head_dim));
  std::vector<ParameterSpec> specs;
  specs.reserve(static_cast<std::size_t>(12 * c.num_hidden_layers + 3));
  const auto add = [&](std::string name, std::vector<std::int64_t> shape, std::vector<std::string> dimensions) {
    specs.push_back({std::move(name), std::move(shape), std::move(dimensions)});
  };
  add("model.embed_tokens.weight", {c.vocab_size, c.hidden_size}, {field("vocab_size", c.vocab_size), hidden});
  for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const auto p = fmt::format("model.layers.{}.", i);
    const auto linear = [&](const std::string& name, std::int64_t out, const std::string& out_dim, std::int64_t in,
                            const std::string& in_dim, bool bias) {
      add(p + name + ".weight", {out, in}, {out_dim, in_dim});
      if (bias) add(p + name + ".bias", {out}, {out_dim});
    };
    const auto q = c.num_attention_heads * c.head_dim;
    const auto kv = c.num_key_value_heads * c.head_dim;
    linear("self_attn.q_proj", q, q_dim, c.hidden_size, hidden, c.qkv_bias);
    linear("self_attn.k_proj", kv, kv_dim, c.hidden_size, hidden, c.qkv_bias);
    linear("self_attn.v_proj", kv, kv_dim, c.hidden_size, hidden, c.qkv_bias);
    linear("self_attn.o_proj", c.hidden_size, hidden, q, q_dim, c.o_bias);
    if (c.qk_norm) {
      add(p + "self_attn.q_norm.weight", {c.head_dim}, {field("head_dim", c.head_dim)});
      add(p + "self_attn.k_norm.weight", {c.head_dim}, {field("head_dim", c.head_dim)});
    }
    linear("mlp.gate_proj", c.intermediate_size, intermediate, c.hidden_size, hidden, /*bias=*/false);
    linear("mlp.up_proj", c.intermediate_size, intermediate, c.hidden_size, hidden, /*bias=*/false);
    linear("mlp.down_proj", c.hidden_size, hidden, c.intermediate_size, intermediate, /*bias=*/false);
    add(p + "input_layernorm.weight", {c.hidden_size}, {hidden});
    add(p + "post_attention_layernorm.weight", {c.hidden_size}, {hidden});
  }
  add("model.norm.weight", {c.hidden_size}, {hidden});
  if (!c.tie_word_embeddings)
    add("lm_head.weight", {c.vocab_size, c.hidden_size}, {field("vocab_size", c.vocab_size), hidden});
  return specs;
}

torch::Tensor causal_padding_mask(const torch::Tensor& valid, std::int64_t num_queries) {
  // valid [B, S] → mask [B, 1, T, S]: key j visible to query i (at absolute position S − T + i) iff j ≤ S − T + i
  // and key j is a real token; the diagonal is always visible.
  const auto keys = valid.size(1);
  const auto options = torch::TensorOptions().device(valid.device());
  const auto query_pos = torch::arange(keys - num_queries, keys, options.dtype(torch::kInt64)).unsqueeze(1);  // [T, 1]
  const auto key_pos = torch::arange(keys, options.dtype(torch::kInt64)).unsqueeze(0);                         // [1, S]
  const auto causal = key_pos <= query_pos;                                                                    // [T, S]
  const auto diagonal = key_pos == query_pos;
  return ((causal.unsqueeze(0) & valid.to(torch::kBool).unsqueeze(1)) | diagonal.unsqueeze(0)).unsqueeze(1);
}

torch::Tensor positions_from_valid(const torch::Tensor& valid) {
  return (valid.to(torch::kInt64).cumsum(1) - 1).clamp_min(0);
}

void initialize_weights(LlamaForCausalLM& model, std::uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& item : model->named_parameters()) {
    auto& param = item.value();
    if (item.key().ends_with("norm.weight")) {
      param.fill_(1.0);
    } else if (item.key().ends_with(".bias")) {
      param.zero_();
    } else {
      param.copy_(at::normal(0.0, 0.02, param.sizes(), generator, torch::TensorOptions().dtype(param.scalar_type())));
    }
  }
}

}  // namespace grpo::policy
