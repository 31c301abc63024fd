"""The command line and the resumable batch run (official jobs format)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from lrlib.cli import main, read_jobs, run_batch
from lrlib.config import LRConfig
from lrlib.errors import LRError

CFG = LRConfig.cpu(world="random", progress=False, epochs=1, iters_per_epoch=2, K=2, M=3)


@pytest.fixture(scope="module")
def random_cache(tmp_path_factory):
    d = tmp_path_factory.mktemp("lrcache")
    old = os.environ.get("LRLIB_CACHE")
    os.environ["LRLIB_CACHE"] = str(d)
    yield d
    if old is None:
        os.environ.pop("LRLIB_CACHE")
    else:
        os.environ["LRLIB_CACHE"] = old


def write_images(folder, names):
    rng = np.random.RandomState(0)
    for n in names:
        Image.fromarray((rng.rand(64, 64, 3) * 255).astype(np.uint8)).save(folder / n)


def test_jobs_file_errors(tmp_path):
    p = tmp_path / "jobs.json"
    with pytest.raises(LRError, match="does not exist"):
        read_jobs(p)
    p.write_text("{not json")
    with pytest.raises(LRError, match="not valid JSON"):
        read_jobs(p)
    p.write_text(json.dumps({"a.png": "just a prompt"}))
    with pytest.raises(LRError, match=r"\[caption, prompt\]"):
        read_jobs(p)


def test_batch_skips_finished_and_reports_bad_jobs(tmp_path, random_cache):
    write_images(tmp_path, ["a.png", "b.png"])
    jobs = {"a.png": ["red circle", "a blue square"], "b.png": ["", "a green star"],
            "c.png": ["cat", "a dog"]}                       # b: empty caption, c: no file
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    out = tmp_path / "out"
    s1 = run_batch(tmp_path / "jobs.json", out_dir=out, cfg=CFG, progress=False)
    assert s1["a.png"] == "done"
    assert s1["b.png"].startswith("error") and "caption is empty" in s1["b.png"]
    assert s1["c.png"].startswith("error") and "does not exist" not in s1["c.png"]
    assert "--images" in s1["c.png"]
    assert sorted(p.name for p in out.iterdir()) == ["a_png"]
    stamp = (out / "a_png" / "result.json").stat().st_mtime_ns
    jobs["b.png"][0] = "noise"
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    s2 = run_batch(tmp_path / "jobs.json", out_dir=out, cfg=CFG, progress=False)
    assert s2["a.png"] == "skipped" and s2["b.png"] == "done"
    assert (out / "a_png" / "result.json").stat().st_mtime_ns == stamp


def test_batch_shards_split_the_jobs(tmp_path, random_cache):
    names = [f"{i}.png" for i in range(4)]
    write_images(tmp_path, names)
    (tmp_path / "jobs.json").write_text(json.dumps({n: ["noise", "a red circle"] for n in names}))
    s0 = run_batch(tmp_path / "jobs.json", out_dir=tmp_path / "o", cfg=CFG, shard=(0, 2), progress=False)
    s1 = run_batch(tmp_path / "jobs.json", out_dir=tmp_path / "o", cfg=CFG, shard=(1, 2), progress=False)
    assert sorted([*s0, *s1]) == sorted(names) and not set(s0) & set(s1) and len(s0) == 2


def test_cli_edit_subprocess(tmp_path, random_cache):
    """A real CLI run; the input is a 2-frame GIF, so the user is told (in one line, no Python
    warning source) which frame is edited."""
    write_images(tmp_path, ["in.png"])
    frames = [Image.open(tmp_path / "in.png"), Image.new("RGB", (64, 64))]
    frames[0].save(tmp_path / "in.gif", save_all=True, append_images=frames[1:])
    env = dict(os.environ, LRLIB_CACHE=str(random_cache))
    r = subprocess.run([sys.executable, "-m", "lrlib", "edit", str(tmp_path / "in.gif"), "--prompt",
                        "a blue square", "--caption", "noise", "--cpu", "--K", "2", "--M", "3",
                        "--epochs", "1", "--out", str(tmp_path / "o")], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "best anchor" in r.stdout and (tmp_path / "o" / "final.png").exists()
    assert "warning: the image has 2 frames (animated or multi-page); only frame 0" in r.stderr
    assert "UserWarning" not in r.stderr and "Traceback" not in r.stderr
    bad = subprocess.run([sys.executable, "-m", "lrlib", "edit", str(tmp_path / "in.png"), "--prompt",
                          " ", "--cpu"], env=env, capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "prompt is empty" in bad.stderr


def test_cli_rejects_impossible_K(tmp_path, capsys):
    write_images(tmp_path, ["in.png"])
    assert main(["edit", str(tmp_path / "in.png"), "--prompt", "x", "--cpu", "--K", "0"]) == 2
    assert "K=0" in capsys.readouterr().err


def test_batch_across_two_processes_with_accelerate(tmp_path, random_cache):
    """`accelerate launch` with 2 processes splits the jobs; every result written once; a rerun
    after a kill (here: one result deleted, one partial folder left) redoes only what is missing."""
    from lrlib.worlds.random_world import random_world
    random_world(("dino", "clip", "sd"))                       # built once, before the launch
    names = [f"{i}.png" for i in range(4)]
    write_images(tmp_path, names)
    (tmp_path / "jobs.json").write_text(json.dumps({n: ["noise", "a red circle"] for n in names}))
    accelerate = os.path.join(os.path.dirname(sys.executable), "accelerate")
    cmd = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "lrlib", "batch",
           str(tmp_path / "jobs.json"), "--out", str(tmp_path / "o"), "--cpu", "--K", "2",
           "--M", "3", "--epochs", "1"]
    env = dict(os.environ, LRLIB_CACHE=str(random_cache), OMP_NUM_THREADS="1")
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["0_png", "1_png", "2_png", "3_png"]
    assert r.stdout.count(": done") == 4                      # each job done by one process
    import shutil
    shutil.rmtree(tmp_path / "o" / "2_png")
    (tmp_path / "o" / ".3_png.partial-dead").mkdir()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count(": done") == 1 and r.stdout.count(": skipped") == 3


# --- batch identity, staleness, outputs, model failures (issues 9 and 12) ---------------------

TINY = LRConfig.cpu(world="random", K=1, M=2, epochs=1, iters_per_epoch=1, steps=1, progress=False)
TINY_FLAGS = ["--cpu", "--K", "1", "--M", "2", "--epochs", "1", "--steps", "1"]


def jobs_file(folder, jobs, name="jobs.json"):
    (folder / name).write_text(json.dumps(jobs))
    return folder / name


@pytest.fixture
def count_model_loads(monkeypatch):
    """Counts load_models calls; fails the load when `fail` is set (a model that cannot load)."""
    import lrlib.models
    from lrlib.errors import CheckpointUnavailableError
    real, calls = lrlib.models.load_models, []

    def load(cfg, *a, **k):
        calls.append(cfg)
        if load.fail:
            raise CheckpointUnavailableError("Could not load the DINO checkpoint 'x': offline.")
        return real(cfg, *a, **k)
    load.fail = False
    monkeypatch.setattr(lrlib.models, "load_models", load)
    load.calls = calls
    return load


def test_same_stem_jobs_get_their_own_folders(tmp_path, random_cache):
    """Bug: a.png and a.jpg shared the folder 'a': the second was 'skipped', its result lost."""
    write_images(tmp_path, ["a.png", "a.jpg"])
    s = run_batch(jobs_file(tmp_path, {"a.png": ["noise", "a red circle"],
                                       "a.jpg": ["noise", "a blue square"]}),
                  out_dir=tmp_path / "o", cfg=TINY, progress=False)
    assert s == {"a.jpg": "done", "a.png": "done"}
    for name, folder in (("a.png", "a_png"), ("a.jpg", "a_jpg")):
        meta = json.loads((tmp_path / "o" / folder / "result.json").read_text())
        assert meta["input"]["file"] == name


def test_jobs_that_would_share_a_folder_are_refused_up_front(tmp_path, count_model_loads):
    """Names that map to one folder (here or on a case-insensitive disk) are refused before
    anything runs, rather than one result overwriting the other."""
    for pair in (["a.png", "a_png"], ["A.png", "a.png"]):
        with pytest.raises(LRError, match="share the result folder"):
            run_batch(jobs_file(tmp_path, {n: ["x", "y"] for n in pair}), out_dir=tmp_path / "o",
                      cfg=TINY, progress=False)
    assert not count_model_loads.calls and not (tmp_path / "o").exists()


def test_changed_job_is_redone_and_says_what_changed(tmp_path, random_cache):
    """Bug: a rerun after the jobs file changed (same image, new prompt) kept the old result and
    called it 'skipped'. result.json records the image (name, sha256), caption, prompt, config."""
    write_images(tmp_path, ["a.png"])
    out, jobs = tmp_path / "o", {"a.png": ["noise", "a red circle"]}
    assert run_batch(jobs_file(tmp_path, jobs), out_dir=out, cfg=TINY, progress=False) == {"a.png": "done"}
    meta = json.loads((out / "a_png" / "result.json").read_text())
    assert meta["prompt"] == "a red circle" and meta["caption"] == "noise" and len(meta["input"]["sha256"]) == 64
    assert run_batch(tmp_path / "jobs.json", out_dir=out, cfg=TINY, progress=False) == {"a.png": "skipped"}
    jobs["a.png"][1] = "a green star"
    s = run_batch(jobs_file(tmp_path, jobs), out_dir=out, cfg=TINY, progress=False)
    assert s == {"a.png": "redone (prompt changed)"}
    assert json.loads((out / "a_png" / "result.json").read_text())["prompt"] == "a green star"
    Image.new("RGB", (64, 64), (200, 10, 10)).save(tmp_path / "a.png")       # same name, new pixels
    s = run_batch(tmp_path / "jobs.json", out_dir=out, cfg=TINY, progress=False)
    assert s == {"a.png": "redone (input changed)"}
    s = run_batch(tmp_path / "jobs.json", out_dir=out, cfg=TINY.replace(seed=3, progress=True), progress=False)
    assert s == {"a.png": "redone (config.seed changed)"}                    # progress does not count
    assert sorted(p.name for p in out.iterdir()) == ["a_png"]                # nothing left aside


def test_batch_out_file_is_refused_before_anything(tmp_path, capsys, count_model_loads):
    """Bug: `batch --out FILE` crashed with a traceback (and aborted the whole batch)."""
    write_images(tmp_path, ["a.png"])
    out = tmp_path / "results.txt"
    out.write_text("mine")
    with pytest.raises(LRError, match="is a file"):
        run_batch(jobs_file(tmp_path, {"a.png": ["x", "y"]}), out_dir=out, cfg=TINY, progress=False)
    assert main(["batch", str(tmp_path / "jobs.json"), "--out", str(out), *TINY_FLAGS]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert out.read_text() == "mine" and not count_model_loads.calls


def test_one_jobs_output_problem_fails_only_that_job(tmp_path, random_cache):
    """A job whose folder holds the user's own files fails (nothing deleted); the others run."""
    write_images(tmp_path, ["a.png", "b.png"])
    (tmp_path / "o" / "a_png").mkdir(parents=True)
    (tmp_path / "o" / "a_png" / "mine.txt").write_text("keep")
    s = run_batch(jobs_file(tmp_path, {"a.png": ["x", "a red circle"], "b.png": ["x", "a cat"]}),
                  out_dir=tmp_path / "o", cfg=TINY, progress=False)
    assert s["a.png"].startswith("error") and "did not write (mine.txt)" in s["a.png"]
    assert s["b.png"] == "done"
    assert sorted(p.name for p in (tmp_path / "o" / "a_png").iterdir()) == ["mine.txt"]


def test_batch_stops_at_the_first_model_failure(tmp_path, capsys, count_model_loads):
    """Bug caught: models that cannot load retried for every job (~50 s each)."""
    write_images(tmp_path, ["a.png", "b.png", "c.png"])
    jobs = jobs_file(tmp_path, {n: ["x", "a cat"] for n in ("a.png", "b.png", "c.png")})
    count_model_loads.fail = True
    with pytest.raises(LRError, match="stopped before its first edit.*DINO"):
        run_batch(jobs, out_dir=tmp_path / "o", cfg=TINY, progress=False)
    assert len(count_model_loads.calls) == 1
    assert main(["batch", str(jobs), "--out", str(tmp_path / "o"), *TINY_FLAGS]) == 2
    assert len(count_model_loads.calls) == 2 and "Traceback" not in capsys.readouterr().err
    assert list((tmp_path / "o").iterdir()) == []                             # no claim left


def test_official_layout_and_missing_images_before_models(tmp_path, random_cache, count_model_loads):
    """Bug caught: with images.json beside images/ the images were looked for beside the
    jobs file, and each job failed only after the models were loaded."""
    (tmp_path / "images").mkdir()
    write_images(tmp_path / "images", ["a.png"])
    jobs = jobs_file(tmp_path, {"a.png": ["noise", "a red circle"]}, "images.json")
    assert run_batch(jobs, out_dir=tmp_path / "o", cfg=TINY, progress=False) == {"a.png": "done"}
    count_model_loads.calls.clear()
    jobs = jobs_file(tmp_path, {"x.png": ["a", "b"], "y.png": ["a", "b"]}, "other.json")
    s = run_batch(jobs, out_dir=tmp_path / "o2", cfg=TINY, progress=False)
    assert all(v.startswith("error") and "--images" in v and "images" in v for v in s.values())
    assert not count_model_loads.calls                                        # checked first


def test_unreadable_image_fails_its_job_before_the_models(tmp_path, count_model_loads):
    (tmp_path / "bad.png").write_text("not an image")
    s = run_batch(jobs_file(tmp_path, {"bad.png": ["a", "b"]}), out_dir=tmp_path / "o",
                  cfg=TINY, progress=False)
    assert "could not read" in s["bad.png"] and not count_model_loads.calls


def test_claims_live_and_dead(tmp_path, random_cache):
    """A job claimed by a live process is left to it (and says so); a claim whose process died
    is taken over, and the claim file is gone once the job is done."""
    import socket
    write_images(tmp_path, ["a.png", "b.png"])
    out = tmp_path / "o"
    out.mkdir()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True)
    try:
        host = socket.gethostname()
        (out / ".a_png.claim").write_text(json.dumps({"pid": live.pid, "host": host, "time": 0}))
        (out / ".b_png.claim").write_text(json.dumps({"pid": int(dead.stdout), "host": host, "time": 0}))
        s = run_batch(jobs_file(tmp_path, {"a.png": ["x", "a cat"], "b.png": ["x", "a dog"]}),
                      out_dir=out, cfg=TINY, progress=False)
    finally:
        live.kill()
        live.wait()
    assert s["a.png"].startswith(f"claimed by pid {live.pid} on {host}") and s["b.png"] == "done"
    assert sorted(p.name for p in out.iterdir()) == [".a_png.claim", "b_png"]
    s = run_batch(tmp_path / "jobs.json", out_dir=out, cfg=TINY, progress=False)   # holder died
    assert s == {"a.png": "done", "b.png": "skipped"}
    assert sorted(p.name for p in out.iterdir()) == ["a_png", "b_png"]


def test_two_batch_processes_share_the_jobs(tmp_path, random_cache):
    """Bug: two `batch` processes on one output folder (no shards) computed every job twice.
    Two real processes now claim jobs: each job runs exactly once."""
    from lrlib.worlds.random_world import random_world
    random_world(("dino", "clip", "sd"))                       # built once, before the launch
    names = [f"{i}.png" for i in range(6)]
    write_images(tmp_path, names)
    jobs = jobs_file(tmp_path, {n: ["noise", "a red circle"] for n in names})
    env = dict(os.environ, LRLIB_CACHE=str(random_cache), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "lrlib", "batch", str(jobs), "--out", str(tmp_path / "o"), *TINY_FLAGS]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    done = [{ln.split(":")[0] for ln in o[0].splitlines() if ln.endswith(": done")} for o in outs]
    assert done[0] | done[1] == set(names) and not done[0] & done[1], outs[0][0] + outs[1][0]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [n.replace(".", "_") for n in names]


# --- the edit command: box in the input's pixels, phone photos upright, model flags ----------

def test_cli_prints_the_box_in_the_input_images_pixels(tmp_path, capsys, random_cache):
    """Bug caught: the CLI printing the box in working-resolution pixels without saying so."""
    img = tmp_path / "in.png"
    Image.fromarray((np.random.RandomState(1).rand(96, 128, 3) * 255).astype(np.uint8)).save(img)
    assert main(["edit", str(img), "--prompt", "a cat", "--out", str(tmp_path / "o"), *TINY_FLAGS]) == 0
    out = capsys.readouterr().out
    meta = json.loads((tmp_path / "o" / "result.json").read_text())
    assert f"box {meta['best_box_image']} (x0, y0, x1, y1 in the input image's pixels)" in out
    assert meta["best_box_image"] != meta["best_box"]          # 128x96 input, 64 px working size


def test_cli_edits_a_phone_photo_upright(tmp_path, random_cache):
    """Bug caught: EXIF orientation ignored, so the edit is saved sideways."""
    exif = Image.Exif()
    exif[0x0112] = 6                                          # view = turned 90 degrees clockwise
    Image.new("RGB", (96, 64), (90, 120, 200)).save(tmp_path / "phone.png", exif=exif)
    assert main(["edit", str(tmp_path / "phone.png"), "--prompt", "a cat", "--out",
                 str(tmp_path / "o"), *TINY_FLAGS]) == 0
    assert Image.open(tmp_path / "o" / "final.png").size == (64, 96)


@pytest.mark.parametrize("flag", ["--dino", "--clip", "--sd-model", "--maskgit-model"])
def test_model_flags_and_the_offline_error_a_cli_user_can_act_on(tmp_path, monkeypatch, capsys,
                                                                 tiny_dirs, flag):
    """Bug: the offline error said `LRConfig(dino='path/to/folder')`, which a CLI user cannot
    type, and the CLI had no flag to choose a model. Each model gets a flag (a folder here); a
    missing one fails with an error naming that flag."""
    img = tmp_path / "in.png"
    Image.new("RGB", (64, 64)).save(img)
    given = {"--dino": tiny_dirs["dino"], "--clip": tiny_dirs["clip"], "--sd-model": tiny_dirs["sd"],
             "--maskgit-model": tiny_dirs["maskgit"]}
    given[flag] = str(tmp_path / "missing")
    argv = ["edit", str(img), "--prompt", "a cat", "--out", str(tmp_path / "o"), "--world", "real",
            *TINY_FLAGS,
            "--editor", "maskgit" if flag == "--maskgit-model" else "sd"]
    argv += [a for k, v in given.items() for a in (k, str(v))]
    with pytest.warns(UserWarning, match="real checkpoints on the CPU"):
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Could not load") and str(tmp_path / "missing") in err
    assert f"{flag} path/to/folder" in err and "Traceback" not in err
