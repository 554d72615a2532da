#!/usr/bin/env bash
# fuzz.sh — `make fuzz`: build the libFuzzer targets in tests/fuzz/ (clang, ASan + UBSan) into
# build-fuzz/, write seed corpora from the reference models, run each target in turn and print
# one summary line per target. Exits non-zero if any target crashed, leaked, hit undefined
# behaviour, timed out or ran out of memory.
#
#   FUZZ_SECONDS=60        seconds per target
#   FUZZ_TARGETS="..."     subset of: gguf safetensors llama2c hf-config tokenizer-json tokenize
#   QB_FUZZ_DIR=...        corpora, crash artifacts, logs (default ~/.cache/quantbench-fuzz)
#   QB_MODELS=...          reference models (default ../shared/models)
#   FUZZ_KEEP_GOING=1      fork mode: keep fuzzing after a crash (collect several)
#   FUZZ_BUILD_ONLY=1      build, write seeds, do not run
#   FUZZ_JOBS=2            parallel compiles
#   CC=clang               the compiler (needs libFuzzer: clang >= 6)
#
# Crashing inputs land in $QB_FUZZ_DIR/artifacts/<target>/; reproduce with
#   build-fuzz/fuzz-<target> <file>
set -euo pipefail

SCRIPT=$(realpath "$0")
cd "$(dirname "$SCRIPT")/.."
CC=${CC:-clang}
[[ $CC == cc || $CC == gcc* ]] && CC=clang # make exports CC=cc; libFuzzer needs clang
BUILD=build-fuzz
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
ALL_TARGETS="gguf safetensors llama2c hf-config tokenizer-json tokenize"
FUZZ_TARGETS=${FUZZ_TARGETS:-$ALL_TARGETS}
QB_FUZZ_DIR=${QB_FUZZ_DIR:-$HOME/.cache/quantbench-fuzz}
MODELS=${QB_MODELS:-../shared/models}
JOBS=${FUZZ_JOBS:-2}

for t in $FUZZ_TARGETS; do
    [[ " $ALL_TARGETS " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t' (known: $ALL_TARGETS)" >&2; exit 2; }
done
command -v "$CC" >/dev/null || { echo "fuzz.sh: $CC not found (install clang)" >&2; exit 2; }

# ---- build ------------------------------------------------------------------------------
PKG_CFLAGS=$(pkg-config --cflags jansson libpcre2-8)
PKG_LIBS=$(pkg-config --libs jansson libpcre2-8)
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CFLAGS="-g -O1 -std=c11 -D_GNU_SOURCE -fopenmp -Isrc -Ikernels $PKG_CFLAGS"
AVX2_FLAGS="-mavx2 -mfma -mf16c"
AVX512_FLAGS="-mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mf16c"
mkdir -p "$BUILD/obj"

# An object is stale when its source, any header, or this script is newer.
newest_hdr=$(find src kernels -name '*.h' -newer "$BUILD/.stamp" 2>/dev/null | head -1 || true)
[[ -f $BUILD/.stamp ]] || newest_hdr=all
[[ $SCRIPT -nt $BUILD/.stamp ]] && newest_hdr=all
compile_list=()
objs=()
while IFS= read -r src; do
    obj=$BUILD/obj/${src%.c}.o
    objs+=("$obj")
    if [[ -n $newest_hdr || ! -f $obj || $src -nt $obj ]]; then compile_list+=("$src"); fi
done < <( (find src/core -name '*.c'; ls kernels/*.c) | sort)

compile_one() { # src
    local src=$1 obj=$BUILD/obj/${1%.c}.o extra=""
    case $src in
    *_avx2.c) extra=$AVX2_FLAGS ;;
    *_avx512.c) extra=$AVX512_FLAGS ;;
    esac
    mkdir -p "$(dirname "$obj")"
    # shellcheck disable=SC2086
    $CC $CFLAGS $SAN -fsanitize=fuzzer-no-link $extra -c "$src" -o "$obj"
}
export -f compile_one
export CC CFLAGS SAN AVX2_FLAGS AVX512_FLAGS BUILD
if ((${#compile_list[@]})); then
    echo "fuzz.sh: compiling ${#compile_list[@]} files with $CC"
    printf '%s\n' "${compile_list[@]}" | xargs -P "$JOBS" -I{} bash -c 'compile_one "$@"' _ {}
    rm -f "$BUILD/libqb-fuzz.a"
fi
if [[ ! -f $BUILD/libqb-fuzz.a ]]; then
    ar rcs "$BUILD/libqb-fuzz.a" "${objs[@]}"
fi
touch "$BUILD/.stamp"
for t in $FUZZ_TARGETS; do
    src=tests/fuzz/fuzz-$t.c bin=$BUILD/fuzz-$t
    if [[ ! -f $bin || $src -nt $bin || $BUILD/libqb-fuzz.a -nt $bin ]]; then
        echo "fuzz.sh: linking $bin"
        # shellcheck disable=SC2086
        $CC $CFLAGS $SAN -fsanitize=fuzzer "$src" "$BUILD/libqb-fuzz.a" -o "$bin" $PKG_LIBS -lm -lpthread
    fi
done

# ---- seeds ------------------------------------------------------------------------------
# Small real files, prefixes of large ones (enough for the headers), and tiny well-formed
# files written here so the fuzzer starts from inputs that get past validation cheaply.
SEEDS=$QB_FUZZ_DIR/seeds
write_seeds() {
    local t=$1 d=$SEEDS/$1
    rm -rf "$d"
    mkdir -p "$d"
    case $t in
    gguf)
        for f in "$MODELS"/stories260K/stories260K-q4_0.gguf "$MODELS"/stories260K/stories260K-q8_0.gguf \
                 "$MODELS"/tokenizer-vectors/ggml-vocab-llama-spm.gguf; do
            [[ -f $f ]] && cp "$f" "$d/"
        done
        for f in "$MODELS"/stories260K/stories260K-f32.gguf "$MODELS"/qb-docs-26m/*.gguf \
                 "$MODELS"/tokenizer-vectors/ggml-vocab-gpt-2.gguf; do
            [[ -f $f ]] && head -c 65536 "$f" >"$d/prefix64k-$(basename "$f")"
        done ;;
    safetensors)
        for f in "$MODELS"/qb-docs-26m/hf/*.safetensors; do
            [[ -f $f ]] && head -c 65536 "$f" >"$d/prefix64k-$(basename "$f")"
        done ;;
    llama2c)
        [[ -f $MODELS/stories260K/stories260K.bin ]] && cp "$MODELS/stories260K/stories260K.bin" "$d/" ;;
    hf-config)
        [[ -f $MODELS/qb-docs-26m/hf/config.json ]] && cp "$MODELS/qb-docs-26m/hf/config.json" "$d/" ;;
    tokenizer-json) ;;
    tokenize)
        [[ -f $MODELS/stories260K/ppl-sample.txt ]] && cp "$MODELS/stories260K/ppl-sample.txt" "$d/" ;;
    esac
    if command -v python3 >/dev/null; then
        python3 - "$t" "$d" "$MODELS" <<'PY'
# Tiny well-formed inputs per target (see the comment above write_seeds).
import json, os, random, struct, sys

target, out, models = sys.argv[1], sys.argv[2], sys.argv[3]
rnd = random.Random(1234)

def put(name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)

def byte_symbols():  # GPT-2 bytes_to_unicode, in byte order
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    m, n = {}, 0
    for b in range(256):
        if b in keep:
            m[b] = chr(b)
        else:
            m[b] = chr(256 + n)
            n += 1
    return [m[b] for b in range(256)]

# ---------- GGUF ----------
GGUF_T = dict(u8=0, i8=1, u16=2, i16=3, u32=4, i32=5, f32=6, bool=7, str=8, arr=9, u64=10, i64=11, f64=12)

def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b

def gval(t, v):
    if t == "str":
        return gstr(v)
    fmt = dict(u8="B", i8="b", u16="H", i16="h", u32="I", i32="i", f32="f", bool="?", u64="Q", i64="q", f64="d")[t]
    return struct.pack("<" + fmt, v)

def f16(x):
    return struct.pack("<e", x)

def q8_0(vals):
    out = b""
    for i in range(0, len(vals), 32):
        blk = vals[i:i + 32]
        d = max(abs(v) for v in blk) / 127 or 1.0
        out += f16(d) + bytes(((round(v / d)) & 0xFF) for v in blk)
    return out

def q4_0(vals):
    out = b""
    for i in range(0, len(vals), 32):
        blk = vals[i:i + 32]
        d = max(abs(v) for v in blk) / 8 or 1.0
        q = [min(15, max(0, round(v / d) + 8)) for v in blk]
        out += f16(d) + bytes(q[j] | q[j + 16] << 4 for j in range(16))
    return out

def tensor_bytes(ty, ne):
    n = 1
    for d in ne:
        n *= d
    vals = [rnd.uniform(-1, 1) for _ in range(n)]
    if ty == 0:
        return b"".join(struct.pack("<f", v) for v in vals)
    if ty == 1:
        return b"".join(f16(v) for v in vals)
    if ty == 8:
        return q8_0(vals)
    if ty == 2:
        return q4_0(vals)
    raise ValueError(ty)

def gguf(kvs, tensors, align=32):
    h = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for key, t, v in kvs:
        h += gstr(key)
        if t.startswith("arr:"):
            et = t[4:]
            h += struct.pack("<IIQ", GGUF_T["arr"], GGUF_T[et], len(v)) + b"".join(gval(et, x) for x in v)
        else:
            h += struct.pack("<I", GGUF_T[t]) + gval(t, v)
    data, offs = b"", []
    for name, ty, ne, raw in tensors:
        data += b"\0" * ((-len(data)) % align)
        offs.append(len(data))
        data += raw
    for (name, ty, ne, raw), off in zip(tensors, offs):
        h += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        h += struct.pack("<IQ", ty, off)
    h += b"\0" * ((-len(h)) % align)
    return h + data

def llama_tensors(dim, hid, heads, kv, vocab, tied, types):
    hd = dim // heads
    t = [("token_embd.weight", types["emb"], [dim, vocab]), ("output_norm.weight", 0, [dim])]
    if not tied:
        t.append(("output.weight", 0, [dim, vocab]))
    shapes = dict(attn_norm=[dim], attn_q=[dim, heads * hd], attn_k=[dim, kv * hd], attn_v=[dim, kv * hd],
                  attn_output=[heads * hd, dim], ffn_norm=[dim], ffn_gate=[dim, hid], ffn_down=[hid, dim],
                  ffn_up=[dim, hid])
    for name, ne in shapes.items():
        t.append(("blk.0.%s.weight" % name, types.get(name, 0), ne))
    return [(n, ty, ne, tensor_bytes(ty, ne)) for n, ty, ne in t]

def llama_kvs(dim, hid, heads, kv):
    return [("general.architecture", "str", "llama"), ("general.name", "str", "fuzz-tiny"),
            ("general.alignment", "u32", 32),
            ("llama.embedding_length", "u32", dim), ("llama.feed_forward_length", "u32", hid),
            ("llama.block_count", "u32", 1), ("llama.attention.head_count", "u32", heads),
            ("llama.attention.head_count_kv", "u32", kv), ("llama.context_length", "u32", 64),
            ("llama.rope.freq_base", "f32", 10000.0), ("llama.attention.layer_norm_rms_epsilon", "f32", 1e-5)]

def spm_vocab():
    toks = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    toks += ["\u2581", "a", "b", "t", "h", "e", "\u2581a", "ab", "th", "he", "the", "\u2581the", "\u2581ab"]
    types = [2, 3, 3] + [6] * 256 + [1] * 13
    scores = [0.0, 0.0, 0.0] + [0.0] * 256 + [-float(i) for i in range(13)]
    return toks, types, scores

def bpe_vocab():
    sym = byte_symbols()
    toks = sym + ["\u0120t", "he", "\u0120the", "in", "\u0120a", "<|endoftext|>"]
    merges = ["\u0120 t", "h e", "\u0120t he", "i n", "\u0120 a"]
    return toks, merges

if target == "gguf":
    dim, hid, heads, kv = 32, 64, 4, 2
    toks, types, scores = spm_vocab()
    spm_kv = [("tokenizer.ggml.model", "str", "llama"), ("tokenizer.ggml.tokens", "arr:str", toks),
              ("tokenizer.ggml.scores", "arr:f32", scores), ("tokenizer.ggml.token_type", "arr:i32", types),
              ("tokenizer.ggml.bos_token_id", "u32", 1), ("tokenizer.ggml.eos_token_id", "u32", 2),
              ("tokenizer.ggml.add_bos_token", "bool", True)]
    ty = dict(emb=1, attn_q=8, ffn_gate=2, ffn_up=2, ffn_down=8)
    put("tiny-llama-spm.gguf", gguf(llama_kvs(dim, hid, heads, kv) + spm_kv,
                                    llama_tensors(dim, hid, heads, kv, len(toks), True, ty)))
    btoks, merges = bpe_vocab()
    for pre in ("gpt-2", "llama-bpe"):
        bpe_kv = [("tokenizer.ggml.model", "str", "gpt2"), ("tokenizer.ggml.pre", "str", pre),
                  ("tokenizer.ggml.tokens", "arr:str", btoks), ("tokenizer.ggml.merges", "arr:str", merges),
                  ("tokenizer.ggml.token_type", "arr:i32", [1] * (len(btoks) - 1) + [3]),
                  ("tokenizer.ggml.bos_token_id", "u32", len(btoks) - 1),
                  ("tokenizer.ggml.eos_token_id", "u32", len(btoks) - 1)]
        put("tiny-llama-bpe-%s.gguf" % pre, gguf(llama_kvs(dim, hid, heads, kv) + bpe_kv,
                                                 llama_tensors(dim, hid, heads, kv, len(btoks), False, {})))
    put("vocab-only-spm.gguf", gguf(spm_kv, []))
    put("metadata-types.gguf", gguf([("u8", "u8", 1), ("i8", "i8", -1), ("u16", "u16", 2), ("i16", "i16", -2),
                                     ("i32", "i32", -3), ("f64", "f64", 2.5), ("u64", "u64", 7), ("i64", "i64", -7),
                                     ("arr.f64", "arr:f64", [1.0, 2.0]), ("arr.u8", "arr:u8", [1, 2, 3]),
                                     ("general.alignment", "u32", 64)],
                                    [("t", 0, [4], tensor_bytes(0, [4])), ("u", 1, [8, 2], tensor_bytes(1, [8, 2]))],
                                    align=64))
    put("empty.gguf", gguf([], []))

# ---------- safetensors ----------
def safetensors(tensors, meta=None, pad_header=True):
    hdr, data = {}, b""
    if meta is not None:
        hdr["__metadata__"] = meta
    sizes = dict(F32=4, F16=2, BF16=2, F64=8, I64=8, U64=8, I32=4, U32=4, I16=2, U16=2, I8=1, U8=1, BOOL=1,
                 F8_E4M3=1, F8_E5M2=1)
    for name, dt, shape in tensors:
        n = 1
        for d in shape:
            n *= d
        raw = bytes(rnd.randrange(256) for _ in range(n * sizes[dt]))
        hdr[name] = dict(dtype=dt, shape=shape, data_offsets=[len(data), len(data) + len(raw)])
        data += raw
    h = json.dumps(hdr, separators=(",", ":")).encode()
    if pad_header:
        h += b" " * ((-len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + data

if target == "safetensors":
    put("tiny-llama.safetensors", safetensors(
        [("model.embed_tokens.weight", "BF16", [16, 8]), ("model.norm.weight", "F32", [8]),
         ("model.layers.0.self_attn.q_proj.weight", "F16", [8, 8]), ("lm_head.weight", "BF16", [16, 8])],
        meta={"format": "pt"}))
    put("all-dtypes.safetensors", safetensors(
        [(dt.lower(), dt, [2, 3]) for dt in ("F32", "F16", "BF16", "F64", "I64", "U64", "I32", "U32", "I16", "U16",
                                            "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2")]))
    put("scalar-and-empty.safetensors", safetensors([("s", "F32", []), ("e", "F16", [0, 4]), ("v", "I8", [5])],
                                                    pad_header=False))
    put("only-metadata.safetensors", safetensors([], meta={"a": "b"}))

# ---------- llama2.c ----------
def llama2c(dim, hid, layers, heads, kv, vocab, seq, shared, v1=False):
    hd = dim // heads
    kvd = kv * hd
    def fl(n):
        return b"".join(struct.pack("<f", rnd.uniform(-1, 1)) for _ in range(n))
    if v1:
        h = struct.pack("<Ii7i", 0x616B3432, 1, dim, hid, layers, heads, kv, vocab, seq) + bytes([1 if shared else 0])
        h += b"\0" * (256 - len(h))
        body = fl(layers * dim) + fl(layers * dim) + fl(dim) + fl(vocab * dim)
    else:
        h = struct.pack("<7i", dim, hid, layers, heads, kv, vocab if shared else -vocab, seq)
        body = fl(vocab * dim) + fl(layers * dim)
    body += fl(layers * dim * dim) + fl(layers * kvd * dim) * 2 + fl(layers * dim * dim)
    if not v1:
        body += fl(layers * dim)
    body += fl(layers * hid * dim) * 3
    if not v1:
        body += fl(dim) + fl(seq * hd)
    if not shared:
        body += fl(vocab * dim)
    return h + body

def tokbin(vocab_field, toks):
    b = struct.pack("<I", vocab_field)
    for i, s in enumerate(toks):
        e = s.encode()
        b += struct.pack("<fi", -float(i), len(e)) + e
    return b

if target == "llama2c":
    put("tiny-shared.bin", llama2c(8, 16, 1, 2, 2, 4, 4, True))
    put("tiny-unshared-gqa.bin", llama2c(8, 16, 2, 2, 1, 5, 3, False))
    put("tiny-v1.bin", llama2c(8, 16, 1, 2, 2, 4, 4, True, v1=True))
    put("tiny-v1-unshared.bin", llama2c(8, 12, 1, 4, 2, 3, 2, False, v1=True))
    # tokenizer.bin seeds: the first two bytes (max_token_length, ignored by the loader) hold the
    # vocabulary size the fuzz target passes
    toks = ["<unk>", "\n<s>\n", "\n</s>\n"] + ["<0x%02X>" % b for b in range(256)] + [" ", "a", "b", " a", "ab", "Once", " upon"]
    put("tok-tiny.bin", tokbin(len(toks), toks))
    for rel, n in (("stories260K/tok512.bin", 512), ("llama2-tokenizer/tokenizer.bin", 32000)):
        p = os.path.join(models, rel)
        if os.path.exists(p):
            raw = open(p, "rb").read()
            put("tok-" + os.path.basename(os.path.dirname(p)) + ".bin", struct.pack("<I", n) + raw[4:])

# ---------- config.json ----------
if target == "hf-config":
    base = dict(architectures=["LlamaForCausalLM"], hidden_size=64, intermediate_size=172, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, vocab_size=512, max_position_embeddings=256,
                rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True, hidden_act="silu",
                attention_bias=False, mlp_bias=False)
    put("tiny.json", json.dumps(base))
    put("mistral.json", json.dumps(dict(base, architectures=["MistralForCausalLM"], sliding_window=128,
                                        head_dim=None, rope_scaling=None)))
    put("model-type.json", json.dumps({k: v for k, v in base.items() if k != "architectures"} | {"model_type": "llama"}))
    put("rope-params.json", json.dumps(dict(base, rope_parameters={"rope_type": "default", "rope_theta": 5e5},
                                            head_dim=16)))
    put("rope-scaling.json", json.dumps(dict(base, rope_scaling={"type": "linear", "factor": 2.0})))
    put("quantized.json", json.dumps(dict(base, quantization_config={"quant_method": "gptq"})))

# ---------- tokenizer.json ----------
SEP = "\n@@tokenizer_config.json@@\n"
if target == "tokenizer-json":
    real = os.path.join(models, "qb-docs-26m/hf/tokenizer.json")
    sym = byte_symbols()
    if os.path.exists(real):
        j = json.load(open(real, encoding="utf-8"))
        keep = set(sym) | {a["content"] for a in j["added_tokens"]}
        merges, have = [], set(sym)
        for a, b in j["model"]["merges"]:
            if a in have and b in have and len(merges) < 200:
                merges.append([a, b])
                have.add(a + b)
        vocab = {t: i for t, i in j["model"]["vocab"].items() if t in have or t in keep}
        j["model"]["vocab"], j["model"]["merges"] = vocab, merges
        small = json.dumps(j, ensure_ascii=False)
        put("qb-docs-small.json", small)
        cfg = os.path.join(models, "qb-docs-26m/hf/tokenizer_config.json")
        if os.path.exists(cfg):
            put("qb-docs-small-with-config.json", small + SEP + open(cfg, encoding="utf-8").read())
        j["model"]["merges"] = [a + " " + b for a, b in merges]
        j["model"]["ignore_merges"] = True
        put("qb-docs-small-string-merges.json", json.dumps(j))
    toks, merges = bpe_vocab()
    gpt2 = {"version": "1.0", "added_tokens": [{"id": len(toks) - 1, "content": "<|endoftext|>", "special": True}],
            "normalizer": None, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": True, "use_regex": True},
            "post_processor": {"type": "Sequence", "processors": [
                {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|endoftext|>"}},
                                                          {"Sequence": {"id": "A"}}]}]},
            "model": {"type": "BPE", "vocab": {t: i for i, t in enumerate(toks[:-1])}, "merges": merges,
                      "unk_token": None}}
    put("gpt2-tiny.json", json.dumps(gpt2))
    gpt2["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"String": " "}, "behavior": "Isolated"},
        {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False}]}
    put("split-string.json", json.dumps(gpt2) + SEP + json.dumps(
        {"add_bos_token": False, "bos_token": {"content": "<|endoftext|>"}, "eos_token": "<|endoftext|>"}))

# ---------- text to tokenize ----------
if target == "tokenize":
    for name in ("ggml-vocab-llama-spm.gguf.inp", "ggml-vocab-gpt-2.gguf.inp"):
        p = os.path.join(models, "tokenizer-vectors", name)
        if os.path.exists(p):
            for i, s in enumerate(open(p, "rb").read().split(b"\n__ggml_vocab_test__\n")):
                put("%s-%02d" % (name.split(".")[0], i), s)
    put("mixed", "Hello \u2581world <s> </s> <0x41> \t\r\n ½ 日本語 🦙 'll 123456 \x00 end")
    put("invalid-utf8", b"ok \xff\xfe \xc3( \xe2\x82 \xf0\x9f\x98 \xed\xa0\x80 \xc0\xaf end")
PY
    fi
}

# ---- run --------------------------------------------------------------------------------
max_len_for() {
    case $1 in
    gguf) echo 1048576 ;;          # holds the stories260K quantized GGUFs and the SPM vocab
    safetensors) echo 65536 ;;
    llama2c) echo 1114112 ;;       # holds stories260K.bin (1 MB)
    hf-config) echo 8192 ;;
    tokenizer-json) echo 65536 ;;
    tokenize) echo 4096 ;;
    esac
}

[[ ${FUZZ_BUILD_ONLY:-0} == 1 ]] && { for t in $FUZZ_TARGETS; do write_seeds "$t"; done; echo "fuzz.sh: built"; exit 0; }

export OMP_NUM_THREADS=1 QB_MODELS="$MODELS"
# the targets' temp files (inputs written out for the loaders that take a path)
QB_FUZZ_TMP=$(mktemp -d "$( [[ -w /dev/shm ]] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/qb-fuzz.XXXXXX")
export QB_FUZZ_TMP
trap 'rm -rf "$QB_FUZZ_TMP"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
summary=()
failed=0
for t in $FUZZ_TARGETS; do
    write_seeds "$t"
    corpus=$QB_FUZZ_DIR/corpus/$t artifacts=$QB_FUZZ_DIR/artifacts/$t log=$QB_FUZZ_DIR/logs/$t.log
    mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
    before=$(find "$artifacts" -type f | wc -l)
    args=(-max_total_time="$FUZZ_SECONDS" -max_len="$(max_len_for "$t")" -rss_limit_mb=4096 -timeout=30
          -print_final_stats=1 -artifact_prefix="$artifacts/")
    [[ -f tests/fuzz/$t.dict ]] && args+=(-dict="tests/fuzz/$t.dict")
    [[ ${FUZZ_KEEP_GOING:-0} == 1 ]] && args+=(-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
    echo "fuzz.sh: $t for ${FUZZ_SECONDS}s (log: $log)"
    start=$(date +%s)
    set +e
    "$BUILD/fuzz-$t" "${args[@]}" "$corpus" "$SEEDS/$t" >"$log" 2>&1
    rc=$?
    set -e
    secs=$(( $(date +%s) - start ))
    after=$(find "$artifacts" -type f | wc -l)
    crashes=$((after - before))
    ((rc != 0 && crashes == 0)) && crashes=1 # died without writing an artifact
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    [[ -n $runs ]] || runs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
    corp=$(grep -oE 'corp: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+')
    line=$(printf '%-15s %10s runs in %4ds (%s/s)  %-22s corpus %-6s crashes %d' "$t" "${runs:-?}" "$secs" \
        "$(( ${runs:-0} / (secs > 0 ? secs : 1) ))" "${cov:-cov: ?}" "${corp:-?}" "$crashes")
    summary+=("$line")
    if ((crashes > 0)); then
        failed=1
        line="${line}  -> see $log and $artifacts/"
        grep -m3 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|deadly signal' "$log" | sed 's/^/    /' || true
    fi
    echo "$line"
done
echo
echo "fuzz summary (${FUZZ_SECONDS}s per target; corpora in $QB_FUZZ_DIR):"
printf '  %s\n' "${summary[@]}"
exit $failed
