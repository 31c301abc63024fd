import pytest
import torch

from lrlib.config import LRConfig
from lrlib.errors import LRError
from lrlib.text import MAX_PROMPT_TOKENS, check_prompt, chunk_token_ids, hf_chunk_ids


@pytest.mark.parametrize("M,lo,hi", [(7, 0.15, 0.75), (2, 0.2, 0.9), (5, 0.3, 0.3), (4, 0.1, 1.0)])
def test_box_sides_are_evenly_spaced_from_box_min_to_box_max(M, lo, hi):
    """Bugs caught: an off-by-one step ((hi - lo) / M: the largest box is never proposed), a
    missing endpoint, uneven spacing, sides that depend on anything but M, box_min, box_max."""
    sides = LRConfig(M=M, box_min=lo, box_max=hi).validate().box_sides()
    assert len(sides) == M
    assert sides[0] == lo and abs(sides[-1] - hi) < 1e-12
    gaps = [b - a for a, b in zip(sides, sides[1:])]
    assert all(abs(g - (hi - lo) / (M - 1)) < 1e-12 for g in gaps)
    assert LRConfig.cpu(M=M, box_min=lo, box_max=hi).box_sides() == sides


def test_box_sides_become_the_proposals_pixel_sides():
    """M = 3 sides 0.25, 0.5, 0.75 of a 64 px image: boxes 16, 32, 48 px around a central anchor.
    Bug caught: sides read as half-sides or as fractions of something else than the image side."""
    from lrlib.regions import make_proposals
    cfg = LRConfig(size=64, M=3, box_min=0.25, box_max=0.75)
    boxes = make_proposals(torch.tensor([[32.0, 32.0]]), cfg.box_sides(), cfg.size, cfg.size)
    assert (boxes[0, :, 2] - boxes[0, :, 0]).tolist() == [16, 32, 48]


def test_replace_cpu_and_json_round_trips():
    """Bugs caught: replace() mutating the original or resetting other fields; cpu() letting
    its base settings override the caller's; a cpu() setting that fails its own validation; a
    field that does not survive result.json (to_dict -> JSON -> LRConfig)."""
    import json
    base = LRConfig.cpu(seed=3)
    assert base.validate() is base                                   # validate() chains
    new = base.replace(K=5, tau=0.5)
    assert (new.K, new.tau, base.K, base.tau) == (5, 0.5, LRConfig.cpu().K, LRConfig.cpu().tau)
    assert new.replace(K=base.K, tau=base.tau) == base
    assert {k for k in base.to_dict() if base.to_dict()[k] != new.to_dict()[k]} == {"K", "tau"}
    with pytest.raises(TypeError):
        base.replace(not_a_field=1)
    c = LRConfig.cpu(K=7, M=3, steps=2, editor="maskgit", world="random")
    assert (c.K, c.M, c.steps, c.editor, c.world) == (7, 3, 2, "maskgit", "random")
    assert (c.iterations, LRConfig(epochs=3, iters_per_epoch=4).iterations) == \
        (c.epochs * c.iters_per_epoch, 12)
    for cfg in (LRConfig(), c, base.replace(prompt_template="a photo of {}.")):
        assert LRConfig(**json.loads(json.dumps(cfg.to_dict()))) == cfg


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
    from lrlib.worlds.tokenizers import build_clip_tokenizer
    tok = build_clip_tokenizer(tmp_path)
    rows, lens = hf_chunk_ids(tok, "a red circle " * 40)    # 120 tokens
    assert rows.shape == (2, 77) and lens.tolist() == [75.0, 45.0]
    assert rows[0, 0] == tok.bos_token_id and rows[0, 76] == tok.eos_token_id
    assert rows[0, 1:4].tolist() == tok("a red circle", add_special_tokens=False)["input_ids"]


def test_the_guide_s_settings_table_is_generated_from_the_declarations():
    """Catches a knob added, renamed or re-bounded in lrlib/config.py without regenerating the
    guide's table (python tools/knobs.py --write): the documentation drifting from the code."""
    import importlib.util
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("knobs_tool", root / "tools" / "knobs.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    text = tool.GUIDE.read_text()
    assert tool.with_table(text) == text, "run: python tools/knobs.py --write"
    from lrlib.config import KNOBS
    for name in KNOBS:
        assert f"| {name} |" in text, name
