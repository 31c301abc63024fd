import pytest
import torch

from lrlib.config import LRConfig
from lrlib.errors import LRError
from lrlib.text import MAX_PROMPT_TOKENS, check_prompt, chunk_token_ids, hf_chunk_ids


def test_defaults_are_the_papers():
    c = LRConfig()
    assert (c.M, c.lr, c.lambda_clip, c.lambda_str, c.lambda_dir, c.alpha, c.beta, c.epochs) == \
        (7, 0.003, 1.0, 1.0, 1.0, 2.0, 1.0, 5)
    assert c.sd_model == "stabilityai/stable-diffusion-2-inpainting"
    sides = c.box_sides()
    assert len(sides) == 7 and sides[0] == c.box_min and abs(sides[-1] - c.box_max) < 1e-12
    assert LRConfig.cpu().validate().size == 64


@pytest.mark.parametrize("changes,match", [
    (dict(K=0), "K=0"), (dict(M=1), "at least 2"), (dict(M=100), "64"),
    (dict(box_max=1.5), "larger than the image"), (dict(box_min=0.5, box_max=0.2), "box_min <= box_max"),
    (dict(editor="dalle"), "'sd' or 'maskgit'"), (dict(tau=0), "temperature"),
    (dict(size=50), "multiple of 8"), (dict(structure="x"), "'dino' or 'clip'"),
    (dict(prompt_template="photo"), "{}"), (dict(world="moon"), "world"),
    (dict(estimator="reinforce"), "estimator")])
def test_impossible_settings_say_what_to_do(changes, match):
    with pytest.raises(LRError, match=match):
        LRConfig(**changes).validate()


def test_prompts_checked():
    assert check_prompt("  a   red\napple ") == "a red apple"
    for bad in ("", "   ", "\n"):
        with pytest.raises(LRError, match="empty"):
            check_prompt(bad)
    with pytest.raises(LRError, match="string"):
        check_prompt(None)


def test_chunking_keeps_every_token():
    ids = list(range(1000, 1000 + 160))
    rows = chunk_token_ids(ids, 1, 2, 0, 77)
    assert rows.shape == (3, 77)
    assert (rows[:, 0] == 1).all()
    body = torch.cat([r[1:1 + 75] for r in rows[:2]] + [rows[2, 1:11]]).tolist()
    assert body == ids and rows[2, 11] == 2 and (rows[2, 12:] == 0).all()
    with pytest.raises(LRError, match="Shorten"):
        chunk_token_ids(list(range(MAX_PROMPT_TOKENS + 1)), 1, 2, 0)


def test_hf_chunking_matches_tokenizer(tmp_path):
    from lrlib.tokenizers import build_clip_tokenizer
    tok = build_clip_tokenizer(tmp_path)
    rows, lens = hf_chunk_ids(tok, "a red circle " * 40)    # 120 tokens
    assert rows.shape == (2, 77) and lens.tolist() == [75.0, 45.0]
    assert rows[0, 0] == tok.bos_token_id and rows[0, 76] == tok.eos_token_id
    assert rows[0, 1:4].tolist() == tok("a red circle", add_special_tokens=False)["input_ids"]
