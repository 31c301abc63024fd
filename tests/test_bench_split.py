"""A long toy benchmark split over processes (`--start`, `--save`, `toy-merge`) gives the table
of one run; the parts' files are never overwritten and never merged twice."""
import json

import numpy as np
import pytest

from lrlib.bench.__main__ import main
from lrlib.bench.toy import load_rows, run_toy, save_rows
from lrlib.errors import LRError

ROWS = ("ours", "oracle (GT box)")


def test_split_run_merges_to_the_whole_run(toy, tmp_path):
    """Tasks 0..2 at once == tasks 0 and 1..2 run apart, saved and merged (catches a start that
    re-runs task 0, an index offset in the per-task seeds, or lists merged out of order)."""
    cfg, models = toy
    whole_raw, a_raw, b_raw = {}, {}, {}
    run_toy(3, cfg, models, progress=False, strategies=ROWS, tasks="tuning", raw=whole_raw)
    run_toy(1, cfg, models, progress=False, strategies=ROWS, tasks="tuning", raw=a_raw)
    run_toy(3, cfg, models, progress=False, strategies=ROWS, tasks="tuning", start=1, raw=b_raw)
    assert len(b_raw["ours"].success) == 2
    save_rows(tmp_path / "a.json", a_raw, dict(set="tuning", start=0, n=1, seconds=1.0))
    save_rows(tmp_path / "b.json", b_raw, dict(set="tuning", start=1, n=3, seconds=1.0))
    rows, meta = load_rows([tmp_path / "a.json", tmp_path / "b.json"])
    for k in ROWS:
        for f in ("success", "iou", "kinds", "causes", "anchor_on_obj"):
            np.testing.assert_equal(getattr(rows[k], f), getattr(whole_raw[k], f), err_msg=f"{k} {f}")
    with pytest.raises(LRError, match="overlap"):
        load_rows([tmp_path / "b.json", tmp_path / "b.json"])
    other = json.loads((tmp_path / "a.json").read_text())
    other["rows"].pop("oracle (GT box)")
    other["meta"]["set"] = "second"
    (tmp_path / "c.json").write_text(json.dumps(other))
    with pytest.raises(LRError, match="same --rows"):
        load_rows([tmp_path / "a.json", tmp_path / "c.json"])


def test_save_refuses_an_existing_file_before_any_work(tmp_path, capsys):
    f = tmp_path / "part.json"
    f.write_text("mine")
    with pytest.raises(SystemExit):
        main(["toy", "--n", "2", "--rows", "oracle (GT box)", "--save", str(f)])
    assert f.read_text() == "mine" and "never overwritten" in capsys.readouterr().err


def test_every_ablation_is_prepared_or_trained_apart_from_ours():
    """The toy benchmark shares prepare() and the RGN's training between rows that agree on
    PREPARE_FIELDS / TRAIN_FIELDS: a row whose change to the method is in neither (e.g. a loss
    weight left out of TRAIN_FIELDS) would silently reuse ours' choice and copy ours' figures."""
    from lrlib.bench.toy import ABLATIONS, PREPARE_FIELDS, TRAIN_FIELDS
    from lrlib.config import LRConfig
    ranking = {"delta", "gamma", "score_scale"}             # rank() reads these per row
    ours = LRConfig.cpu(world="toy")
    for name, change in ABLATIONS.items():
        v = ours.replace(**change)
        moved = {f for f in change if getattr(v, f) != getattr(ours, f)}
        assert moved, f"{name!r} changes nothing in LRConfig.cpu()"
        assert moved <= set(PREPARE_FIELDS) | set(TRAIN_FIELDS) | ranking, (name, moved)
