import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from lrlib.errors import CheckpointUnavailableError
from lrlib.models import load_dino, pick_device


def test_tiny_models_round_trip_through_lrlib_loaders(tiny_dirs, dino, clip):
    """Saved with the libraries' own save functions, loaded back by lrlib like a hub checkpoint."""
    import timm
    ref = timm.create_model(f"local-dir:{tiny_dirs['dino']}", pretrained=True, num_classes=0)
    x = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(dino.vit.forward_features(x), ref.forward_features(x))
    assert dino.grid == (8, 8) and dino.patch == 8
    assert clip.image_size == (64, 64) and clip.encode_text(["a red circle"]).shape == (1, 32)
    assert load_dino(tiny_dirs["dino"]) is dino          # cached: no second load


def test_missing_folder_names_it_and_says_how_to_fix(tmp_path):
    missing = str(tmp_path / "no_such_model")
    with pytest.raises(CheckpointUnavailableError) as e:
        load_dino(missing)
    msg = str(e.value)
    assert missing in msg and "local folder" in msg and "toy" in msg


def test_offline_hub_ids_give_clear_errors(tmp_path):
    """With HF_HUB_OFFLINE=1 and an empty cache, every real checkpoint id fails with our message."""
    code = textwrap.dedent("""
        import json
        from lrlib.errors import CheckpointUnavailableError
        from lrlib.models import load_clip, load_dino
        from lrlib.editors.sd import StableDiffusionEditor
        from lrlib.editors.maskgit import MaskGITEditor
        out = {}
        for name, f in [("vit_base_patch16_224.dino", lambda: load_dino("vit_base_patch16_224.dino")),
                        ("ViT-B-16", lambda: load_clip("ViT-B-16", "openai")),
                        ("stabilityai/stable-diffusion-2-inpainting",
                         lambda: StableDiffusionEditor.from_pretrained("stabilityai/stable-diffusion-2-inpainting", device="cpu")),
                        ("amused/amused-256", lambda: MaskGITEditor.from_pretrained("amused/amused-256", device="cpu"))]:
            try:
                f(); out[name] = "loaded?!"
            except CheckpointUnavailableError as e:
                out[name] = str(e)
            except Exception as e:
                out[name] = "WRONG " + type(e).__name__ + ": " + str(e)
        print(json.dumps(out))
    """)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path), TORCH_HOME=str(tmp_path),
               XDG_CACHE_HOME=str(tmp_path))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    for name, msg in out.items():
        assert name in msg, (name, msg)
        assert "HF_HUB_OFFLINE" in msg and "local folder" in msg, msg
        assert not msg.startswith("WRONG") and msg != "loaded?!"


def test_no_gpu_where_one_is_asked_for():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the error path cannot happen here")
    from lrlib.errors import LRError
    with pytest.raises(LRError, match="no CUDA GPU"):
        pick_device("cuda")
    assert pick_device("auto").type == "cpu"
