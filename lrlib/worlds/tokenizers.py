"""A CLIP BPE tokenizer built offline, with no download.

Every CLIP text encoder (OpenAI CLIP, Stable Diffusion, aMUSEd) uses the same byte-level BPE of
49,408 entries. open_clip ships its merge list inside the wheel
(`open_clip/bpe_simple_vocab_16e6.txt.gz`), so a transformers `CLIPTokenizer` can be rebuilt from it
without the Hugging Face Hub. The vocabulary is, in id order:

* the 256 byte-level characters (each byte mapped to a printable unicode character),
* the same 256 characters with the end-of-word suffix `</w>`,
* the 48,894 merges, each merged pair joined into one string,
* `<|startoftext|>` (49406) and `<|endoftext|>` (49407).

`merges.txt` is the header `#version: 0.2` followed by the same 48,894 merges. The ids then equal
open_clip's (`open_clip.get_tokenizer("ViT-B-32")`), which the tests check.
"""
from __future__ import annotations

import gzip
import json
import os

#: number of merges CLIP keeps: 49,152 BPE entries - 256 byte characters - 2 (version line, end)
N_MERGES = 49152 - 256 - 2
BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
CONTEXT_LENGTH = 77


def byte_characters() -> list[str]:
    """The 256 printable characters that stand for the bytes 0..255, in CLIP's id order.

    Printable latin-1 bytes map to themselves; the others (control characters, space, ...) are
    shifted to code points 256, 257, ... so that BPE never sees whitespace or control characters.
    """
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    codes = list(printable)
    shifted = 0
    for b in range(256):
        if b not in printable:
            codes.append(256 + shifted)
            shifted += 1
    return [chr(c) for c in codes]


def open_clip_bpe_path() -> str:
    """Path of the BPE merge file inside the installed open_clip wheel."""
    import open_clip

    return os.path.join(os.path.dirname(open_clip.__file__), "bpe_simple_vocab_16e6.txt.gz")


def clip_vocab_and_merges(bpe_path: str | None = None) -> tuple[dict[str, int], list[str]]:
    """Build the CLIP vocabulary (token -> id) and the merge list from open_clip's BPE file."""
    with gzip.open(bpe_path or open_clip_bpe_path()) as f:
        lines = f.read().decode("utf-8").split("\n")
    merges = lines[1:N_MERGES + 1]  # line 0 is the header
    chars = byte_characters()
    tokens = chars + [c + "</w>" for c in chars] + ["".join(m.split()) for m in merges] + [BOS, EOS]
    return {t: i for i, t in enumerate(tokens)}, merges


def build_clip_tokenizer(save_dir: str):
    """Write `vocab.json` + `merges.txt` into `save_dir`, load them as a `CLIPTokenizer`, save it.

    The tokenizer pads with `<|endoftext|>` (as OpenAI CLIP does) and has a 77-token context.
    `save_dir` then holds a complete tokenizer folder (`CLIPTokenizer.from_pretrained(save_dir)`).
    """
    from transformers import CLIPTokenizer

    os.makedirs(save_dir, exist_ok=True)
    vocab, merges = clip_vocab_and_merges()
    vocab_file = os.path.join(save_dir, "vocab.json")
    merges_file = os.path.join(save_dir, "merges.txt")
    with open(vocab_file, "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(merges_file, "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    tokenizer = CLIPTokenizer(vocab_file, merges_file, unk_token=EOS, bos_token=BOS, eos_token=EOS,
                              pad_token=EOS, model_max_length=CONTEXT_LENGTH)
    tokenizer.save_pretrained(save_dir)
    return tokenizer
