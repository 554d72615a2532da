#!/usr/bin/env python3
"""make-arch-fixtures.py — the architecture fixtures in tests/fixtures/arch/ (issue 13).

Run on the device machine (PyTorch + transformers, no network); nothing here runs in `make
test`. For each architecture quantbench opens beyond plain Llama it builds, in code, a tiny
model with Hugging Face transformers (config written the way the hub's config.json files are,
random weights scaled so logits are not flat), a tokenizer trained here on our corpus with the
family's pre-tokenizer, and saves:

  <name>/config.json, model.safetensors, tokenizer.json, tokenizer_config.json
      (tokenizer.model for SentencePiece families)
  <name>/<name>.gguf        llama.cpp's convert_hf_to_gguf.py (c392e50) output, where that
                            commit has a converter for the architecture
  <name>/reference.json     prompts, their token ids, greedy continuations, tokenizer ids of
                            the tokenizer test strings, shapes
  <name>/logits.f32         transformers' fp32 logits of every prompt position, little-endian
                            float32, prompts one after another, rows of vocab_size

The logits come from the model reloaded from the files written (so they are the logits of
what the files say), computed on the CPU in float32 with eager attention.

Usage: python3 scripts/make-arch-fixtures.py --carry DIR --out DIR [--only a,b]
  --carry holds: convert_hf_to_gguf.py and gguf-py/ of llama.cpp c392e50, corpus.txt (text to
  train tokenizers on), tok512.model (stories260K's SentencePiece model), vocab-test.inp (the
  tokenizer test strings, llama.cpp's __ggml_vocab_test__ layout).
"""
import argparse
import glob
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import traceback

import torch

SEP = "\n__ggml_vocab_test__\n"
torch.set_num_threads(max(1, os.cpu_count() or 1))

LLAMA3_PAT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
              r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PAT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
             r"|\s*[\r\n]+|\s+(?!\S)|\s+")

PROMPTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Quantization maps each weight to one of a few levels; the error it leaves depends on the block size.",
    ("In the beginning the model reads its configuration, maps the weights from the file, and builds the "
     "tokenizer. Then every layer runs attention over the positions seen so far, and the feed-forward "
     "network mixes the features of each position on its own."),
]
N_GREEDY = 16


# ---------------------------------------------------------------- tokenizers
def train_bytelevel(corpus, vocab, pattern, specials, bos, out_dir, nfc):
    from tokenizers import Tokenizer, models, trainers, pre_tokenizers, decoders, normalizers, processors, Regex
    from transformers import PreTrainedTokenizerFast
    tok = Tokenizer(models.BPE())
    if nfc:
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train([corpus], trainer)
    if bos:
        bid = tok.token_to_id(bos)
        tok.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1",
                                          special_tokens=[(bos, bid)]),
        ])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    kw = dict(tokenizer_object=tok, eos_token=specials[1] if bos else specials[0])
    if bos:
        kw["bos_token"] = bos
    fast = PreTrainedTokenizerFast(**kw)
    fast.save_pretrained(out_dir)
    fix_tokenizer_config(out_dir, "PreTrainedTokenizerFast", add_bos=bool(bos))
    return fast


def train_spm_gemma(corpus, vocab, out_dir):
    import sentencepiece as spm
    prefix = os.path.join(out_dir, "tokenizer")
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=prefix, model_type="bpe", vocab_size=vocab,
        byte_fallback=True, character_coverage=1.0, pad_id=0, eos_id=1, bos_id=2, unk_id=3,
        pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>", unk_piece="<unk>",
        user_defined_symbols=["<start_of_turn>", "<end_of_turn>"], add_dummy_prefix=False,
        remove_extra_whitespaces=False, normalization_rule_name="identity", split_digits=True,
        allow_whitespace_only_pieces=True, num_threads=8, minloglevel=2)
    os.remove(prefix + ".vocab")
    return spm_tokenizer(out_dir, "GemmaTokenizer", dummy_prefix=False)


def copy_spm_llama(src, out_dir):
    shutil.copy(src, os.path.join(out_dir, "tokenizer.model"))
    return spm_tokenizer(out_dir, "LlamaTokenizer", dummy_prefix=True)


class SpmTok:
    """The reference tokenizer of a SentencePiece family: SentencePiece itself (what llama.cpp's
    SPM tokenizer follows), BOS first when special tokens are asked for."""

    def __init__(self, path):
        import sentencepiece as spm
        self.sp = spm.SentencePieceProcessor(model_file=path)

    def __len__(self):
        return self.sp.get_piece_size()

    def __call__(self, text, add_special_tokens=True):
        ids = self.sp.encode(text)
        return {"input_ids": ([self.sp.bos_id()] if add_special_tokens else []) + ids}

    def decode(self, ids):
        return self.sp.decode(ids)


def spm_tokenizer(out_dir, cls, dummy_prefix):
    """tokenizer.json (+ tokenizer_config.json) for out_dir/tokenizer.model, built here with the
    tokenizers library the way transformers' SentencePiece-BPE conversion lays it out (BPE with
    byte fallback, merges from the vocabulary ranked by the merged piece's id, spaces as U+2581,
    a dummy prefix for Llama-style models, control pieces special, user-defined ones added).
    transformers 5 no longer converts a tokenizer.model given as vocab_file, hence this. Returns
    SentencePiece itself as the reference tokenizer; where the tokenizer.json tokenizes a test
    string otherwise, the log says so."""
    from tokenizers import Tokenizer, AddedToken, models, normalizers, decoders, processors
    path = os.path.join(out_dir, "tokenizer.model")
    ref = SpmTok(path)
    sp = ref.sp
    n = sp.get_piece_size()
    vocab = {sp.id_to_piece(i): i for i in range(n)}
    plain = [i for i in range(n) if not (sp.is_control(i) or sp.is_unknown(i) or sp.is_byte(i))
             and sp.id_to_piece(i) not in ("<start_of_turn>", "<end_of_turn>")]
    merges = []
    for i in plain:
        piece = sp.id_to_piece(i)
        for k in range(1, len(piece)):
            a, b = piece[:k], piece[k:]
            if a in vocab and b in vocab:
                merges.append((i, vocab[a], vocab[b], a, b))
    merges.sort()
    unk = sp.id_to_piece(sp.unk_id())
    tk = Tokenizer(models.BPE(vocab=vocab, merges=[(a, b) for *_, a, b in merges], unk_token=unk,
                              fuse_unk=True, byte_fallback=True))
    norm = [normalizers.Replace(" ", "\u2581")]
    if dummy_prefix:
        norm.insert(0, normalizers.Prepend("\u2581"))
    tk.normalizer = normalizers.Sequence(norm)
    dec = [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()]
    if dummy_prefix:
        dec.append(decoders.Strip(" ", 1, 0))
    tk.decoder = decoders.Sequence(dec)
    specials = [sp.id_to_piece(i) for i in range(n) if sp.is_control(i) or sp.is_unknown(i)]
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    users = [p for p in ("<start_of_turn>", "<end_of_turn>") if p in vocab]
    if users:
        tk.add_tokens([AddedToken(t, special=False, normalized=False) for t in users])
    bos = sp.id_to_piece(sp.bos_id())
    tk.post_processor = processors.TemplateProcessing(single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1",
                                                      special_tokens=[(bos, sp.bos_id())])
    tk.save(os.path.join(out_dir, "tokenizer.json"))
    cfg = dict(bos_token=bos, eos_token=sp.id_to_piece(sp.eos_id()), unk_token=unk,
               model_max_length=4096, clean_up_tokenization_spaces=False)
    if sp.pad_id() >= 0:
        cfg["pad_token"] = sp.id_to_piece(sp.pad_id())
    json.dump(cfg, open(os.path.join(out_dir, "tokenizer_config.json"), "w"), indent=2)
    json.dump({k: v for k, v in cfg.items() if k.endswith("_token")},
              open(os.path.join(out_dir, "special_tokens_map.json"), "w"), indent=2)
    fix_tokenizer_config(out_dir, cls, add_bos=True)
    ref.hf = tk
    return ref


def fix_tokenizer_config(out_dir, cls, add_bos):
    p = os.path.join(out_dir, "tokenizer_config.json")
    cfg = json.load(open(p)) if os.path.exists(p) else {}
    cfg["tokenizer_class"] = cls
    cfg["add_bos_token"] = add_bos
    cfg["add_eos_token"] = False
    json.dump(cfg, open(p, "w"), indent=2, ensure_ascii=False)


# ---------------------------------------------------------------- models
def dense(hidden=128, layers=3, heads=4, kv=2, ff=256, **kw):
    d = dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
             num_key_value_heads=kv, intermediate_size=ff, rms_norm_eps=1e-6,
             max_position_embeddings=512, initializer_range=0.02, use_cache=True)
    d.update(kw)
    return d


SPECS = {
    # Llama 3.2-style: llama3 RoPE scaling (original context small enough that the factors
    # change the logits of these prompts), tied embeddings; fp32 safetensors.
    "llama31": dict(cls="LlamaForCausalLM", model_type="llama", tok="llama3", dtype="float32",
                    convert=True, pre="llama-bpe",
                    # original_max_position_embeddings also at the top: llama.cpp c392e50's
                    # converter reads it from there (default 8192) to compute rope_freqs.weight,
                    # transformers from rope_scaling; real checkpoints have 8192 and agree anyway
                    cfg=dense(rope_theta=500000.0, tie_word_embeddings=True, attention_bias=False,
                              mlp_bias=False, hidden_act="silu", head_dim=32, original_max_position_embeddings=32,
                              rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                            "high_freq_factor": 4.0, "original_max_position_embeddings": 32})),
    # Qwen2/2.5: biases on q, k, v; untied; bf16.
    "qwen2": dict(cls="Qwen2ForCausalLM", model_type="qwen2", tok="qwen2", dtype="bfloat16",
                  convert=True, pre="qwen2",
                  cfg=dense(rope_theta=1000000.0, tie_word_embeddings=False, hidden_act="silu",
                            use_sliding_window=False, sliding_window=None, max_window_layers=3)),
    # Qwen2.5 with YaRN (as its long-context configs): max_position_embeddings = factor x the
    # original context, so every reading of "factor" agrees.
    "qwen2yarn": dict(cls="Qwen2ForCausalLM", model_type="qwen2", tok="qwen2", dtype="bfloat16",
                      convert=True, pre="qwen2",
                      cfg=dense(layers=2, rope_theta=10000.0, tie_word_embeddings=False, hidden_act="silu",
                                use_sliding_window=False, sliding_window=None, max_window_layers=2,
                                max_position_embeddings=128,
                                rope_scaling={"type": "yarn", "rope_type": "yarn", "factor": 4.0,
                                              "original_max_position_embeddings": 32})),
    # Qwen3: per-head RMSNorm on q and k, no biases, head_dim 48 != hidden/heads; f16.
    "qwen3": dict(cls="Qwen3ForCausalLM", model_type="qwen3", tok="qwen2", dtype="float16",
                  convert=False,
                  cfg=dense(rope_theta=1000000.0, tie_word_embeddings=True, hidden_act="silu", head_dim=48,
                            attention_bias=False, use_sliding_window=False, sliding_window=None,
                            max_window_layers=3)),
    # Gemma 2: 26 layers (llama.cpp c392e50 only runs gemma2 with 26/42/46 layers), hidden 64,
    # soft-capping low enough to matter, sliding window 8 on even layers.
    "gemma2": dict(cls="Gemma2ForCausalLM", model_type="gemma2", tok="gemma", dtype="bfloat16",
                   convert=True,
                   cfg=dense(hidden=64, layers=26, heads=2, kv=1, ff=128, head_dim=32,
                             query_pre_attn_scalar=32, attn_logit_softcapping=3.0,
                             final_logit_softcapping=5.0, sliding_window=8, rope_theta=10000.0,
                             hidden_activation="gelu_pytorch_tanh", hidden_act="gelu_pytorch_tanh",
                             tie_word_embeddings=True, attention_bias=False, attention_dropout=0.0,
                             pad_token_id=0, eos_token_id=1, bos_token_id=2)),
    # Gemma 3 (text): 6 layers = 5 local + 1 global, local RoPE base 10000, global 1e6 with
    # linear scaling 8 (as the 4B+ models), q/k norms, four norms per block.
    "gemma3": dict(cls="Gemma3ForCausalLM", model_type="gemma3_text", tok="gemma", dtype="bfloat16",
                   convert=False,
                   cfg=dense(hidden=128, layers=6, heads=4, kv=2, ff=256, head_dim=32,
                             query_pre_attn_scalar=32, sliding_window=8, sliding_window_pattern=6,
                             rope_theta=1000000.0, rope_local_base_freq=10000.0,
                             rope_scaling={"rope_type": "linear", "factor": 8.0},
                             attn_logit_softcapping=None, final_logit_softcapping=None,
                             hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True,
                             attention_bias=False, attention_dropout=0.0,
                             pad_token_id=0, eos_token_id=1, bos_token_id=2)),
    # Phi-3: fused qkv and gate_up, GQA, SentencePiece (Llama 2 style) vocabulary of 512.
    "phi3": dict(cls="Phi3ForCausalLM", model_type="phi3", tok="spm-llama", dtype="bfloat16",
                 convert=True, gguf_name="qb fixture p3",
                 cfg=dense(rope_theta=10000.0, tie_word_embeddings=False, hidden_act="silu",
                           max_position_embeddings=4096, original_max_position_embeddings=4096,
                           sliding_window=2047, rope_scaling=None, resid_pdrop=0.0, embd_pdrop=0.0,
                           attention_dropout=0.0, bos_token_id=1, eos_token_id=2, pad_token_id=0)),
    # Mixtral: 4 experts, top-2 with renormalisation.
    "mixtral": dict(cls="MixtralForCausalLM", model_type="mixtral", tok="spm-llama", dtype="bfloat16",
                    convert=True,
                    cfg=dense(layers=2, ff=128, num_local_experts=4, num_experts_per_tok=2,
                              rope_theta=1000000.0, tie_word_embeddings=False, hidden_act="silu",
                              sliding_window=None, router_jitter_noise=0.0, output_router_logits=False,
                              bos_token_id=1, eos_token_id=2)),
    # Qwen3-MoE: 8 experts, top-2 without renormalisation (norm_topk_prob false).
    "qwen3moe": dict(cls="Qwen3MoeForCausalLM", model_type="qwen3_moe", tok="qwen2", dtype="bfloat16",
                     convert=False,
                     cfg=dense(layers=2, ff=256, head_dim=32, moe_intermediate_size=64, num_experts=8,
                               num_experts_per_tok=2, norm_topk_prob=False, decoder_sparse_step=1,
                               mlp_only_layers=[], rope_theta=1000000.0, tie_word_embeddings=False,
                               hidden_act="silu", attention_bias=False, use_sliding_window=False,
                               sliding_window=None, output_router_logits=False, router_aux_loss_coef=0.0)),
}


def make_tokenizer(spec, out_dir, carry):
    corpus = os.path.join(carry, "corpus.txt")
    kind = spec["tok"]
    if kind == "llama3":
        return train_bytelevel(corpus, 1024, LLAMA3_PAT, ["<|begin_of_text|>", "<|end_of_text|>"],
                               "<|begin_of_text|>", out_dir, nfc=False)
    if kind == "qwen2":
        return train_bytelevel(corpus, 1024, QWEN2_PAT, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                               None, out_dir, nfc=True)
    if kind == "gemma":
        return train_spm_gemma(corpus, 1024, out_dir)
    if kind == "spm-llama":
        return copy_spm_llama(os.path.join(carry, "tok512.model"), out_dir)
    raise ValueError(kind)


def init_weights(model, gemma_norms, gen):
    """Weights that make a model whose logits are not flat: linear weights ~ N(0, 1/fan_in)
    (activations keep their scale through the blocks), norms around 1 (Gemma stores w with
    1 + w applied, so around 0), biases and q/k norms visibly non-trivial."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                if "norm" in name:
                    base = 0.0 if gemma_norms else 1.0
                    p.copy_(base + 0.2 * torch.randn(p.shape, generator=gen))
                else:  # biases
                    p.copy_(0.3 * torch.randn(p.shape, generator=gen))
            elif "embed_tokens" in name:
                std = 1.0 / math.sqrt(p.shape[1]) if gemma_norms else 0.5
                p.copy_(std * torch.randn(p.shape, generator=gen))
            else:
                fan_in = p.shape[-1]
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in))


def hub_config(name, spec, vocab):
    import transformers
    cfg = dict(spec["cfg"])
    cfg["vocab_size"] = vocab
    cfg["architectures"] = [spec["cls"]]
    cfg["model_type"] = spec["model_type"]
    cfg["torch_dtype"] = spec["dtype"]
    cfg["transformers_version"] = transformers.__version__
    return cfg


def write_logits(path, rows):
    with open(path, "wb") as f:
        for r in rows:
            f.write(r.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes())


def build(name, spec, carry, out_root, log):
    import transformers
    from safetensors import safe_open
    out = os.path.join(out_root, name)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    tok = make_tokenizer(spec, out, carry)
    vocab = len(tok)
    cfg = hub_config(name, spec, vocab)
    json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=2)
    config = transformers.AutoConfig.from_pretrained(out)
    model = getattr(transformers, spec["cls"])(config)
    gen = torch.Generator().manual_seed(sum(map(ord, name)))
    init_weights(model, spec["tok"] == "gemma", gen)
    dtype = getattr(torch, spec["dtype"])
    model = model.to(dtype)
    # files stay under the project's 2 MB limit: larger weights go in shards with an index, as
    # hub checkpoints of real size do (gemma2, gemma3, llama31)
    model.save_pretrained(out, safe_serialization=True, max_shard_size="1900KB")
    # transformers may write its own config layout (rope_parameters, layer_types): keep it
    # beside, and put back the hub layout real checkpoints have.
    shutil.copy(os.path.join(out, "config.json"), os.path.join(out, "config-transformers.json"))
    json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=2)
    for extra in ("generation_config.json",):
        p = os.path.join(out, extra)
        if os.path.exists(p):
            os.remove(p)
    keys = []
    for st in sorted(glob.glob(os.path.join(out, "model*.safetensors"))):
        with safe_open(st, "pt") as f:
            keys += f.keys()
    keys.sort()
    log(f"{name}: {len(keys)} tensors, e.g. {keys[:3]} ... {keys[-2:]}")
    experts = [k for k in keys if "expert" in k or "gate.weight" in k]
    if experts:
        log(f"{name}: expert tensors as saved: {experts[:6]} ({len(experts)})")

    ref = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32, attn_implementation="eager")
    ref.eval()
    log(f"{name}: reloaded config: " + json.dumps({k: v for k, v in ref.config.to_dict().items()
                                                   if "rope" in k or "sliding" in k or "layer_types" in k},
                                                  default=str)[:600])
    # The reload must give the weights saved (a model that the loader silently re-initialised or
    # converted would make every fixture below wrong).
    sd0 = {k: v.to(torch.float32) for k, v in model.state_dict().items()}
    sd1 = ref.state_dict()
    bad = [k for k in sd0 if k in sd1 and not torch.equal(sd0[k], sd1[k].to(torch.float32))]
    missing = [k for k in sd0 if k not in sd1]
    if bad or missing:
        raise RuntimeError(f"reload differs: {bad[:5]} missing {missing[:5]}")

    refj = dict(name=name, arch=spec["cls"], transformers=transformers.__version__, torch=torch.__version__,
                vocab_size=vocab, dtype=spec["dtype"], prompts=[], greedy=None, tokenizer_tests=None)
    rows = []
    with torch.no_grad():
        for text in PROMPTS:
            ids = tok(text)["input_ids"]
            logits = ref(torch.tensor([ids])).logits[0]
            rows.append(logits)
            refj["prompts"].append(dict(text=text, ids=ids, n=len(ids)))
        ids = list(refj["prompts"][0]["ids"])
        new = []
        for _ in range(N_GREEDY):
            nxt = int(ref(torch.tensor([ids])).logits[0, -1].argmax())
            new.append(nxt)
            ids.append(nxt)
        refj["greedy"] = dict(prompt=0, ids=new, text=tok.decode(new))
    write_logits(os.path.join(out, "logits.f32"), rows)
    tests = open(os.path.join(carry, "vocab-test.inp"), encoding="utf-8").read().split(SEP)[:-1]
    refj["tokenizer_tests"] = [dict(text=t, ids=tok(t, add_special_tokens=False)["input_ids"]) for t in tests]
    if isinstance(tok, SpmTok):
        # ids = SentencePiece's own; tokenizer_json_ids = what transformers' fast tokenizer makes
        # of the tokenizer.json written here (the reference for a loader of the Hugging Face
        # directory), which for a Llama-style model differs on runs of spaces
        refj["tokenizer"] = "sentencepiece"
        for i, t in enumerate(tests):
            refj["tokenizer_tests"][i]["tokenizer_json_ids"] = tok.hf.encode(t, add_special_tokens=False).ids
        for p in refj["prompts"]:
            p["tokenizer_json_ids"] = tok.hf.encode(p["text"]).ids
        differ = [i for i, t in enumerate(refj["tokenizer_tests"]) if t["ids"] != t["tokenizer_json_ids"]]
        refj["tokenizer_json_differs"] = differ
        log(f"{name}: tokenizer.json differs from SentencePiece on test strings {differ}")
    refj["logit_stats"] = dict(std=float(torch.cat(rows).std()), max=float(torch.cat(rows).abs().max()))
    json.dump(refj, open(os.path.join(out, "reference.json"), "w"), indent=1, ensure_ascii=False)
    log(f"{name}: vocab {vocab}, logits std {refj['logit_stats']['std']:.3f}, greedy {new}")

    if spec.get("convert"):
        convert(name, spec, carry, out, log)


def convert(name, spec, carry, out, log):
    """llama.cpp c392e50's converter, run in-process: its pre-tokenizer check hashes a string
    through the tokenizer and knows only published tokenizers, so for our locally trained
    byte-level BPE ones the family's name is given instead (what the hash would have found)."""
    sys.path.insert(0, os.path.join(carry, "gguf-py"))
    sys.path.insert(0, carry)
    import importlib
    conv = importlib.import_module("convert_hf_to_gguf")
    if spec.get("pre"):
        conv.Model.get_vocab_base_pre = lambda self, tokenizer, _p=spec["pre"]: _p
    outfile = os.path.join(out, f"{name}.gguf")
    outtype = {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}[spec["dtype"]]
    argv = sys.argv
    # general.name: llama.cpp c392e50 gives models named "*phi3*" / "*phi-3*" Phi-3's special-token
    # attributes and then needs "<|endoftext|>" in the vocabulary, which our 512-token
    # SentencePiece model has not: a neutral name keeps the vocabulary loadable.
    sys.argv = ["convert_hf_to_gguf.py", out, "--outfile", outfile, "--outtype", outtype,
                "--model-name", spec.get("gguf_name", f"qb fixture {name}")]
    try:
        conv.main()
    finally:
        sys.argv = argv
    log(f"{name}: converted to {os.path.basename(outfile)} ({os.path.getsize(outfile)} bytes)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--carry", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    logf = open(os.path.join(a.out, "make-arch-fixtures.log"), "w")

    def log(msg):
        print(msg, flush=True)
        logf.write(msg + "\n")
        logf.flush()

    only = [s for s in a.only.split(",") if s]  # also the order to make them in
    failed = []
    for name in only or list(SPECS):
        spec = SPECS[name]
        try:
            build(name, spec, a.carry, a.out, log)
        except Exception:  # noqa: BLE001 — one architecture failing must not stop the others
            failed.append(name)
            log(f"{name}: FAILED\n" + traceback.format_exc())
    log(f"done; failed: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
