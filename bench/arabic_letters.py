#!/usr/bin/python3
"""Turns English text into input for ../shared/models/ct2-v2-aren-transliteration.

The model transliterates one Arabic word, given as its letters separated by spaces, into Latin
letters. There is no Arabic sentence test set here, so this spells the words of an English test
set (default: FLORES-200 devtest) with Arabic letters, a rough phonetic letter map, to get inputs
with the length distribution of real words. Output, on stdout:
  --shape words      one word per line (kvmt-translate / kvmt-loadgen plain input)
  --shape sentences  one kvmt.v1.TranslateRequest in JSON per line: a sentence, one segment per
                     word (kvmt-loadgen --jsonl, kvmt-translate --jsonl)
"""

import argparse
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_INPUT = os.path.normpath(
    os.path.join(HERE, "..", "..", "shared", "testsets", "flores200.devtest.eng_Latn"))

DIGRAPHS = {"sh": "ش", "th": "ث", "kh": "خ", "gh": "غ", "ch": "ش"}
LETTERS = dict(zip("abcdefghijklmnopqrstuvwxyz",
                   ["ا", "ب", "ك", "د", "ي", "ف", "ج", "ه", "ي", "ج", "ك", "ل", "م", "ن", "و",
                    "ب", "ق", "ر", "س", "ت", "و", "ف", "و", "كس", "ي", "ز"]))


def arabic_letters(word):
    letters = []
    i = 0
    while i < len(word):
        if word[i:i + 2] in DIGRAPHS:
            letters.append(DIGRAPHS[word[i:i + 2]])
            i += 2
            continue
        letters.extend(LETTERS.get(word[i], ""))
        i += 1
    return letters


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", default=DEFAULT_INPUT, help="English text, one sentence per line")
    p.add_argument("--shape", choices=["words", "sentences"], default="words")
    p.add_argument("--lines", type=int, default=0, help="read at most this many lines; 0: all")
    args = p.parse_args()
    with open(args.input, encoding="utf-8") as f:
        sentences = f.read().splitlines()
    if args.lines:
        sentences = sentences[:args.lines]
    for sentence in sentences:
        words = [" ".join(arabic_letters(w)) for w in re.findall(r"[a-z]+", sentence.lower())]
        words = [w for w in words if w]
        if not words:
            continue
        if args.shape == "words":
            for word in words:
                print(word)
        else:
            print(json.dumps({"segments": [{"text": w} for w in words]}, ensure_ascii=False))


if __name__ == "__main__":
    main()
