#!/usr/bin/env python3
"""GRPO in grpo-cpp and in TRL side by side: the same embedded base policy (examples/base_policy, Hugging Face
layout), the same generated arithmetic prompts (written by `grpo dataset`, in the order our trainer draws them), the
same rewards (accuracy 1.0 + format 0.5, the R1-Zero pair) and hyper-parameters, both on the CPU with the same
threads, one after the other. Both final policies are then evaluated by the same command (`grpo eval`, greedy, on the
same held-out problems). Prints one JSON line: median wall time per GRPO step for each, their ratio, and the final
held-out accuracies.

  .venv/bin/python bench/trl_side_by_side.py [--grpo build/bin/grpo] [--steps 40] [--threads 2] [--seed 1]
                                             [--eval-problems 1000]

One GRPO step = P prompts × G samples generated, then the update (2 minibatches of 64, as in the config). TRL
counts optimizer steps, so it runs 2 × steps of them with steps_per_generation = 2 (one generation serves both).
Needs trl from PyPI (scripts/setup installs it).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import torch

CONFIG = "examples/r1_zero_arithmetic.textproto"


def grpo(binary, *args, capture=True):
    result = subprocess.run([binary, *args], capture_output=capture, text=True)
    if result.returncode != 0:
        sys.exit(f"grpo {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


# The R1-Zero pair as our graders define them (reward/accuracy_grader.cpp, reward/r1_format.cpp): the answer is the
# content of the last <answer>…</answer> block, an integer equal to the reference; the format is one think block, one
# answer block with non-empty content, nothing else.
ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S)
FORMAT = re.compile(r"^\s*<think>(?:(?!<think>|</think>|<answer>|</answer>).)*</think>\s*<answer>"
                    r"(?:(?!<think>|</think>|<answer>|</answer>).)*\S(?:(?!<think>|</think>|<answer>|</answer>).)*</answer>\s*$",
                    re.S)


def accuracy_reward(completions, answer, **kwargs):
    scores = []
    for completion, reference in zip(completions, answer):
        found = ANSWER.findall(completion)
        text = found[-1].strip() if found else ""
        try:
            scores.append(1.0 if text and int(text) == int(reference) else 0.0)
        except ValueError:
            scores.append(0.0)
    return scores


def format_reward(completions, **kwargs):
    return [1.0 if FORMAT.match(c) else 0.0 for c in completions]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--grpo", default="build/bin/grpo")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--eval-problems", type=int, default=1000)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="grpo-trl-")
    prompts_per_step, group = 16, 8
    common = ["--set", f"steps={args.steps}", "--set", f"seed={args.seed}", "--set", "eval.every_steps=0",
              "--set", "checkpoint.every_steps=0", "--set", "logging.progress=QUIET", "--set", f"runtime.threads={args.threads}",
              "--set", "logging.tensorboard=false"]

    # Ours.
    grpo(args.grpo, "train", CONFIG, *common, "--set", f"output_dir={work}", "--set", "name=ours")
    rows = [json.loads(line) for line in open(os.path.join(work, "ours", "metrics.jsonl"))]
    ours_steps = [r["time_step_s"] for r in rows if "time_step_s" in r][1:]  # the first step warms up

    # TRL, on the same prompts in the same order.
    import datasets
    import transformers
    from trl import GRPOConfig, GRPOTrainer

    torch.set_num_threads(args.threads)
    lines = [json.loads(l) for l in grpo(args.grpo, "dataset", CONFIG, "--count", str(args.steps * prompts_per_step)).splitlines()]
    dataset = datasets.Dataset.from_list([{"prompt": l["prompt"], "answer": l["answer"]} for l in lines])
    model_dir = "examples/base_policy"
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = GRPOConfig(
        output_dir=os.path.join(work, "trl"), max_steps=2 * args.steps, per_device_train_batch_size=64,
        gradient_accumulation_steps=1, num_generations=group, steps_per_generation=2, max_completion_length=64,
        temperature=1.0, top_p=1.0, top_k=0, learning_rate=3e-4, lr_scheduler_type="constant_with_warmup", warmup_steps=10,
        beta=0.01, epsilon=0.2, loss_type="grpo", scale_rewards="group", max_grad_norm=1.0, num_iterations=1,
        reward_weights=[1.0, 0.5], shuffle_dataset=False, seed=args.seed, logging_steps=1, save_strategy="no",
        report_to=[], use_cpu=True, bf16=False, disable_dropout=True)
    step_times = []

    class Timer(transformers.TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.start = time.perf_counter()

        def on_step_end(self, *a, **k):
            step_times.append(time.perf_counter() - self.start)

    trainer = GRPOTrainer(model=model, reward_funcs=[accuracy_reward, format_reward], args=config, train_dataset=dataset,
                          processing_class=tokenizer, callbacks=[Timer()])
    trainer.train()
    trl_dir = os.path.join(work, "trl", "final")
    trainer.save_model(trl_dir)
    tokenizer.save_pretrained(trl_dir)
    # A GRPO step is two optimizer steps (the generation happens in the first); the first pair warms up.
    trl_steps = [step_times[i] + step_times[i + 1] for i in range(2, len(step_times) - 1, 2)]

    def held_out(model_path):
        # More problems than the config's 200 during training: one problem is then 0.1%, not 0.5%.
        return json.loads(grpo(args.grpo, "eval", "--model", model_path, "--config", CONFIG, "--num-problems",
                               str(args.eval_problems)).strip().splitlines()[-1])["accuracy"]

    ours_accuracy = held_out(os.path.join(work, "ours", "final"))
    trl_accuracy = held_out(trl_dir)
    ours_median, trl_median = statistics.median(ours_steps), statistics.median(trl_steps)
    print(json.dumps({
        "steps": args.steps, "threads": args.threads, "prompts_per_step": prompts_per_step, "group_size": group,
        "ours_step_seconds": ours_median, "trl_step_seconds": trl_median, "ratio": trl_median / ours_median,
        "base_eval_accuracy": held_out(model_dir),
        "eval_problems": args.eval_problems, "ours_eval_accuracy": ours_accuracy, "trl_eval_accuracy": trl_accuracy,
        "trl": __import__("trl").__version__, "transformers": transformers.__version__, "work_dir": work}))


if __name__ == "__main__":
    main()
