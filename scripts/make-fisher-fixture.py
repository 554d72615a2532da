#!/usr/bin/env python3
"""make-fisher-fixture.py — the Fisher diagonal computed by PyTorch autograd, for
tests/unit/test-fisher.c (src/core/eval/fisher.h, QB_FISHER_DATA labels).

The model and its forward come from make-train-fixtures.py (stories260K in plain PyTorch ops,
checked there against llama2.c's logits). The text is the 32 tokens llama2.c fed (the first
is BOS), cut as eval.h cuts a text: chunks of 16, each chunk's first token replaced by BOS.
Per chunk, the gradient of the summed next-token log-likelihood over the chunk's scored
positions (half: positions 8..14, as the scan scores; all: 0..14), squared and summed over
the chunks, divided by the positions: F = (1/N) Σ_chunks (∂ Σ_t log p_t(y_t) / ∂θ)².

Writes OUT/fisher/: index.json (tensors with shapes, per-tensor sums of F for both position
sets, which tensors' full diagonals half.f32 holds), half.f32 (float32 little-endian, the
listed tensors one after another). Run with Debian's PyTorch:

  /usr/bin/python3 scripts/make-fisher-fixture.py --models ../shared/models --out tests/fixtures/train
"""
import argparse
import importlib.util
import json
import os

import torch

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("mtf", os.path.join(here, "make-train-fixtures.py"))
mtf = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mtf)

N_CTX = 16
FULL = ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_v.weight", "blk.0.ffn_down.weight",
        "blk.4.attn_k.weight", "blk.4.attn_output.weight", "blk.4.ffn_gate.weight", "blk.4.ffn_up.weight"]


def fisher(cfg, w, tokens, first):
    params = mtf.params_of(cfg, w)
    diag = {n: torch.zeros_like(t) for n, t in params}
    n_pos = 0
    for c in range(len(tokens) // N_CTX):
        chunk = list(tokens[c * N_CTX:(c + 1) * N_CTX])
        chunk[0] = 1  # BOS
        for _, t in params:
            t.grad = None
        logits = mtf.forward(cfg, params, chunk)
        logp = torch.log_softmax(logits, dim=-1)
        pos = list(range(first, N_CTX - 1))
        ll = sum(logp[t, chunk[t + 1]] for t in pos)
        ll.backward()
        for n, t in params:
            diag[n] += t.grad.detach() ** 2
        n_pos += len(pos)
    return {n: d / n_pos for n, d in diag.items()}, [n for n, _ in params], [list(t.shape) for _, t in params]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="../shared/models")
    ap.add_argument("--out", default="tests/fixtures/train")
    a = ap.parse_args()
    torch.set_num_threads(2)
    src = os.path.join(a.models, "stories260K")
    cfg, w = mtf.read_llama2c(os.path.join(src, "stories260K.bin"))
    tokens, _ = mtf.reference_logits(os.path.join(src, "reference-logits.txt"))
    assert tokens[0] == 1 and len(tokens) >= 2 * N_CTX
    half, names, shapes = fisher(cfg, w, tokens, N_CTX // 2)
    full, _, _ = fisher(cfg, w, tokens, 0)
    out = os.path.join(a.out, "fisher")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "half.f32"), "wb") as f:
        for n in FULL:
            f.write(half[n].numpy().astype("<f4").tobytes())
    index = {"model": "stories260K/stories260K.bin", "tokens": tokens[:2 * N_CTX], "n_ctx": N_CTX,
             "labels": "the text's next tokens (QB_FISHER_DATA)", "torch": torch.__version__,
             "tensors": [[n, s] for n, s in zip(names, shapes)],
             "sum_half": [float(half[n].double().sum()) for n in names],
             "sum_all": [float(full[n].double().sum()) for n in names],
             "full_half": FULL}
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")
    print("fisher: %d tensors, %d full diagonals written" % (len(names), len(FULL)))


if __name__ == "__main__":
    main()
