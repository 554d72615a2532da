#!/usr/bin/env python3
"""arch-fixture-tokenizer-ids.py — record, in an architecture fixture's reference.json, the ids
the Hugging Face tokenizers library (what transformers' fast tokenizer runs) gives with the
fixture's tokenizer.json: `tokenizer_json_ids` of every tokenizer test string (no special
tokens) and of every prompt, and `tokenizer_json_differs` (the test strings where they differ
from reference.json's SentencePiece ids). make-arch-fixtures.py does the same for fixtures it
makes; this fills them in for fixtures made before it did (phi3, mixtral). Run on the device
machine (it has the tokenizers library):

  python3 scripts/arch-fixture-tokenizer-ids.py --out DIR tests/fixtures/arch/phi3 ...

writes DIR/<name>.reference.json (reference.json with the ids added) for each fixture.
"""
import argparse
import json
import os

import tokenizers


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("dirs", nargs="+")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for d in a.dirs:
        name = os.path.basename(os.path.normpath(d))
        ref = json.load(open(os.path.join(d, "reference.json"), encoding="utf-8"))
        tok = tokenizers.Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        for t in ref["tokenizer_tests"]:
            t["tokenizer_json_ids"] = tok.encode(t["text"], add_special_tokens=False).ids
        for p in ref["prompts"]:
            p["tokenizer_json_ids"] = tok.encode(p["text"]).ids
        ref["tokenizer_json_differs"] = [i for i, t in enumerate(ref["tokenizer_tests"])
                                         if t["ids"] != t["tokenizer_json_ids"]]
        ref["tokenizers"] = tokenizers.__version__
        with open(os.path.join(a.out, name + ".reference.json"), "w", encoding="utf-8") as f:
            json.dump(ref, f, indent=1, ensure_ascii=False)
        print("%s: tokenizer.json differs from SentencePiece on %s" % (name, ref["tokenizer_json_differs"]))


if __name__ == "__main__":
    main()
