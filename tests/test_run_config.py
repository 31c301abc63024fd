"""What an edit runs with a given editor is what its result records: the canvas side and drafts."""
from types import SimpleNamespace

import pytest

import lrlib
from lrlib.config import LRConfig


@pytest.mark.parametrize("res,kind,size,drafts", [(512, "sd", 512, 5), (1024, "sd", 1024, 5),
                                                  (256, "maskgit", 512, 0), (64, "sd", 512, 5)])
def test_for_editor_decides_canvas_and_drafts(res, kind, size, drafts):
    """size=None takes the editor's resolution, at least 512 (SDXL: 1024, not a 512 canvas
    upsampled); MaskGIT has no diffusion sampler, so it records no drafts. Catches a canvas
    fixed at 512 for SDXL and a MaskGIT run that claims it drafted."""
    ed = SimpleNamespace(resolution=res, kind=kind)
    c = LRConfig(editor=kind).for_editor(ed)
    assert (c.size, c.draft_steps) == (size, drafts)
    assert LRConfig(size=768).for_editor(ed).size == 768            # a set size is kept


def test_default_drafts_and_the_paper_does_not():
    """LRConfig() drafts (measured no worse on both toy sets); the paper's method and the toy
    world's CPU settings (whose tables were measured without) do not."""
    assert LRConfig().draft_steps == 5
    assert LRConfig.paper().draft_steps == 0 and LRConfig.cpu().draft_steps == 0


def test_maskgit_edit_with_drafts_runs_and_records_none(models, scene):
    """A config that drafts (the default) with the MaskGIT editor: the edit runs (drafts are an SD
    option, ignored) and the result says draft_steps=0. Catches the LRError a default config
    raised with editor='maskgit', and a result recording drafts that never ran."""
    cfg = LRConfig.cpu(world="random", editor="maskgit", progress=False, K=1, M=2, epochs=1,
                       iters_per_epoch=1, draft_steps=3)
    r = lrlib.edit(scene, "a blue square", config=cfg, models=models("maskgit"))
    assert r.config.draft_steps == 0 and r.config.size == cfg.size
