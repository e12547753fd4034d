#!/usr/bin/env python3
"""Golden values for the GRPO objective variants (tests/rl/grpo_golden_test.cpp), computed in float64 with PyTorch the
way TRL (trl/trainer/grpo_trainer.py, 0.2x: _compute_loss) and verl (verl/trainer/ppo/core_algos.py:
compute_grpo_outcome_advantage, compute_policy_loss_vanilla, agg_loss, kl_penalty) write them. Each case names the
variant it follows. The C++ side implements the same formulas independently (rl/grpo_math.cpp) and must match every
loss and every gradient d loss / d logprobs to 1e-6.

  make_grpo_golden.py OUT.json
"""
import json
import sys

import torch

torch.manual_seed(20250507)
DT = torch.float64

# A batch of P = 2 prompts × G = 4 samples, T = 6 completion tokens, right-padded (mask 0 past each completion).
P, G, T = 2, 4, 6
B = P * G
LENGTHS = [6, 3, 5, 1, 4, 6, 2, 5]
MASK = torch.tensor([[1.0 if t < n else 0.0 for t in range(T)] for n in LENGTHS], dtype=DT)
REWARDS = torch.tensor([[1.0, 0.0, 0.5, 1.0], [0.0, 0.0, 1.0, 0.25]], dtype=DT)
# Log-probs near each other so that some ratios fall inside the clip range and some outside it.
OLD = (-torch.rand(B, T, dtype=DT) * 2.0 - 0.05)
LOGP = OLD + torch.randn(B, T, dtype=DT) * 0.25
# Two tokens of negatively advantaged samples (prompt 0's samples 1 and 2) far above the old policy, ratio > 3: the
# dual clip has something to clip.
LOGP[1, 0] = OLD[1, 0] + 1.5
LOGP[2, 1] = OLD[2, 1] + 1.3
REF = OLD + torch.randn(B, T, dtype=DT) * 0.3
ROLLOUT = OLD + torch.randn(B, T, dtype=DT) * 0.2  # the inference engine's log-probs of the same tokens
TOKEN_BUDGET = 8  # Dr. GRPO's L_budget (TRL: max_completion_length)


def advantages(rewards, norm, eps):
    # verl compute_grpo_outcome_advantage (norm_adv_by_std_in_grpo) / TRL: group mean, std unbiased (torch.std).
    mean = rewards.mean(dim=1, keepdim=True)
    centered = rewards - mean
    if norm == "group":
        return (centered / (rewards.std(dim=1, keepdim=True) + eps)).reshape(-1)
    if norm == "batch":  # TRL scale_rewards="batch": group mean, std over the whole batch
        return (centered / (rewards.std() + eps)).reshape(-1)
    return centered.reshape(-1)  # Dr. GRPO: no std


def kl(logp, ref, estimator):
    # verl kl_penalty: "k1" (kl) = logp − ref, "k2" (mse) = ½ (logp − ref)², "k3" (low_var_kl) = exp(ref − logp) − (ref − logp) − 1.
    if estimator == "k1":
        return logp - ref
    if estimator == "k2":
        return 0.5 * (logp - ref) ** 2
    log_ratio = ref - logp
    return torch.exp(log_ratio) - log_ratio - 1.0


def aggregate(per_token, mask, mode, global_tokens=None):
    if mode == "seq_mean_token_mean":  # TRL "grpo", verl "seq-mean-token-mean"
        return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if mode == "token_mean":  # TRL "dapo" (normalised by the tokens of the whole batch), verl "token-mean"
        return (per_token * mask).sum() / (global_tokens if global_tokens is not None else mask.sum().clamp(min=1.0))
    if mode == "token_mean_local":  # TRL "bnpo": the tokens of this (micro)batch
        return (per_token * mask).sum() / mask.sum().clamp(min=1.0)
    if mode == "seq_mean_token_sum_norm":  # TRL "dr_grpo", verl "seq-mean-token-sum-norm"
        return (per_token * mask).sum() / (per_token.size(0) * TOKEN_BUDGET)
    if mode == "seq_mean_token_sum":  # verl "seq-mean-token-sum"
        return (per_token * mask).sum(-1).mean()
    raise ValueError(mode)


def case(name, reference, *, aggregation="seq_mean_token_mean", norm="group", eps=1e-4, clip_low=0.2, clip_high=0.2,
         dual_clip=0.0, ratio_level="token", beta=0.0, estimator="k3", kl_in_reward=False, tis_cap=0.0, global_tokens=None):
    rewards = REWARDS.clone()
    if kl_in_reward and beta > 0:
        # verl use_kl_in_reward: token rewards minus β·KL(old ‖ ref) per token; GRPO sums them into the score.
        rewards = rewards - beta * (kl(OLD, REF, estimator) * MASK).sum(-1).reshape(P, G)
    adv = advantages(rewards, norm, eps)
    logp = LOGP.clone().requires_grad_(True)
    A = adv.unsqueeze(1)
    log_ratio = logp - OLD
    if ratio_level == "sequence":  # TRL importance_sampling_level="sequence" (GSPO)
        log_ratio = ((log_ratio * MASK).sum(-1) / MASK.sum(-1).clamp(min=1.0)).unsqueeze(-1)
    ratio = torch.exp(log_ratio)
    loss1 = -A * ratio
    loss2 = -A * torch.clamp(ratio, 1 - clip_low, 1 + clip_high)
    per_token = torch.maximum(loss1, loss2)
    if dual_clip > 0:  # verl compute_policy_loss_vanilla with clip_ratio_c
        per_token = torch.where(A < 0, torch.minimum(-A * dual_clip, per_token), per_token)
    if tis_cap > 0:  # verl rollout importance sampling, token level: min(π_old / π_rollout, C), detached
        per_token = per_token * torch.exp(OLD - ROLLOUT).clamp(max=tis_cap)
    per_token = per_token.expand(B, T) if per_token.shape[1] == 1 else per_token
    if beta > 0 and not kl_in_reward:  # TRL: per_token_loss + β · per_token_kl
        per_token = per_token + beta * kl(logp, REF, estimator)
    loss = aggregate(per_token, MASK, aggregation, global_tokens)
    loss.backward()
    params = dict(aggregation=aggregation, advantage_norm=norm, advantage_eps=eps, clip_eps_low=clip_low,
                  clip_eps_high=clip_high, dual_clip=dual_clip, ratio_level=ratio_level, kl_beta=beta,
                  kl_estimator=estimator, kl_in_reward=kl_in_reward, tis_cap=tis_cap, token_budget=TOKEN_BUDGET,
                  global_tokens=global_tokens if global_tokens is not None else 0.0)
    return dict(name=name, reference=reference, params=params, advantages=adv.tolist(), loss=loss.item(),
                grad=logp.grad.tolist())


def main():
    cases = [
        case("grpo", "DeepSeekMath GRPO: TRL loss_type='grpo', beta=0.04 (k3 in the loss)", beta=0.04),
        case("r1_zero", "DeepSeek-R1-Zero: beta=0.001, k3 in the loss", beta=0.001),
        case("dapo", "DAPO: TRL loss_type='dapo', clip-higher 0.2/0.28, beta=0", aggregation="token_mean",
             clip_high=0.28, global_tokens=float(MASK.sum().item())),
        case("dapo_global_tokens", "DAPO normalised by the tokens of a larger global batch (micro-batch of two)",
             aggregation="token_mean", clip_high=0.28, global_tokens=80.0),
        case("bnpo", "TRL loss_type='bnpo': token mean of the local batch", aggregation="token_mean_local"),
        case("dr_grpo", "Dr. GRPO: TRL loss_type='dr_grpo', no std, L_budget=8", aggregation="seq_mean_token_sum_norm",
             norm="none"),
        case("seq_mean_token_sum", "verl loss_agg_mode='seq-mean-token-sum'", aggregation="seq_mean_token_sum"),
        case("gspo", "GSPO: TRL importance_sampling_level='sequence', eps 3e-4/4e-4", ratio_level="sequence",
             clip_low=3e-4, clip_high=4e-4),
        case("batch_std", "TRL scale_rewards='batch': group mean, batch std", norm="batch"),
        case("dual_clip", "verl clip_ratio_c=3 (dual clip on negative advantages)", dual_clip=3.0, clip_low=0.05,
             clip_high=0.05),
        case("kl_k1_loss", "k1 estimator in the loss", beta=0.1, estimator="k1"),
        case("kl_k2_loss", "k2 estimator in the loss", beta=0.1, estimator="k2"),
        case("kl_k1_reward", "verl use_kl_in_reward with kl_penalty='kl' (k1)", beta=0.1, estimator="k1",
             kl_in_reward=True),
        case("kl_k3_reward", "verl use_kl_in_reward with kl_penalty='low_var_kl' (k3)", beta=0.1, estimator="k3",
             kl_in_reward=True),
        case("tis", "truncated importance sampling against the rollout engine's log-probs, cap 1.2", tis_cap=1.2),
        case("eps_verl", "advantage epsilon 1e-6 as verl", eps=1e-6),
    ]
    out = dict(
        generator="scripts/make_grpo_golden.py", torch=torch.__version__,
        inputs=dict(P=P, G=G, T=T, mask=MASK.tolist(), rewards=REWARDS.tolist(), logprobs=LOGP.tolist(),
                    old_logprobs=OLD.tolist(), ref_logprobs=REF.tolist(), rollout_logprobs=ROLLOUT.tolist()),
        cases=cases)
    with open(sys.argv[1], "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
