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
    assert s1["c.png"].startswith("error") and "does not exist" in s1["c.png"]
    assert sorted(p.name for p in out.iterdir()) == ["a"]
    stamp = (out / "a" / "result.json").stat().st_mtime_ns
    # a run killed while writing leaves only a hidden partial folder; the rerun redoes that job
    (out / ".b.partial-xyz").mkdir()
    jobs["b.png"][0] = "noise"
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    s2 = run_batch(tmp_path / "jobs.json", out_dir=out, cfg=CFG, progress=False)
    assert s2["a.png"] == "skipped" and s2["b.png"] == "done"
    assert (out / "a" / "result.json").stat().st_mtime_ns == stamp


def test_batch_shards_split_the_jobs(tmp_path, random_cache):
    names = [f"{i}.png" for i in range(4)]
    write_images(tmp_path, names)
    (tmp_path / "jobs.json").write_text(json.dumps({n: ["noise", "a red circle"] for n in names}))
    s0 = run_batch(tmp_path / "jobs.json", out_dir=tmp_path / "o", cfg=CFG, shard=(0, 2), progress=False)
    s1 = run_batch(tmp_path / "jobs.json", out_dir=tmp_path / "o", cfg=CFG, shard=(1, 2), progress=False)
    assert sorted([*s0, *s1]) == sorted(names) and not set(s0) & set(s1) and len(s0) == 2


def test_cli_edit_subprocess(tmp_path, random_cache):
    write_images(tmp_path, ["in.png"])
    env = dict(os.environ, LRLIB_CACHE=str(random_cache))
    r = subprocess.run([sys.executable, "-m", "lrlib", "edit", str(tmp_path / "in.png"), "--prompt",
                        "a blue square", "--caption", "noise", "--cpu", "--K", "2", "--M", "3",
                        "--epochs", "1", "--out", str(tmp_path / "o")], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "best anchor" in r.stdout and (tmp_path / "o" / "final.png").exists()
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
    from lrlib.tiny import random_world
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
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["0", "1", "2", "3"]
    assert r.stdout.count(": done") == 4                      # each job done by one process
    import shutil
    shutil.rmtree(tmp_path / "o" / "2")
    (tmp_path / "o" / ".3.partial-dead").mkdir()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count(": done") == 1 and r.stdout.count(": skipped") == 3
