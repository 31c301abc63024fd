"""Activation sizes of the real editors' UNet and VAE on the CPU, random weights, fp32: the growth
of the process's resident memory during one call at 256 and 512 px (lrlib/README.md, "Memory").

    OMP_NUM_THREADS=1 python tools/activation_sizes.py sd2      # or sdxl
"""
import gc
import sys
import time

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel

from lrlib.bench.smoke import SD2_UNET, SD_VAE, SDXL_UNET, SDXL_VAE, PeakRSS, release_memory


def growth_gb(fn) -> float:
    """Peak resident memory during fn() above what was resident before it, GiB."""
    gc.collect()
    base = release_memory()
    with torch.no_grad(), PeakRSS() as m:
        fn()
    return m.peak_gb - base


def main(family: str) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    vae_cfg, unet_cfg, ctx = (SD_VAE, SD2_UNET, 1024) if family == "sd2" else (SDXL_VAE, SDXL_UNET, 2048)
    vae = AutoencoderKL(**vae_cfg).eval()
    for r in (256, 512):
        z = torch.randn(1, 4, r // 8, r // 8)                              # (1, 4, r/8, r/8)
        t = time.time()
        g = growth_gb(lambda: vae.decode(z))
        print(f"{family} VAE decode 1 image at {r} px fp32: +{g:.2f} GB ({time.time() - t:.0f} s)",
              flush=True)
    vae = None                                                             # free it
    unet = UNet2DConditionModel(**unet_cfg).eval()
    for r in (256, 512):
        x, e = torch.randn(2, 9, r // 8, r // 8), torch.randn(2, 77, ctx)  # guidance: batch 2
        kw = {} if family == "sd2" else dict(added_cond_kwargs={
            "text_embeds": torch.randn(2, 1280), "time_ids": torch.randn(2, 6)})
        t = time.time()
        g = growth_gb(lambda: unet(x, 10, encoder_hidden_states=e, **kw))
        print(f"{family} UNet batch 2 (one image with guidance) at {r} px fp32: +{g:.2f} GB "
              f"({time.time() - t:.0f} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "sd2")
