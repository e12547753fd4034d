#!/usr/bin/env python3
"""The peer side of `grpo bench rollout`: transformers' generate on the same checkpoint, prompts, batch and number of
new tokens as our engine, in the same invocation (grpo runs this script as a subprocess).

  hf_generate.py --model DIR --prompts FILE.json --new-tokens N --threads T --repeats R [--dtype float32] [--device cpu]

FILE.json is a list of prompts (lists of token ids, all the same length). Sampling matches ours: temperature 1, no
top-k/top-p, EOS ignored, so every row generates exactly N tokens. Prints one JSON line: {"seconds": [...],
"tokens": B*N, "torch": version, "transformers": version}; the first, untimed run warms up.
"""
import argparse
import json
import time

import torch
import transformers


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompts", required=True)
    parser.add_argument("--new-tokens", type=int, required=True)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[args.dtype]
    model = transformers.AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype).to(args.device).eval()
    with open(args.prompts) as f:
        prompts = json.load(f)
    ids = torch.tensor(prompts, dtype=torch.long, device=args.device)
    mask = torch.ones_like(ids)
    config = transformers.GenerationConfig(do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=args.new_tokens,
                                           min_new_tokens=args.new_tokens, eos_token_id=None, pad_token_id=0)
    seconds = []
    with torch.inference_mode():
        for run in range(args.repeats + 1):
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            out = model.generate(ids, attention_mask=mask, generation_config=config)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - start
            assert out.shape == (ids.shape[0], ids.shape[1] + args.new_tokens), out.shape
            if run > 0:
                seconds.append(elapsed)
    print(json.dumps({"seconds": seconds, "tokens": ids.shape[0] * args.new_tokens, "torch": torch.__version__,
                      "transformers": transformers.__version__}))


if __name__ == "__main__":
    main()
