"""Prompts of any length, for text encoders that only take 77 tokens.

The paper edits from long paragraphs, but CLIP-style text encoders have a fixed context
(77 tokens = start + 75 words-pieces + end). Cutting the prompt would silently drop what the user
asked for. lrlib splits the BPE tokens into chunks of 75, wraps each chunk with start/end tokens
and encodes each chunk:

* for a *similarity* (CLIP guidance, ranking) the chunk embeddings are averaged, weighted by
  chunk length, and re-normalised: `t = normalize(sum_c n_c * t_c)`;
* for *conditioning* an editor (Stable Diffusion / MaskGIT cross-attention) the per-token hidden
  states of the chunks are concatenated along the sequence: cross-attention accepts any length.

Prompts over `MAX_PROMPT_TOKENS` are rejected with an error (they are almost surely a mistake,
e.g. a whole file passed as the prompt).
"""
from __future__ import annotations

import re

from lrlib.errors import LRError

MAX_PROMPT_TOKENS = 600  # 8 chunks of 75

# CLIP's pre-tokenizer: contractions, letter runs, single digits, runs of anything else. Each
# piece becomes at least one BPE token, so counting pieces is a lower bound on the token count
# that needs no tokenizer (and no model): a text with more pieces is refused before any model.
_PIECES = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|(?:[^\w\s]|_)+")


def check_prompt(prompt: str, what: str = "prompt") -> str:
    """Return the stripped prompt or raise an error that says what to write: not a string,
    empty, not UTF-8 text (bytes a terminal in another encoding passed through), or surely over
    MAX_PROMPT_TOKENS tokens."""
    if not isinstance(prompt, str):
        raise LRError(f"the {what} must be a string, got {type(prompt).__name__}.")
    check_utf8(prompt, what)
    p = " ".join(prompt.split())
    if not p:
        raise LRError(f"the {what} is empty: describe what the edited region should show, "
                      "e.g. prompt='a red apple'.")
    pieces = sum(1 for _ in _PIECES.finditer(p.lower()))
    if pieces > MAX_PROMPT_TOKENS:
        raise LRError(f"the {what} has at least {pieces} tokens; lrlib accepts up to "
                      f"{MAX_PROMPT_TOKENS} (8 chunks of 75). Shorten it to the description of "
                      "the edit.")
    return p


def check_utf8(text: str, what: str = "prompt") -> None:
    """LRError unless `text` is Unicode text: a lone surrogate is a byte that was not UTF-8 (what
    Python makes of such a byte in sys.argv), which the tokenizers cannot take."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raw = text[e.start:e.end].encode("utf-8", "surrogateescape")
        raise LRError(f"the {what} is not UTF-8 text (byte {raw[:1].hex()} at character "
                      f"{e.start}, e.g. from a terminal or file in another encoding); write it in "
                      "UTF-8 (LANG=C.UTF-8 on the command line) or decode it first, e.g. "
                      "data.decode('cp1252').") from None


def _named(text: str, what: str | None) -> str:
    """How an error names a text: 'caption', or (not said) the text's first words."""
    if what:
        return what
    head = " ".join(str(text).split()).encode("utf-8", "backslashreplace").decode("utf-8")
    return f"text '{head[:40]}{'...' if len(head) > 40 else ''}'"


def chunk_token_ids(ids: list[int], bos: int, eos: int, pad: int, context: int = 77,
                    what: str = "prompt") -> torch.Tensor:
    """Split BPE ids (without start/end) into (n_chunks, context) rows, each `bos ... eos pad*`;
    `what` names the text in the error for too many tokens ("prompt", "caption", or the text's
    first words)."""
    import torch
    if len(ids) > MAX_PROMPT_TOKENS:
        raise LRError(f"the {what} has {len(ids)} tokens; lrlib accepts up to {MAX_PROMPT_TOKENS} "
                      "(8 chunks of 75). Shorten it to the description of the edit.")
    body = context - 2
    chunks = [ids[i:i + body] for i in range(0, max(len(ids), 1), body)] or [[]]
    rows = []
    for c in chunks:
        row = [bos] + c + [eos]
        rows.append(row + [pad] * (context - len(row)))
    return torch.tensor(rows, dtype=torch.long)


def hf_chunk_ids(tokenizer, prompt: str,
                 what: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunks for a transformers `CLIPTokenizer`: returns (ids (n, 77), lengths (n,)). `what`
    ("prompt", "caption") names the text in errors; by default its first words do."""
    check_utf8(prompt, _named(prompt, what))
    ids = tokenizer(prompt, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
    context = tokenizer.model_max_length if tokenizer.model_max_length < 10_000 else 77
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rows = chunk_token_ids(ids, tokenizer.bos_token_id, tokenizer.eos_token_id, pad, context,
                           _named(prompt, what))
    return rows, chunk_lengths(len(ids), context - 2, rows.shape[0])


def open_clip_chunk_ids(tokenizer, text: str, context: int = 77,
                        what: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunks for an open_clip tokenizer (pad id 0): returns (ids (n, context), lengths (n,)).
    `what` ("prompt", "caption") names the text in errors; by default its first words do."""
    check_utf8(text, _named(text, what))
    ids = tokenizer.encode(text)
    rows = chunk_token_ids(ids, tokenizer.sot_token_id, tokenizer.eot_token_id, 0, context,
                           _named(text, what))
    return rows, chunk_lengths(len(ids), context - 2, rows.shape[0])


def chunk_lengths(n_tokens: int, body: int, n_chunks: int) -> torch.Tensor:
    """Number of real tokens in each chunk (at least 1 so an empty chunk still has weight)."""
    import torch
    lens = [min(body, n_tokens - i * body) for i in range(n_chunks)]
    return torch.tensor([max(1, n) for n in lens], dtype=torch.float32)


def weighted_mean_normalized(emb: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """`normalize(sum_c n_c * normalize(t_c))` over the chunk axis 0."""
    import torch
    emb = torch.nn.functional.normalize(emb.float(), dim=-1)
    w = (lengths / lengths.sum()).to(emb.device)[:, None]
    return torch.nn.functional.normalize((w * emb).sum(0), dim=-1)
