#!/usr/bin/env python3
"""shard-safetensors.py — split a model.safetensors into Hugging Face shards, the layout
save_pretrained(max_shard_size=...) writes: model-0000K-of-0000N.safetensors, each a whole
safetensors file, and model.safetensors.index.json (metadata.total_size, weight_map).
Tensor bytes are copied unchanged, in the file's order; a shard closes before it would pass
--max-bytes (a tensor larger than that gets a shard of its own).

Used for the architecture fixtures whose single weight file is over the project's 2 MB file
limit (tests/fixtures/arch/README.md). Standard library only.

  python3 scripts/shard-safetensors.py DIR [--max-bytes 1900000]   (replaces DIR/model.safetensors)
"""
import argparse
import json
import os
import struct


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + hlen])
    meta = header.pop("__metadata__", None)
    data = blob[8 + hlen:]
    tensors = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    return meta, [(name, info, data[info["data_offsets"][0]:info["data_offsets"][1]]) for name, info in tensors]


def write_safetensors(path, meta, tensors):
    header, pos = {}, 0
    if meta is not None:
        header["__metadata__"] = meta
    for name, info, raw in tensors:
        header[name] = {"dtype": info["dtype"], "shape": info["shape"], "data_offsets": [pos, pos + len(raw)]}
        pos += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for _, _, raw in tensors:
            f.write(raw)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--max-bytes", type=int, default=1900000)
    a = ap.parse_args()
    src = os.path.join(a.dir, "model.safetensors")
    meta, tensors = read_safetensors(src)
    groups, cur, size = [], [], 0
    for t in tensors:
        if cur and size + len(t[2]) > a.max_bytes - 65536:  # room for the header
            groups.append(cur)
            cur, size = [], 0
        cur.append(t)
        size += len(t[2])
    groups.append(cur)
    n = len(groups)
    weight_map, total = {}, 0
    for k, g in enumerate(groups):
        name = "model-%05d-of-%05d.safetensors" % (k + 1, n)
        write_safetensors(os.path.join(a.dir, name), meta, g)
        for t in g:
            weight_map[t[0]] = name
            total += len(t[2])
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(a.dir, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    os.remove(src)
    print("%s: %d tensors in %d shards" % (a.dir, len(tensors), n))


if __name__ == "__main__":
    main()
