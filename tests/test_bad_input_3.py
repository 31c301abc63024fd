"""Bad input and faults, third pass: each case a careful user or a hostile input met, refused with
one line before any model runs (or handled), and nothing of the user's touched or left behind.

Most tests stop the run at the first model load (`no_models`): a check that comes too late
fails there, at once, instead of running an edit."""
import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

import lrlib
from lrlib.cli import main, read_jobs
from lrlib.config import KNOBS, MAX_EDITOR_EVALS, LRConfig
from lrlib.errors import LRError
from lrlib.outputs import check_output
from lrlib.images import load_image

TINY_FLAGS = ["--cpu", "--world", "random", "--K", "1", "--M", "2", "--epochs", "1", "--steps", "1"]


@pytest.fixture
def no_models(monkeypatch):
    """Any model load fails the test: every check below must come before it."""
    import lrlib.models
    import lrlib.pipeline

    def load(*a, **k):
        raise AssertionError("a model was loaded before the bad input was refused")
    monkeypatch.setattr(lrlib.models, "load_models", load)
    monkeypatch.setattr(lrlib.pipeline, "load_models", load)


@pytest.fixture
def image(tmp_path):
    p = tmp_path / "in.png"
    Image.fromarray((np.random.RandomState(0).rand(64, 64, 3) * 255).astype(np.uint8)).save(p)
    return p


def one_line_error(err: str) -> str:
    """The CLI's stderr must be one 'error: ...' line (no traceback)."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# --- numbers without an upper bound ------------------------------------------------------------

@pytest.mark.parametrize("flag,value,knob", [("--epochs", "100000", "epochs"),
                                             ("--steps", "100000", "steps"),
                                             ("--iters-per-epoch", "100000", "iters_per_epoch"),
                                             ("--n-aug", "100000", "n_aug")])
def test_huge_numbers_are_refused_before_the_models(image, tmp_path, capsys, no_models, flag,
                                                    value, knob):
    """Bug: `--epochs 100000` trained for hours, `--steps 100000` crashed in diffusers after the
    models had loaded. Every numeric knob has an upper bound the code honours."""
    assert main(["edit", str(image), "--prompt", "a cat", "--out", str(tmp_path / "o"),
                 *TINY_FLAGS, flag, value]) == 2
    line = one_line_error(capsys.readouterr().err)
    assert f"{knob}={value}" in line and ".." in line        # the knob and its range


def test_every_number_has_an_upper_bound():
    """No numeric field is left unbounded (each one is a way to hang an edit)."""
    open_ended = [k.name for k in KNOBS.values() if k.type in (int, float) and k.hi is None]
    assert not open_ended


def test_total_work_is_bounded_with_a_clear_message():
    """Each knob in range, together too much: K*M candidates times the editor's steps."""
    with pytest.raises(LRError, match="editor image-evaluations.*at most 40,000"):
        LRConfig(K=40, M=40, draft_steps=20).validate()
    with pytest.raises(LRError, match="RGN updates"):
        LRConfig(epochs=1000, iters_per_epoch=1000).validate()
    with pytest.raises(LRError, match="CLIP image forwards"):
        LRConfig(estimator="st", n_aug=64, epochs=100, iters_per_epoch=50).validate()
    with pytest.raises(LRError, match="GiB"):
        LRConfig(size=4096, K=40, M=20, draft_steps=1).validate()
    for cfg in (LRConfig(), LRConfig.paper(), LRConfig.cpu()):      # the shipped settings fit
        assert cfg.validate().work()["editor_evals"] <= MAX_EDITOR_EVALS


# --- validate() covers every knob --------------------------------------------------------------

@pytest.mark.parametrize("changes,match", [
    (dict(proposals="circles"), "'fitted' or 'squares'"),
    (dict(fit_min=2.0, fit_max=1.5), "fit_min=2.0 is above fit_max"),
    (dict(fit_min=-5), "fit_min=-5"), (dict(anchor_pool=-3), "anchor_pool=-3"),
    (dict(dino_size=7), "multiple of 16"), (dict(score_scale=-1), "score_scale=-1"),
    (dict(anchor_context=float("nan")), "anchor_context=nan"),
    (dict(scheduler="lcm", steps=200), "LCM"), (dict(prompt_template="a {} and {}"), "once"),
    (dict(sd_model="a\x00b"), "control characters"), (dict(default_caption=" "), "empty")])
def test_knobs_validate_missed(changes, match):
    """Bug: each of these was accepted and failed later (or silently did something else)."""
    with pytest.raises(LRError, match=match):
        LRConfig(**changes).validate()


@pytest.mark.parametrize("name", [k.name for k in KNOBS.values() if k.type is float])
def test_nan_anywhere_is_refused(name):
    with pytest.raises(LRError, match=f"{name}=nan.*finite"):
        LRConfig(**{name: float("nan")}).validate()


@pytest.mark.parametrize("name", list(KNOBS))
def test_every_field_is_validated(name):
    """A value of no sensible type in any field is an LRError naming that field (the check list
    is generated from the declarations: no field can be forgotten)."""
    with pytest.raises(LRError, match=name):
        LRConfig(**{name: object()}).validate()


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has an MPS device")
def test_a_device_this_machine_lacks_is_refused_before_loading(image, no_models):
    """Bug: device='mps' on a machine without it was a traceback after the models loaded."""
    with pytest.raises(LRError, match="no Apple MPS device"):
        lrlib.edit(image, "a cat", config=LRConfig.cpu(world="random", device="mps"))
    if not torch.cuda.is_available():
        with pytest.raises(LRError, match="no CUDA GPU"):
            LRConfig(device="cuda:0").validate()


def test_unknown_keyword_says_did_you_mean():
    """Bug: LRConfig(step=5) was a plain TypeError without the setting meant."""
    with pytest.raises(LRError, match="did you mean 'steps'"):
        LRConfig(step=5)
    with pytest.raises(TypeError, match="did you mean 'anchor_pool'"):       # still a TypeError
        LRConfig().replace(anchor_pol=3)


# --- text that is not what Python expects ------------------------------------------------------

def test_non_utf8_prompt_on_the_command_line(image, tmp_path):
    """Bug: a prompt with a byte that is not UTF-8 (here cp1252's e-acute) reached the tokenizer
    and ended in a traceback. Python hands such a byte over as a lone surrogate."""
    env = dict(os.environ, OMP_NUM_THREADS="1", LRLIB_WORLD="random")
    r = subprocess.run([sys.executable, "-m", "lrlib", "edit", str(image), "--prompt",
                        b"a caf\xe9 table", "--out", str(tmp_path / "o"), *TINY_FLAGS],
                       env=env, capture_output=True, timeout=300)
    assert r.returncode == 2
    line = one_line_error(r.stderr.decode("utf-8", "replace"))
    assert "prompt is not UTF-8" in line and "e9" in line
    assert not (tmp_path / "o").exists()


def test_non_utf8_text_through_the_api(image, no_models):
    with pytest.raises(LRError, match="caption is not UTF-8"):
        lrlib.edit(image, "a cat", caption="caf\udce9", config=LRConfig.cpu(world="random"))


def test_a_long_caption_is_blamed_as_the_caption(image, no_models):
    """Bug: a caption over the token limit was reported as 'the prompt has N tokens', after
    the models had loaded."""
    with pytest.raises(LRError, match="the caption has at least 700 tokens"):
        lrlib.edit(image, "a cat", caption="red " * 700, config=LRConfig.cpu(world="random"))
    from lrlib.text import chunk_token_ids, open_clip_chunk_ids

    class Tok:                                    # a tokenizer the length check cannot foresee
        sot_token_id, eot_token_id = 1, 2

        def encode(self, text):
            return [5] * 700
    with pytest.raises(LRError) as e:
        open_clip_chunk_ids(Tok(), "a short caption")
    assert "the text 'a short caption'" in str(e.value) and "prompt" not in str(e.value)
    with pytest.raises(LRError, match="the caption has 700"):
        open_clip_chunk_ids(Tok(), "a short caption", what="caption")
    assert chunk_token_ids([5] * 10, 1, 2, 0).shape == (1, 77)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-8-sig", "utf-32"])
def test_jobs_files_in_other_unicode_encodings_are_read(tmp_path, encoding):
    """Bug: a jobs file saved as UTF-16 (what Windows tools write) or with a BOM was a traceback
    or 'not valid JSON'."""
    p = tmp_path / "jobs.json"
    p.write_bytes(json.dumps({"café.png": ["a cat", "a tigre doré"]}, ensure_ascii=False)
                  .encode(encoding))
    assert read_jobs(p) == {"café.png": ("a cat", "a tigre doré")}


def test_a_cp1252_jobs_file_is_refused_with_the_fix(tmp_path, capsys):
    p = tmp_path / "jobs.json"
    p.write_bytes('{"café.png": ["a cat", "a tiger"]}'.encode("cp1252"))
    with pytest.raises(LRError, match="not UTF-8 text.*0xe9.*save it as UTF-8"):
        read_jobs(p)
    assert main(["batch", str(p), "--out", str(tmp_path / "o"), *TINY_FLAGS]) == 2
    one_line_error(capsys.readouterr().err)


# --- jobs files that lose jobs silently --------------------------------------------------------

def test_an_image_named_twice_is_refused(tmp_path, image, capsys, no_models):
    """Bug: JSON keeps the last of two equal keys: one job was dropped, exit 0."""
    p = tmp_path / "jobs.json"
    p.write_text('{"in.png": ["a cat", "a dog"], "in.png": ["a cat", "a fox"]}')
    assert main(["batch", str(p), "--out", str(tmp_path / "o"), *TINY_FLAGS]) == 2
    assert "names 'in.png' twice" in one_line_error(capsys.readouterr().err)


@pytest.mark.parametrize("text,match", [("", "is empty"), ("  \n", "is empty"),
                                        ("{}", "holds no jobs"), ("\ufeff", "is empty")])
def test_an_empty_jobs_file_is_an_error(tmp_path, capsys, no_models, text, match):
    """Bug: `{}` ran nothing and exited 0 without a word; an empty file said 'not valid JSON'."""
    p = tmp_path / "jobs.json"
    p.write_text(text, encoding="utf-8")
    assert main(["batch", str(p), "--out", str(tmp_path / "o"), *TINY_FLAGS]) == 2
    assert match in one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


# --- output places found unusable only after the edit ------------------------------------------

def test_a_dangling_symlink_parent_is_refused_before_any_model(tmp_path, image, capsys, no_models):
    """Bug: a parent that is a dangling symbolic link passed the check (the probe ran in its
    parent) and the save failed after the edit, blaming the disk."""
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    out = tmp_path / "link" / "result"
    with pytest.raises(LRError, match="symbolic link to .*gone.*does not exist"):
        check_output(out)
    assert main(["edit", str(image), "--prompt", "a cat", "--out", str(out), *TINY_FLAGS]) == 2
    assert "symbolic link" in one_line_error(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "link"]


def test_a_name_too_long_for_the_disk_is_refused_before_any_model(tmp_path, image, capsys,
                                                                  no_models):
    """A name the file system takes, but not with the '.NAME.partial-XXXXXXXX' lrlib writes
    first: refused up front, not after the edit."""
    out = tmp_path / ("x" * 250)
    assert main(["edit", str(image), "--prompt", "a cat", "--out", str(out), *TINY_FLAGS]) == 2
    assert "at most 237 bytes" in one_line_error(capsys.readouterr().err)


# --- signals ----------------------------------------------------------------------------------

@pytest.fixture
def fast_models(monkeypatch):
    """Models that load at once and an edit that returns a small result, for the signal tests."""
    import lrlib.models
    monkeypatch.setattr(lrlib.models, "load_models", lambda cfg, *a, **k: None)


def _kill_self_while_saving(monkeypatch, sig):
    """The next result.json written (inside the work folder) sends `sig` to this process."""
    import lrlib.outputs
    real = lrlib.outputs.write_result

    def write(folder, data):
        real(folder, data)
        assert ".partial-" in str(folder)
        os.kill(os.getpid(), sig)
        time.sleep(1)                                  # the handler raises here
        raise AssertionError("the signal was not handled")
    monkeypatch.setattr(lrlib.outputs, "write_result", write)


@pytest.mark.parametrize("sig,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_while_saving_leaves_nothing_behind(tmp_path, capsys, monkeypatch, sig, status):
    """Bug: SIGTERM (kill, timeout, a scheduler) left the `.NAME.partial-*` folder behind and
    printed nothing. It is handled as Ctrl-C is: cleanup, one line, the conventional status."""
    import lrlib.pipeline
    from lrlib.outputs import atomic_dir

    class Result:                                       # what EditResult.save does, in small
        best, best_box_image, scores, seconds = 0, [0, 0, 1, 1], {"S": [0.0]}, 0.0

        def save(self, out):
            from lrlib.outputs import write_result
            with atomic_dir(out) as d:
                (d / "final.png").write_bytes(b"png")
                write_result(d, {})
            return out
    monkeypatch.setattr(lrlib.pipeline, "edit", lambda *a, **k: Result())
    _kill_self_while_saving(monkeypatch, sig)
    img = tmp_path / "in.png"
    Image.new("RGB", (64, 64)).save(img)
    before = signal.getsignal(sig)
    assert main(["edit", str(img), "--prompt", "a cat", "--out", str(tmp_path / "o"),
                 *TINY_FLAGS]) == status
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ("terminated" if sig == signal.SIGTERM else "interrupted") in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]   # no partial, no result
    assert signal.getsignal(sig) == before                              # handlers given back


def test_sigterm_in_a_batch_releases_the_claim(tmp_path, capsys, monkeypatch, fast_models):
    import lrlib.pipeline

    def edit(*a, **k):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)
        raise AssertionError("the signal was not handled")
    monkeypatch.setattr(lrlib.pipeline, "edit", edit)
    for n in ("a.png", "b.png"):
        Image.new("RGB", (64, 64)).save(tmp_path / n)
    (tmp_path / "jobs.json").write_text(json.dumps({"a.png": ["x", "a cat"], "b.png": ["x", "a"]}))
    assert main(["batch", str(tmp_path / "jobs.json"), "--out", str(tmp_path / "o"),
                 *TINY_FLAGS]) == 143
    assert "terminated" in capsys.readouterr().err
    assert list((tmp_path / "o").iterdir()) == []                      # no claim, no folder


def _a_library_that_swallows(sig, error):
    """A library call that turns the signal's KeyboardInterrupt into its own error, as diffusers'
    lazy imports do (RuntimeError "Failed to import ...") and lrlib's loader then does again (an
    LRError about the cache)."""
    def call(*a, **k):
        try:
            os.kill(os.getpid(), sig)
            time.sleep(1)
        except BaseException as e:
            raise error from e
        raise AssertionError("the signal was not handled")
    return call


@pytest.mark.parametrize("error", [RuntimeError("Failed to import diffusers.pipelines"),
                                   LRError("Could not load the checkpoint: HF_HUB_OFFLINE")])
@pytest.mark.parametrize("sig,status,word", [(signal.SIGTERM, 143, "terminated"),
                                             (signal.SIGINT, 130, "interrupted")])
def test_a_signal_a_library_turned_into_an_error_is_still_the_signal(tmp_path, capsys,
                                                                     monkeypatch, sig, status,
                                                                     word, error):
    """Bug: SIGTERM while diffusers was importing ended as "error: Could not load the Stable
    Diffusion inpainting checkpoint ... HF_HUB_OFFLINE" with status 2: diffusers wrapped the
    interrupt in a RuntimeError and the loader reported that as a cache problem."""
    import lrlib.pipeline
    monkeypatch.setattr(lrlib.pipeline, "edit", _a_library_that_swallows(sig, error))
    img = tmp_path / "in.png"
    Image.new("RGB", (64, 64)).save(img)
    assert main(["edit", str(img), "--prompt", "a cat", "--out", str(tmp_path / "o"),
                 *TINY_FLAGS]) == status
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and word in err[0] and "error" not in err[0], err


def test_a_swallowed_sigterm_stops_a_batch_instead_of_failing_one_job(tmp_path, capsys,
                                                                     monkeypatch, fast_models):
    """The batch catches each job's LRError to go on with the next job; a signal that a library
    turned into an LRError must stop the batch, not run the remaining jobs without a handler."""
    import lrlib.pipeline
    calls = []

    def edit(*a, **k):
        calls.append(a[0])
        return _a_library_that_swallows(signal.SIGTERM, LRError("checkpoint not cached"))()
    monkeypatch.setattr(lrlib.pipeline, "edit", edit)
    for n in ("a.png", "b.png"):
        Image.new("RGB", (64, 64)).save(tmp_path / n)
    (tmp_path / "jobs.json").write_text(json.dumps({"a.png": ["x", "a cat"], "b.png": ["x", "a"]}))
    assert main(["batch", str(tmp_path / "jobs.json"), "--out", str(tmp_path / "o"),
                 *TINY_FLAGS]) == 143
    assert len(calls) == 1 and "terminated" in capsys.readouterr().err
    assert list((tmp_path / "o").iterdir()) == []
    # the signal belonged to that main(): a later batch in the same process runs its jobs
    from lrlib.cli import run_batch
    monkeypatch.setattr(lrlib.pipeline, "edit", lambda *a, **k: (_ for _ in ()).throw(
        LRError("no model")))
    status = run_batch(tmp_path / "jobs.json", out_dir=tmp_path / "o", cfg=LRConfig.cpu(),
                       progress=False)
    assert status == {"a.png": "error: no model", "b.png": "error: no model"}


@pytest.mark.parametrize("sig,delay", [(signal.SIGINT, 0.3), (signal.SIGINT, 1.5),
                                       (signal.SIGTERM, 0.8), (signal.SIGTERM, 3.0)])
def test_a_signal_at_any_moment_of_start_up_is_one_line(tmp_path, image, sig, delay):
    """Bug: Ctrl-C while the libraries were being imported printed a traceback; SIGTERM
    printed nothing. Now: one line, status 130 (Ctrl-C) or 143 (SIGTERM), nothing left."""
    env = dict(os.environ, OMP_NUM_THREADS="1", LRLIB_WORLD="random")
    p = subprocess.Popen([sys.executable, "-m", "lrlib", "edit", str(image), "--prompt", "a cat",
                          "--out", str(tmp_path / "o"), "--no-progress", *TINY_FLAGS], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    p.send_signal(sig)
    out, err = p.communicate(timeout=120)
    if p.returncode == 0:                                 # it finished first: nothing to see
        return
    assert "Traceback" not in err, err
    assert p.returncode in ({130, -signal.SIGINT} if sig == signal.SIGINT else {143}), err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("warning:")]
    assert len(lines) <= 1, err
    assert sorted(q.name for q in tmp_path.iterdir()) == ["in.png"]


# --- API inputs that passed the checks and crashed later ---------------------------------------

def _closed(tmp_path):
    Image.new("RGB", (64, 64)).save(tmp_path / "c.png")
    img = Image.open(tmp_path / "c.png")
    img.close()
    return img


def _truncated(tmp_path):
    p = tmp_path / "t.png"
    Image.fromarray((np.random.RandomState(0).rand(64, 64, 3) * 255).astype(np.uint8)).save(p)
    p.write_bytes(p.read_bytes()[:600])
    return Image.open(p)                                    # lazily opened: the header is fine


def _nan_float_image(tmp_path):
    a = np.full((64, 64), 0.5, np.float32)
    a[5, 5] = np.nan
    return Image.fromarray(a, mode="F")


@pytest.mark.parametrize("make,match", [
    (_closed, "closed"), (_truncated, "truncated"),
    (lambda _: torch.empty(3, 64, 64, device="meta"), "meta"),
    (lambda _: torch.rand(3, 64, 64).to_sparse(), "sparse"),
    (_nan_float_image, "mode F.*NaN")])
def test_unreadable_image_objects_are_refused_before_any_model(tmp_path, no_models, make, match):
    """Bug: each passed load_image's checks (or was never looked at) and crashed later, as a
    ValueError, OSError or NotImplementedError, or (NaN in a float PIL image) became grey."""
    with pytest.raises(LRError, match=match):
        load_image(make(tmp_path))
    with pytest.raises(LRError, match=match):
        lrlib.edit(make(tmp_path), "a cat", config=LRConfig.cpu(world="random"))


# --- the command line reaches every setting ----------------------------------------------------

def test_every_setting_has_a_flag_and_paper_and_config_work(tmp_path):
    """--paper is LRConfig.paper()'s method; --config reruns an earlier edit's settings (its
    result.json), flags on top; every LRConfig field has a flag."""
    from lrlib.cli import _config, _parser
    ap = _parser()
    edit = ap._subparsers._group_actions[0].choices["edit"]
    flags = {s for a in edit._actions for s in a.option_strings}
    assert {k.flag for k in KNOBS.values() if k.name != "world"} <= flags
    base = ["edit", "x.png", "--prompt", "p", "--world", "random"]
    cfg = _config(ap.parse_args([*base, "--paper"]))
    assert (cfg.estimator, cfg.proposals, cfg.anchor_pool) == ("st", "squares", 0)
    cfg = _config(ap.parse_args([*base, "--no-full-res", "--fit-min", "1.2", "--score-scale",
                                 "none", "--anchor-view", "crop"]))
    assert (cfg.full_res, cfg.fit_min, cfg.score_scale, cfg.anchor_view) == \
        (False, 1.2, None, "crop")
    saved = LRConfig.cpu(world="random", K=2, tau=0.5, device="cuda:3", proposals="squares")
    (tmp_path / "result.json").write_text(json.dumps({"lrlib": "x", "config": saved.to_dict()}))
    cfg = _config(ap.parse_args(["edit", "x.png", "--prompt", "p", "--config",
                                 str(tmp_path / "result.json"), "--M", "3"]))
    assert cfg == saved.replace(M=3, device="cpu")          # the machine's device is not reused
    with pytest.raises(LRError, match="--fit-min 'abc'"):
        _config(ap.parse_args([*base, "--fit-min", "abc"]))
