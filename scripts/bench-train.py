#!/usr/bin/env python3
"""bench-train.py — the training step of tests/bench/bench_train.c in PyTorch, for the
throughput ratio: a Hugging Face Llama directory (safetensors F32/F16/BF16, rotate-half RoPE,
grouped-query attention, SiLU gate; the architecture qb-docs-26m has) written in plain PyTorch
ops, f32, CPU, one sequence of T tokens (ids (i * 2654435761) mod vocab, as bench_train),
next-token cross-entropy, backward to every weight; N timed steps after one warm-up.

  python3 scripts/bench-train.py HF_DIR [T=256] [N=5] [threads=2]
"""
import json
import os
import struct
import sys
import time

import numpy as np
import torch


def load(d):
    idx = os.path.join(d, "model.safetensors.index.json")
    files = sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) else ["model.safetensors"]
    w = {}
    for f in files:
        blob = open(os.path.join(d, f), "rb").read()
        (n,) = struct.unpack("<Q", blob[:8])
        hdr = json.loads(blob[8:8 + n])
        base = 8 + n
        for k, v in hdr.items():
            if k == "__metadata__":
                continue
            a, b = v["data_offsets"]
            raw = blob[base + a:base + b]
            if v["dtype"] == "BF16":
                x = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
            elif v["dtype"] == "F16":
                x = np.frombuffer(raw, "<f2").astype(np.float32)
            else:
                x = np.frombuffer(raw, "<f4").copy()
            w[k] = torch.tensor(x.reshape(v["shape"]), requires_grad=True)
    return w


def rms(x, g, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * g


def rope(x, T, hd, theta):
    inv = 1.0 / theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd)
    ang = torch.arange(T, dtype=torch.float32)[:, None] * inv[None, :]
    c, s = torch.cos(ang).repeat(1, 2)[:, None, :], torch.sin(ang).repeat(1, 2)[:, None, :]
    x1, x2 = x[..., :hd // 2], x[..., hd // 2:]
    return x * c + torch.cat((-x2, x1), -1) * s


def main():
    d = sys.argv[1]
    T = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    N = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 2)
    cfg = json.load(open(os.path.join(d, "config.json")))
    w = load(d)
    H, KV, dim = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["hidden_size"]
    hd = cfg.get("head_dim") or dim // H
    eps = cfg["rms_norm_eps"]
    theta = (cfg.get("rope_parameters") or {}).get("rope_theta", cfg.get("rope_theta", 10000.0))
    V = cfg["vocab_size"]
    tok = torch.tensor([(i * 2654435761) % (2 ** 32) % V for i in range(T)])
    mask = torch.full((T, T), float("-inf")).triu(1)
    out_w = w.get("lm_head.weight", w["model.embed_tokens.weight"])

    def step():
        x = w["model.embed_tokens.weight"][tok]
        for l in range(cfg["num_hidden_layers"]):
            p = "model.layers.%d." % l
            xn = rms(x, w[p + "input_layernorm.weight"], eps)
            q = (xn @ w[p + "self_attn.q_proj.weight"].T).view(T, H, hd)
            k = (xn @ w[p + "self_attn.k_proj.weight"].T).view(T, KV, hd)
            v = (xn @ w[p + "self_attn.v_proj.weight"].T).view(T, KV, hd)
            q, k = rope(q, T, hd, theta), rope(k, T, hd, theta)
            k, v = k.repeat_interleave(H // KV, 1), v.repeat_interleave(H // KV, 1)
            a = torch.softmax(torch.einsum("ihd,jhd->hij", q, k) / hd ** 0.5 + mask, -1)
            x = x + torch.einsum("hij,jhd->ihd", a, v).reshape(T, H * hd) @ w[p + "self_attn.o_proj.weight"].T
            xn = rms(x, w[p + "post_attention_layernorm.weight"], eps)
            h = torch.nn.functional.silu(xn @ w[p + "mlp.gate_proj.weight"].T) * (xn @ w[p + "mlp.up_proj.weight"].T)
            x = x + h @ w[p + "mlp.down_proj.weight"].T
        logits = rms(x, w["model.norm.weight"], eps) @ out_w.T
        loss = torch.nn.functional.cross_entropy(logits[:-1], tok[1:])
        for t in w.values():
            t.grad = None
        loss.backward()
        return loss.item()

    step()
    t0 = time.perf_counter()
    for _ in range(N):
        loss = step()
    sec = time.perf_counter() - t0
    print("pytorch %s train step: %d tokens x %d steps, %.3f s, %.1f tokens/s, loss %.6f" % (
        torch.__version__, T, N, sec, T * N / sec, loss))


if __name__ == "__main__":
    main()
