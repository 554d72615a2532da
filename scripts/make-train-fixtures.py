#!/usr/bin/env python3
"""make-train-fixtures.py — gradients computed by PyTorch autograd for tests/unit/test-train.c.

For stories260K (../shared/models/stories260K/stories260K.bin, llama2.c's legacy checkpoint)
the script builds the Llama 2 forward in plain PyTorch ops from the checkpoint (RMSNorm eps
1e-5, interleaved RoPE with base 10000, grouped-query causal attention, SiLU-gated FFN, tied
classifier), checks it against llama2.c's own logits (reference-logits.txt: every position
within 1e-4), then takes the mean next-token cross-entropy over the 32 tokens llama2.c fed
(the last position has no target) and lets autograd give the gradient of every weight.

Writes OUT/stories260K/: grads.f32 (float32 little-endian, tensors one after another in the
order of index.json), index.json ({"tensors": [[gguf_name, [rows, cols]], ...], "loss",
"tokens", "torch"}); OUT/fakequant/ (learnable quantization's gradients, see fakequant_fixtures)
and OUT/finetune/ (a few steps of quantization-aware fine-tuning with distillation, see
finetune_fixtures). Run where PyTorch is (the device machine, or Debian's python3-torch):

  python3 scripts/make-train-fixtures.py --models ../shared/models --out tests/fixtures/train
"""
import argparse
import json
import math
import os
import struct

import numpy as np
import torch


def read_llama2c(path):
    blob = open(path, "rb").read()
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = struct.unpack("<7i", blob[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    hs = dim // n_heads
    kvd = n_kv * hs
    f = np.frombuffer(blob, dtype="<f4", offset=28)
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        a = f[pos:pos + n].reshape(shape).copy()
        pos += n
        return torch.tensor(a, dtype=torch.float32)

    w = {"tok_embd": take(vocab, dim), "attn_norm": take(n_layers, dim), "wq": take(n_layers, dim, dim),
         "wk": take(n_layers, kvd, dim), "wv": take(n_layers, kvd, dim), "wo": take(n_layers, dim, dim),
         "ffn_norm": take(n_layers, dim), "w1": take(n_layers, hidden, dim), "w2": take(n_layers, dim, hidden),
         "w3": take(n_layers, hidden, dim), "output_norm": take(dim)}
    assert shared, "stories260K shares its classifier with the embeddings"
    cfg = dict(dim=dim, hidden=hidden, n_layers=n_layers, n_heads=n_heads, n_kv=n_kv, vocab=vocab, seq_len=seq_len)
    return cfg, w


def params_of(cfg, w):
    """Leaf tensors, one per GGUF tensor, in the order the fixture lists them."""
    out = [("token_embd.weight", w["tok_embd"])]
    for l in range(cfg["n_layers"]):
        b = "blk.%d." % l
        out += [(b + "attn_norm.weight", w["attn_norm"][l]), (b + "attn_q.weight", w["wq"][l]),
                (b + "attn_k.weight", w["wk"][l]), (b + "attn_v.weight", w["wv"][l]),
                (b + "attn_output.weight", w["wo"][l]), (b + "ffn_norm.weight", w["ffn_norm"][l]),
                (b + "ffn_gate.weight", w["w1"][l]), (b + "ffn_down.weight", w["w2"][l]),
                (b + "ffn_up.weight", w["w3"][l])]
    out.append(("output_norm.weight", w["output_norm"]))
    return [(n, t.clone().requires_grad_(True)) for n, t in out]


def rmsnorm(x, w, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_interleaved(x, T, hs):
    # x (T, heads, hs): pairs (2i, 2i+1) rotate by pos * 10000^(-2i/hs)
    i = torch.arange(0, hs, 2, dtype=torch.float32)
    freq = 1.0 / torch.pow(torch.tensor(10000.0), i / hs)
    ang = torch.arange(T, dtype=torch.float32)[:, None] * freq[None, :]
    c, s = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).reshape(x.shape)


def forward(cfg, p, tokens):
    P = dict(p)
    T, dim, H, KV = len(tokens), cfg["dim"], cfg["n_heads"], cfg["n_kv"]
    hs = dim // H
    x = P["token_embd.weight"][torch.tensor(tokens)]
    mask = torch.full((T, T), float("-inf")).triu(1)
    for l in range(cfg["n_layers"]):
        b = "blk.%d." % l
        xn = rmsnorm(x, P[b + "attn_norm.weight"])
        q = (xn @ P[b + "attn_q.weight"].T).view(T, H, hs)
        k = (xn @ P[b + "attn_k.weight"].T).view(T, KV, hs)
        v = (xn @ P[b + "attn_v.weight"].T).view(T, KV, hs)
        q, k = rope_interleaved(q, T, hs), rope_interleaved(k, T, hs)
        k = k.repeat_interleave(H // KV, dim=1)
        v = v.repeat_interleave(H // KV, dim=1)
        att = torch.einsum("ihd,jhd->hij", q, k) / (hs ** 0.5) + mask
        o = torch.einsum("hij,jhd->ihd", torch.softmax(att, dim=-1), v).reshape(T, dim)
        x = x + o @ P[b + "attn_output.weight"].T
        xn = rmsnorm(x, P[b + "ffn_norm.weight"])
        h = torch.nn.functional.silu(xn @ P[b + "ffn_gate.weight"].T) * (xn @ P[b + "ffn_up.weight"].T)
        x = x + h @ P[b + "ffn_down.weight"].T
    x = rmsnorm(x, P["output_norm.weight"])
    return x @ P["token_embd.weight"].T


def reference_logits(path):
    rows, tokens = [], []
    for line in open(path):
        if line.startswith("pos "):
            f = line.split()
            tokens.append(int(f[3]))
            rows.append([float(v) for v in f[5:]])
    return tokens, torch.tensor(rows, dtype=torch.float32)


FQ_FORMATS = [  # name, bits, group (-1: per channel), asym
    ("int3-g32-asym", 3, 32, True), ("int4-g64", 4, 64, False), ("int4-channel", 4, -1, False),
    ("int2-g32-asym", 2, 32, True), ("int8-g128-asym", 8, 128, True)]


def round_ste(x):
    return (torch.round(x) - x).detach() + x


def fake_quant(w, v, alpha, beta, bits, group, asym):
    rows, n = w.shape
    g = n if group < 0 else group
    maxq = float(2 ** bits - 1)
    wg, vg = w.reshape(-1, g), v.reshape(-1, g)
    mn, mx = wg.min(dim=1).values, wg.max(dim=1).values
    lo, hi = mn * beta, mx * alpha
    xmin, xmax = torch.clamp(lo, max=0.0), torch.clamp(hi, min=0.0)
    if not asym:
        a = torch.maximum(-xmin, xmax)
        xmin = torch.where(xmin < 0, -a, xmin)
        xmax = a
    s = (xmax - xmin) / maxq
    d = s + (s.half().float() - s).detach() if group > 0 else s
    if asym:
        z = round_ste(-xmin / d)
        if group > 0:
            z = torch.clamp(z, 0.0, maxq)
    else:
        z = torch.full_like(d, float(2 ** (bits - 1)))
    q = torch.clamp(round_ste(wg / d[:, None] + vg) + z[:, None], 0.0, maxq)
    return (d[:, None] * (q - z[:, None])).reshape(rows, n)


def fakequant_fixtures(out):
    os.makedirs(out, exist_ok=True)
    gen = torch.Generator().manual_seed(20261207)
    index = {"torch": torch.__version__, "order": ["w", "v", "alpha", "beta", "r", "wq", "dv", "dalpha", "dbeta"],
             "formats": []}
    rows, n = 6, 128
    for name, bits, group, asym in FQ_FORMATS:
        ng = rows * (n // (n if group < 0 else group))
        w = torch.randn(rows, n, generator=gen) * 0.05
        w[0, 5] = 0.4  # an outlier: clipping matters
        v = (torch.rand(rows, n, generator=gen) - 0.5).requires_grad_(True)
        alpha = (0.5 + 0.5 * torch.rand(ng, generator=gen)).requires_grad_(True)
        beta = (0.5 + 0.5 * torch.rand(ng, generator=gen)).requires_grad_(True)
        r = torch.randn(rows, n, generator=gen)
        wq = fake_quant(w, v, alpha, beta, bits, group, asym)
        (r * wq).sum().backward()
        arrays = [w, v.detach(), alpha.detach(), beta.detach(), r, wq.detach(), v.grad, alpha.grad, beta.grad]
        with open(os.path.join(out, name + ".f32"), "wb") as f:
            for a in arrays:
                f.write(a.detach().numpy().astype("<f4").tobytes())
        index["formats"].append({"name": name, "rows": rows, "n": n, "groups": ng})
        print("fakequant %s: %d groups, |dv| %.3g |dalpha| %.3g |dbeta| %.3g" % (
            name, ng, v.grad.norm().item(), alpha.grad.norm().item(), beta.grad.norm().item()))
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")


# quantization-aware fine-tuning: which format each matrix of stories260K is fake-quantized to
FT_PLAN = [("attn_q", "int3-g32-asym", 3, 32, True), ("attn_k", "int3-g32-asym", 3, 32, True),
           ("attn_v", "int3-g32-asym", 3, 32, True), ("attn_output", "int3-g32-asym", 3, 32, True),
           ("ffn_gate", "int4-g64", 4, 64, False), ("ffn_up", "int4-g64", 4, 64, False),
           ("ffn_down", "int4-channel", 4, -1, False)]
FT = dict(steps=4, warmup=2, min_lr_ratio=0.1, lr=3e-3, weight_decay=0.1, clip=0.5, kd=1.0, ce=0.5, tau=2.0,
          batch=2, seq=16, exact_steps=2, learn_clip=False, clip_lr=1e-3)
FT_CLIP = dict(FT, learn_clip=True, clip_lr=1e-2)


def write_latent(path, trained, clips):
    """The trained tensors in order, then every learned (alpha, beta) pair in the same order."""
    with open(path, "wb") as f:
        for _, t in trained:
            f.write(t.detach().numpy().astype("<f4").tobytes())
        for n, _ in trained:
            if n in clips:
                for x in clips[n]:
                    f.write(x.detach().numpy().astype("<f4").tobytes())


def finetune_fixtures(cfg, w, out, FT):
    """Steps of QAT + distillation on stories260K as quantbench's finetune runs them: latent
    weights fake-quantized by the formats of FT_PLAN (round-to-nearest, gradient straight through:
    wq = w + (q(w) - w).detach()), teacher = the unquantized model, per sequence
    kd * tau^2 * mean_t KL(softmax(teacher/tau) || softmax(student/tau)) + ce * mean next-token CE,
    the step's loss the mean over its sequences; torch.optim.AdamW (weight decay on matrices only),
    LambdaLR with linear warm-up then cosine to min_lr_ratio, clip_grad_norm_. The token
    embeddings (tied classifier) stay. With learn_clip, every fake-quantized matrix also learns
    per-group clip factors alpha, beta (fake_quant's, through the rounding; the weights' gradient
    still straight through: wq = q(w.detach(), alpha, beta) + (w - w.detach())), in their own
    AdamW group (lr clip_lr, no decay, the same schedule, clipped with the rest), kept in [0.5, 1]
    after each step. The latent weights are written after exact_steps steps
    (latent-step2.f32: until then float-level differences cannot move a weight across a rounding
    boundary) and after the last (latent.f32)."""
    os.makedirs(out, exist_ok=True)
    params = params_of(cfg, w)
    teacher = {n: t.detach().clone() for n, t in params}
    trained = [(n, t) for n, t in params if n != "token_embd.weight"]
    fmt_of = {}
    for n, _ in trained:
        for key, name, bits, group, asym in FT_PLAN:
            if n.endswith(key + ".weight"):
                fmt_of[n] = (name, bits, group, asym)
    gen = torch.Generator().manual_seed(20261207)
    seqs = torch.randint(0, cfg["vocab"], (FT["steps"], FT["batch"], FT["seq"]), generator=gen)
    seqs[:, :, 0] = 1  # BOS
    decay = [t for n, t in trained if t.dim() == 2]
    no_decay = [t for n, t in trained if t.dim() < 2]
    clips = {}  # name -> (alpha, beta)
    if FT["learn_clip"]:
        for n, t in trained:
            if n in fmt_of:
                group = fmt_of[n][2]
                ng = t.numel() // (t.shape[1] if group < 0 else group)
                clips[n] = (torch.ones(ng, requires_grad=True), torch.ones(ng, requires_grad=True))
    clip_params = [x for n, _ in trained if n in clips for x in clips[n]]
    groups = [{"params": decay, "weight_decay": FT["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    if clip_params:
        groups.append({"params": clip_params, "weight_decay": 0.0, "lr": FT["clip_lr"]})
    opt = torch.optim.AdamW(groups, lr=FT["lr"], betas=(0.9, 0.999), eps=1e-8)

    def factor(s):
        if s < FT["warmup"]:
            return (s + 1) / FT["warmup"]
        t = (s - FT["warmup"]) / (FT["steps"] - FT["warmup"])
        return FT["min_lr_ratio"] + (1 - FT["min_lr_ratio"]) * 0.5 * (1 + math.cos(math.pi * t))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    tau = FT["tau"]
    steps = []
    for s in range(FT["steps"]):
        opt.zero_grad()
        P = {}
        for n, t in params:
            if n in fmt_of:
                _, bits, group, asym = fmt_of[n]
                if n in clips:
                    q = fake_quant(t.detach(), torch.zeros_like(t), clips[n][0], clips[n][1], bits, group, asym)
                    P[n] = q + (t - t.detach())
                else:
                    ones = torch.ones(t.numel() // (t.shape[1] if group < 0 else group))
                    q = fake_quant(t.detach(), torch.zeros_like(t), ones, ones, bits, group, asym)
                    P[n] = t + (q - t).detach()
            else:
                P[n] = t
        kd_sum, ce_sum, total = 0.0, 0.0, 0.0
        for b in range(FT["batch"]):
            tok = seqs[s, b].tolist()
            with torch.no_grad():
                tl = forward(cfg, list(teacher.items()), tok)
            sl = forward(cfg, list(P.items()), tok)
            p_t = torch.softmax(tl / tau, dim=-1)
            kd = tau * tau * (p_t * (torch.log_softmax(tl / tau, dim=-1) - torch.log_softmax(sl / tau, dim=-1))).sum(-1).mean()
            ce = torch.nn.functional.cross_entropy(sl[:-1], torch.tensor(tok[1:]))
            loss = (FT["kd"] * kd + FT["ce"] * ce) / FT["batch"]
            loss.backward(retain_graph=True)  # the fake quantization is shared by the batch
            kd_sum += kd.item() / FT["batch"]
            ce_sum += ce.item() / FT["batch"]
            total += loss.item()
        norm = torch.nn.utils.clip_grad_norm_([t for _, t in trained] + clip_params, FT["clip"]).item()
        lr = opt.param_groups[0]["lr"]
        opt.step()
        sched.step()
        with torch.no_grad():
            for x in clip_params:
                x.clamp_(0.5, 1.0)
        steps.append({"loss": total, "kd": kd_sum, "ce": ce_sum, "grad_norm": norm, "lr": lr})
        if s + 1 == FT["exact_steps"]:
            write_latent(os.path.join(out, "latent-step%d.f32" % (s + 1)), trained, clips)
        print("finetune step %d: loss %.6f (kd %.6f ce %.6f) |g| %.5f lr %.3g" % (s + 1, total, kd_sum, ce_sum, norm, lr))
    write_latent(os.path.join(out, "latent.f32"), trained, clips)
    names = [[n, list(t.shape)] for n, t in trained]
    names += [[n + suffix, [len(clips[n][0])]] for n, _ in trained if n in clips for suffix in ("#alpha", "#beta")]
    index = {"model": "stories260K/stories260K.bin", "torch": torch.__version__, "params": FT,
             "plan": [[k, name] for k, name, _, _, _ in FT_PLAN], "sequences": seqs.tolist(), "steps": steps,
             "latent": names}
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")


# k-quants (fakequant_kquant.h): name, ggml type, elements per sub-block, codes lo..hi, the
# integer scales' range, the mins' maximum (0: no mins), block bytes
KQ_FORMATS = [("q2_k", 10, 16, 0, 3, 0, 15, 15, 84), ("q3_k", 11, 16, -4, 3, -32, 31, 0, 110),
              ("q4_k", 12, 32, 0, 15, 0, 63, 63, 144), ("q5_k", 13, 32, 0, 31, 0, 63, 63, 176),
              ("q6_k", 14, 16, -32, 31, -128, 127, 0, 210)]


def ggml_quantize(lib_path, gtype, w):
    """The format's own bytes for w (rows × n), by llama.cpp's ggml_quantize_chunk."""
    import ctypes
    lib = ctypes.CDLL(lib_path)

    class InitParams(ctypes.Structure):  # ggml_init's parameters (by value)
        _fields_ = [("mem_size", ctypes.c_size_t), ("mem_buffer", ctypes.c_void_p), ("no_alloc", ctypes.c_bool)]
    lib.ggml_init.restype = ctypes.c_void_p
    lib.ggml_init.argtypes = [InitParams]
    lib.ggml_free.argtypes = [ctypes.c_void_p]
    lib.ggml_free(lib.ggml_init(InitParams(0, None, True)))  # fills ggml's f16 tables
    rows, n = w.shape
    src = np.ascontiguousarray(w.numpy(), dtype="<f4")
    dst = ctypes.create_string_buffer(rows * n * 2)
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                        ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    size = lib.ggml_quantize_chunk(gtype, src.ctypes.data, dst, 0, rows, n, None)
    return dst.raw[:size]


def kq_headers(name, raw, nblocks, bsize):
    """Per super-block d, dmin and per sub-block the integer scale (signed) and min, decoded
    from the block bytes as ggml-common.h lays them out."""
    d, dmin, sc, mn = [], [], [], []
    f16 = lambda b, o: float(np.frombuffer(b[o:o + 2], dtype="<f2")[0])
    for i in range(nblocks):
        b = raw[i * bsize:(i + 1) * bsize]
        if name == "q2_k":
            d.append(f16(b, 80)), dmin.append(f16(b, 82))
            sc += [x & 15 for x in b[:16]]
            mn += [x >> 4 for x in b[:16]]
        elif name == "q3_k":
            p = b[96:108]
            d.append(f16(b, 108)), dmin.append(0.0)
            for s in range(16):
                low = p[s] & 15 if s < 8 else p[s - 8] >> 4
                sc.append((low | ((p[8 + s % 4] >> (2 * (s // 4))) & 3) << 4) - 32)
            mn += [0] * 16
        elif name in ("q4_k", "q5_k"):
            d.append(f16(b, 0)), dmin.append(f16(b, 2))
            p = b[4:16]
            for s in range(8):
                if s < 4:
                    sc.append(p[s] & 63), mn.append(p[s + 4] & 63)
                else:
                    sc.append((p[s + 4] & 15) | (p[s - 4] >> 6) << 4), mn.append((p[s + 4] >> 4) | (p[s] >> 6) << 4)
        else:
            d.append(f16(b, 208)), dmin.append(0.0)
            sc += [int(x) for x in np.frombuffer(b[192:208], dtype=np.int8)]
            mn += [0] * 16
    t = lambda a: torch.tensor(a, dtype=torch.float32)
    return t(d), t(dmin), t(sc), t(mn)


def kq_fake_quant(w, v, phi, psi, hdr, sub, lo, hi, smin, smax, mmax):
    d, dmin, sc, mn = hdr
    per = 256 // sub
    wg, vg = w.reshape(-1, sub), v.reshape(-1, sub)
    d, dmin = d.repeat_interleave(per), dmin.repeat_interleave(per)
    slo = torch.where(sc > 0, torch.tensor(1.0), torch.tensor(float(smin)))
    shi = torch.where(sc > 0, torch.tensor(float(smax)), torch.tensor(-1.0))
    S = torch.where(sc == 0, torch.zeros_like(sc), torch.clamp(round_ste(sc * phi), slo, shi))
    a = d * S
    if mmax:
        m = dmin * torch.clamp(round_ste(mn * psi), 0.0, float(mmax))
    else:
        m = torch.zeros_like(a)
    c = torch.clamp(round_ste((wg + m[:, None]) / a[:, None] + vg), float(lo), float(hi))
    return (a[:, None] * c - m[:, None]).reshape(w.shape)


def kquant_fixtures(out, ggml_lib):
    os.makedirs(out, exist_ok=True)
    gen = torch.Generator().manual_seed(20261208)
    index = {"torch": torch.__version__, "ggml": ggml_lib,
             "order": ["w", "v", "phi", "psi", "r", "wq", "dv", "dphi", "dpsi"], "formats": []}
    rows, n = 3, 256
    for name, gtype, sub, lo, hi, smin, smax, mmax, bsize in KQ_FORMATS:
        ns = rows * n // sub
        w = torch.randn(rows, n, generator=gen) * 0.05
        w[0, 5] = 0.4  # an outlier
        w[2, 100:116] *= 0.01  # a quiet sub-block: small scales
        raw = ggml_quantize(ggml_lib, gtype, w)
        hdr = kq_headers(name, raw, rows * n // 256, bsize)
        assert (hdr[0] != 0).all() and (hdr[2] != 0).all(), "the fixture wants no zero scale"
        v = (torch.rand(rows, n, generator=gen) - 0.5).requires_grad_(True)
        phi = (0.5 + torch.rand(ns, generator=gen)).requires_grad_(True)
        psi = (0.5 + torch.rand(ns, generator=gen)).requires_grad_(True)
        r = torch.randn(rows, n, generator=gen)
        wq = kq_fake_quant(w, v, phi, psi, hdr, sub, lo, hi, smin, smax, mmax)
        (r * wq).sum().backward()
        dpsi = psi.grad if psi.grad is not None else torch.zeros(ns)
        arrays = [w, v.detach(), phi.detach(), psi.detach(), r, wq.detach(), v.grad, phi.grad, dpsi]
        with open(os.path.join(out, name + ".f32"), "wb") as f:
            for a in arrays:
                f.write(a.detach().numpy().astype("<f4").tobytes())
        with open(os.path.join(out, name + ".ggml"), "wb") as f:
            f.write(raw)
        index["formats"].append({"name": name, "rows": rows, "n": n, "subblocks": ns})
        print("fakequant %s: %d sub-blocks, |dv| %.3g |dphi| %.3g |dpsi| %.3g" % (
            name, ns, v.grad.norm().item(), phi.grad.norm().item(), dpsi.norm().item()))
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="../shared/models")
    ap.add_argument("--out", default="tests/fixtures/train")
    ap.add_argument("--ggml", default="../peer/llama.cpp/build/bin/libggml-base.so",
                    help="llama.cpp's libggml-base.so: the k-quants' own quantization")
    ap.add_argument("--only", choices=["all", "kquant"], default="all",
                    help="kquant: only the k-quant fake-quantization fixtures")
    a = ap.parse_args()
    torch.set_num_threads(2)
    if a.only == "kquant":
        kquant_fixtures(os.path.join(a.out, "fakequant-kquant"), a.ggml)
        return
    src = os.path.join(a.models, "stories260K")
    cfg, w = read_llama2c(os.path.join(src, "stories260K.bin"))
    tokens, ref = reference_logits(os.path.join(src, "reference-logits.txt"))
    params = params_of(cfg, w)
    logits = forward(cfg, params, tokens)
    diff = (logits.detach() - ref).abs().max().item()
    print("stories260K: PyTorch forward vs llama2.c logits, max |diff| %.3g over %d positions" % (diff, len(tokens)))
    assert diff < 1e-4, "the PyTorch forward does not reproduce llama2.c"
    targets = torch.tensor(tokens[1:])
    loss = torch.nn.functional.cross_entropy(logits[:-1], targets)
    loss.backward()
    out = os.path.join(a.out, "stories260K")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "grads.f32"), "wb") as f:
        for _, t in params:
            f.write(t.grad.detach().numpy().astype("<f4").tobytes())
    index = {"model": "stories260K/stories260K.bin", "tokens": tokens, "loss": loss.item(),
             "loss_kind": "mean next-token cross-entropy over positions 0..30",
             "forward_max_abs_diff_vs_llama2c": diff, "torch": torch.__version__,
             "tensors": [[n, list(t.shape)] for n, t in params]}
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")
    print("stories260K: loss %.6f, %d gradients written" % (loss.item(), len(params)))
    fakequant_fixtures(os.path.join(a.out, "fakequant"))
    kquant_fixtures(os.path.join(a.out, "fakequant-kquant"), a.ggml)
    cfg, w = read_llama2c(os.path.join(src, "stories260K.bin"))
    finetune_fixtures(cfg, w, os.path.join(a.out, "finetune"), FT)
    cfg, w = read_llama2c(os.path.join(src, "stories260K.bin"))
    finetune_fixtures(cfg, w, os.path.join(a.out, "finetune-clip"), FT_CLIP)


if __name__ == "__main__":
    main()
