#!/usr/bin/env python3
"""Our checkpoint weights against the reference implementations: the `safetensors` package and huggingface_hub (the
splitter and loader transformers uses). Run by tests/policy/checkpoint_weights_test.cpp (both commands in one
process, as importing torch takes seconds); prints one JSON object, {"read": ..., "write": ...}.

  python scripts/safetensors_crosscheck.py [read DIR] [write DIR MAX_SHARD_BYTES]

  read DIR
      Loads the checkpoint in DIR that grpo-cpp wrote: every shard with safetensors.torch.load_file (checking that the
      index lists exactly the tensors each shard holds and that total_size adds up), then the whole folder into a
      module with huggingface_hub.load_torch_model(strict=True). Gives {"metadata": {shard: metadata},
      "tensors": {name: {"dtype", "shape", "hex"}}}, "hex" being the tensor's bytes.
  write DIR MAX_SHARD_BYTES
      Writes DIR/single/model.safetensors with safetensors.torch.save_file (metadata {"format": "pt", "origin":
      "python"}) and DIR/sharded with huggingface_hub.save_torch_state_dict(max_shard_size=MAX_SHARD_BYTES), both
      from the same tensors, and gives {"tensors": {...}} as above for the C++ side to compare with what it reads.

Tested with safetensors 0.8.0, huggingface_hub 2.4.0, torch 2.11.
"""

import json
import os
import sys

import torch
from huggingface_hub import load_torch_model, save_torch_state_dict
from safetensors import safe_open
from safetensors.torch import load_file, save_file

DTYPE_NAMES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64",
    torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL",
}


def describe(tensor):
    raw = tensor.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    return {"dtype": DTYPE_NAMES[tensor.dtype], "shape": list(tensor.shape), "hex": raw.hex()}


def module_with(names_and_tensors):
    """An nn.Module whose parameters/buffers have exactly these dotted names, for load_torch_model(strict=True)."""
    root = torch.nn.Module()
    for name, tensor in names_and_tensors.items():
        *path, leaf = name.split(".")
        module = root
        for part in path:
            if not hasattr(module, part):
                module.add_module(part, torch.nn.Module())
            module = getattr(module, part)
        module.register_buffer(leaf, torch.zeros_like(tensor))
    return root


def read(directory):
    index_path = os.path.join(directory, "model.safetensors.index.json")
    if os.path.exists(index_path):
        with open(index_path) as f:
            index = json.load(f)
        shards = sorted(set(index["weight_map"].values()))
    else:
        index = None
        shards = ["model.safetensors"]
    tensors, metadata = {}, {}
    for shard in shards:
        path = os.path.join(directory, shard)
        loaded = load_file(path)
        with safe_open(path, framework="pt") as f:
            metadata[shard] = f.metadata()
        if index is not None:
            listed = sorted(name for name, file in index["weight_map"].items() if file == shard)
            assert sorted(loaded) == listed, f"{shard} holds {sorted(loaded)} but the index lists {listed}"
        for name, tensor in loaded.items():
            assert name not in tensors, f"{name} is in two shards"
            tensors[name] = tensor
    if index is not None:
        total = sum(t.numel() * t.element_size() for t in tensors.values())
        assert index["metadata"]["total_size"] == total, f"total_size {index['metadata']['total_size']} != {total}"
    model = module_with(tensors)
    result = load_torch_model(model, directory, strict=True)
    assert not result.missing_keys and not result.unexpected_keys, result
    for name, tensor in model.state_dict().items():
        assert describe(tensor) == describe(tensors[name]), f"load_torch_model disagrees on {name}"
    return {"metadata": metadata, "tensors": {name: describe(t) for name, t in tensors.items()}}


def write(directory, max_shard_bytes):
    generator = torch.Generator().manual_seed(1234)
    tensors = {
        "model.embed_tokens.weight": torch.randn(64, 16, generator=generator).to(torch.bfloat16),
        "model.layers.0.self_attn.q_proj.weight": torch.randn(16, 16, generator=generator).to(torch.float16),
        "model.layers.0.self_attn.q_proj.bias": torch.randn(16, generator=generator),
        "model.layers.0.mlp.up_proj.weight": torch.randn(32, 16, generator=generator).to(torch.bfloat16),
        "model.layers.1.mlp.up_proj.weight": torch.randn(32, 16, generator=generator).to(torch.bfloat16),
        "model.norm.weight": torch.tensor([1.0, -0.0, float("inf"), float("nan")] * 4),
        "extras.steps": torch.tensor([[1, -2], [2**40, -(2**62)]], dtype=torch.int64),
        "extras.flags": torch.tensor([True, False, True]),
        "extras.scalar": torch.tensor(0.5, dtype=torch.float64),
    }
    for sub in ("single", "sharded"):
        os.makedirs(os.path.join(directory, sub), exist_ok=True)
    save_file(tensors, os.path.join(directory, "single", "model.safetensors"),
              metadata={"format": "pt", "origin": "python"})
    save_torch_state_dict(tensors, os.path.join(directory, "sharded"), max_shard_size=max_shard_bytes)
    return {"tensors": {name: describe(t) for name, t in tensors.items()}}


def main():
    args, result = sys.argv[1:], {}
    while args:
        if args[0] == "read" and len(args) >= 2:
            result["read"], args = read(args[1]), args[2:]
        elif args[0] == "write" and len(args) >= 3:
            result["write"], args = write(args[1], int(args[2])), args[3:]
        else:
            sys.exit(__doc__)
    if not result:
        sys.exit(__doc__)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
