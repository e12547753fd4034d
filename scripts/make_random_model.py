#!/usr/bin/env python3
"""Writes a randomly initialised checkpoint of a named shape in Hugging Face layout, for benchmarks
(`grpo bench rollout`, bench/checkpoint_load_bench.cpp): transformers builds and saves the model, so the files are
exactly what users download, only with random weights.

  make_random_model.py SHAPE OUT [--tokenizer DIR] [--dtype float32|bfloat16] [--seed N]

Shapes (Qwen2 architecture, tied embeddings, Qwen's 151,936-token vocabulary):
  qwen2-50m     hidden 256, 12 layers, 4 heads / 2 KV heads, MLP 1024: 50.7M parameters (38.9M of them the embedding)
  qwen2.5-0.5b  Qwen2.5-0.5B's config: 494M parameters
  qwen2.5-1.5b  Qwen2.5-1.5B's config: 1.54B parameters
The tokenizer files come from --tokenizer (default ../shared/fixtures/tokenizers/qwen3, Qwen's own tokenizer);
without one, no tokenizer is written and grpo refuses the folder.
"""
import argparse
import os
import shutil

import torch
import transformers

SHAPES = {
    "qwen2-50m": dict(hidden_size=256, intermediate_size=1024, num_hidden_layers=12, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=4096),
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2, max_position_embeddings=32768),
    "qwen2.5-1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                         num_key_value_heads=2, max_position_embeddings=32768),
}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser()
    parser.add_argument("shape", choices=sorted(SHAPES))
    parser.add_argument("out")
    parser.add_argument("--tokenizer", default=os.path.join(here, "..", "..", "shared", "fixtures", "tokenizers", "qwen3"))
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    config = transformers.Qwen2Config(vocab_size=151936, tie_word_embeddings=True, rope_theta=1000000.0, rms_norm_eps=1e-6,
                                      bos_token_id=151643, eos_token_id=151643, use_sliding_window=False,
                                      **SHAPES[args.shape])
    config.architectures = ["Qwen2ForCausalLM"]
    dtype = torch.float32 if args.dtype == "float32" else torch.bfloat16
    model = transformers.Qwen2ForCausalLM(config).to(dtype)
    model.save_pretrained(args.out)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        source = os.path.join(args.tokenizer, name)
        if os.path.exists(source):
            shutil.copy(source, os.path.join(args.out, name))
    print(f"{args.shape}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters in {args.out}")


if __name__ == "__main__":
    main()
