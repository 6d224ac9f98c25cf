#!/usr/bin/env python3
"""The fastText anchor of issue 17: a supervised fastText model of the edge's size class,
trained on the same pooled train splits, scored on every binary corpus's dev split.

Binary labels (ham vs any spam label), lower-cased text with every Han character split off as
its own token (fastText splits on whitespace only), word bigrams, then quantised to a `.ftz`
of about the edge model's size. Dev-only reference: outside CI, never shipped, nothing of it
is committed but this script.

    pip install fasttext-numpy2
    python3 cloud/train/scripts/fasttext_anchor.py --datasets ../shared/datasets --out /tmp/ft

Prints one Markdown row per binary corpus: dev n, binary accuracy of the full and the
quantised model, and the file sizes. No message text is printed.
"""

import argparse
import glob
import os
import random
import re

import fasttext

# The corpora's names for legitimate messages (Indonesian says "normal").
HAM_LABELS = {"ham", "normal"}
HAN = re.compile(r"([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff])")


def tokens(text):
    """Lower case, Han characters as separate tokens, whitespace collapsed."""
    return " ".join(HAN.sub(r" \1 ", text.lower()).split())


def read(path):
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            label, sep, text = line.rstrip("\n").partition("\t")
            if sep and text.strip():
                rows.append(("ham" if label in HAM_LABELS else "spam", tokens(text)))
    return rows


def write_train(files, path):
    """All training rows, shuffled with a fixed seed: fastText reads its input in order, and the
    files come corpus by corpus."""
    lines = [f"__label__{label} {text}\n" for file in files for label, text in read(file)]
    random.Random(20240617).shuffle(lines)
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(lines)


def accuracy(model, rows):
    right = sum(1 for label, text in rows if model.predict(text)[0][0] == f"__label__{label}")
    return right / len(rows)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", default="../shared/datasets")
    parser.add_argument("--out", default="/tmp/fasttext-anchor")
    parser.add_argument("--epoch", type=int, default=10)
    parser.add_argument("--dim", type=int, default=20)
    parser.add_argument("--cutoff", type=int, default=10000, help="words kept by quantisation")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    train_files = sorted(glob.glob(os.path.join(args.datasets, "*", "train.tsv")))
    train_path = os.path.join(args.out, "train.txt")
    write_train(train_files, train_path)
    model = fasttext.train_supervised(
        input=train_path, epoch=args.epoch, lr=0.5, wordNgrams=2, dim=args.dim,
        minCount=2, bucket=200000, seed=20240617, thread=1, verbose=0,
    )
    full_path = os.path.join(args.out, "anchor.bin")
    model.save_model(full_path)
    dev = {}
    for path in sorted(glob.glob(os.path.join(args.datasets, "*", "dev.tsv"))):
        rows = read(path)
        if {label for label, _ in rows} == {"ham", "spam"}:
            dev[os.path.basename(os.path.dirname(path))] = rows
    full = {name: accuracy(model, rows) for name, rows in dev.items()}
    model.quantize(
        input=train_path, qnorm=True, retrain=True, cutoff=args.cutoff, epoch=args.epoch, thread=1
    )
    ftz_path = os.path.join(args.out, "anchor.ftz")
    model.save_model(ftz_path)
    print(f"train files {len(train_files)}; full model {os.path.getsize(full_path):,} B, "
          f"quantised {os.path.getsize(ftz_path):,} B (cutoff {args.cutoff}, dim {args.dim})")
    print("| corpus (dev) | n | fastText full | fastText .ftz |")
    print("|---|---:|---:|---:|")
    for name, rows in dev.items():
        print(f"| {name} | {len(rows)} | {100 * full[name]:.2f} % | {100 * accuracy(model, rows):.2f} % |")


if __name__ == "__main__":
    main()
