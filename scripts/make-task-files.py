#!/usr/bin/env python3
"""make-task-files.py — small task files in llama-perplexity's three formats, made from our own
held-out text (../shared/data/eval-docs.txt), for tests/data/tasks/:

  hellaswag.txt        HellaSwag layout: six lines per task (context, gold index, four endings);
                       the context is a sentence, the true ending the sentence that follows it in
                       the document, the three others sentences from elsewhere.
  winogrande.csv       Winogrande CSV (index,sentence,choice1,choice2,answer): a sentence with one
                       word replaced by '_', the two choices that word and another word of the
                       same sentence; sentences with a comma are quoted, as the real file does.
                       Some blanks are near the sentence's end (llama-perplexity then also scores
                       the choice's own tokens).
  multiple-choice.bin  llama-perplexity's binary multiple-choice file: a sentence cut after a few
                       words is the question, its true rest and 1-3 other sentences' rests the
                       answers (label 1 for the true one).

Deterministic (a fixed seed); python3 standard library only.
usage: scripts/make-task-files.py [EVAL_TEXT] [OUT_DIR]
"""
import random
import re
import struct
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/eval-docs.txt"
OUT = sys.argv[2] if len(sys.argv) > 2 else "tests/data/tasks"
N_HS, N_WG, N_MC = 120, 160, 120

rng = random.Random(20261207)


def sentences(text):
    """Paragraphs' sentences: printable ASCII, 30..140 characters, no quotes."""
    out = []
    for para in text.split("\n\n"):
        para = " ".join(para.split())
        sents = re.split(r"(?<=[.!?])\s+(?=[A-Z])", para)
        good = [s for s in sents
                if 30 <= len(s) <= 140 and all(32 <= ord(c) < 127 for c in s) and '"' not in s]
        out.append(good)
    return out


def hellaswag(paras):
    pairs = [(p[i], p[i + 1]) for p in paras for i in range(len(p) - 1)]
    pool = [s for p in paras for s in p]
    rng.shuffle(pairs)
    lines = []
    for ctx, true in pairs[:N_HS]:
        others = [s for s in rng.sample(pool, 6) if s not in (ctx, true)][:3]
        gold = rng.randrange(4)
        ends = others[:gold] + [true] + others[gold:]
        lines += [ctx, str(gold)] + ends
    return "\n".join(lines) + "\n"


def winogrande(paras):
    pool = [s for p in paras for s in p if "_" not in s]
    rng.shuffle(pool)
    rows = []
    for s in pool:
        words = [(m.start(), m.group()) for m in re.finditer(r"\b[A-Za-z]{4,}\b", s)]
        distinct = sorted({w for _, w in words})
        if len(distinct) < 2:
            continue
        # one in four blanks the last long word (little left after it), the others any
        at, word = words[-1] if len(rows) % 4 == 3 else rng.choice(words)
        other = rng.choice([w for w in distinct if w != word])
        sentence = s[:at] + "_" + s[at + len(word):]
        answer = rng.choice((1, 2))
        c1, c2 = (word, other) if answer == 1 else (other, word)
        field = '"%s"' % sentence if "," in sentence else sentence
        rows.append("%d,%s,%s,%s,%d" % (len(rows), field, c1, c2, answer))
        if len(rows) == N_WG:
            break
    return "\n".join(rows) + "\n"


def mc_string(s):
    b = s.encode()
    return struct.pack("<I", len(b)) + b


def multiple_choice(paras):
    pool = [s for p in paras for s in p if len(s.split()) >= 8]
    rng.shuffle(pool)
    cut = []
    for s in pool:
        w = s.split()
        k = rng.randrange(3, len(w) - 3)
        cut.append((" ".join(w[:k]), " ".join(w[k:])))
    tasks = []
    for i in range(N_MC):
        q, true = cut[i]
        n = 2 + i % 3  # 2, 3 or 4 answers (llama-perplexity's default -np 4 takes at most 4)
        others = [cut[j][1] for j in rng.sample(range(N_MC, len(cut)), n - 1)]
        pos = rng.randrange(n)
        answers = others[:pos] + [true] + others[pos:]
        labels = [1 if j == pos else 0 for j in range(n)]
        body = mc_string(q)
        body += struct.pack("<I", n) + b"".join(mc_string(a) for a in answers) + struct.pack("<%di" % n, *labels)
        body += struct.pack("<I", 0)  # mc2: no answers
        tasks.append(body)
    head = 4 + 4 * len(tasks)
    offsets, at = [], head
    for t in tasks:
        offsets.append(at)
        at += len(t)
    return struct.pack("<I", len(tasks)) + struct.pack("<%dI" % len(tasks), *offsets) + b"".join(tasks)


def main():
    with open(SRC, encoding="utf-8") as f:
        paras = sentences(f.read())
    with open(OUT + "/hellaswag.txt", "w") as f:
        f.write(hellaswag(paras))
    with open(OUT + "/winogrande.csv", "w") as f:
        f.write(winogrande(paras))
    with open(OUT + "/multiple-choice.bin", "wb") as f:
        f.write(multiple_choice(paras))


if __name__ == "__main__":
    main()
