"""The peers: regions a user could pick instead of learned ones, built from the same toy models.

Each peer turns one (image, caption, prompt) into one box; the benchmark then makes one edit in
it with the same editor and grades it with the same judge as lrlib's rows. No learning.

* DiffEdit-style (Couairon et al. 2022). Noise the image's latent z to step t, ask the editor's
  own UNet for the noise under the prompt and under the caption, and average over n draws:

      D(p) = 1/n sum_i | eps(z_t^i, t, prompt) - eps(z_t^i, t, caption) |   (mean over channels)

  where the two texts disagree is the object to change. D is upsampled to pixels and scaled to
  [0, 1]; the region is the blob of {D >= level} around its peak (the UNet is an inpainting
  one: it sees the whole image masked, i.e. it predicts from z_t and the text alone).
* CLIPSeg idea (Lueddecke & Ecker 2022, here without its trained decoder, as MaskCLIP): CLIP's
  patch tokens, through the final norm and projection, against the caption's text embedding,

      G(p) = cos(proj(ln(token_p)), E_T(caption))

  upsampled; the blob of {G >= level} around its peak.
* DINO attention box: the head-averaged [CLS] attention A upsampled; the blob of {A >= level}
  around the top anchor (the paper's first anchor).

`level` is a fraction between the map's minimum (0) and maximum (1); the box is the blob's tight
box (`lrlib.additions.fitted.blob_box`).
"""
from __future__ import annotations

import torch

from lrlib.additions.fitted import blob_box, upsample

LEVEL = 0.5  # every peer: the blob of the map above half way from its minimum to its maximum


def _peak_box(m: torch.Tensor, level: float = LEVEL) -> list[int]:
    """The blob box of an (H, W) map at `level` (0..1 of its range) around its maximum."""
    m = m.float()
    m = (m - m.min()) / (m.max() - m.min()).clamp(min=1e-12)
    y, x = divmod(int(torch.argmax(m)), m.shape[1])
    return blob_box(m, (x, y), level)


@torch.no_grad()
def diffedit_map(editor, x: torch.Tensor, prompt: str, caption: str, seed: int, n: int = 4,
                 t_frac: float = 0.5) -> torch.Tensor:
    """(1, 3, H, W) image -> (H, W) D above (SD editors only)."""
    pipe = editor.pipe
    H, W = x.shape[-2:]
    R = editor.resolution
    dev, dtype = pipe.unet.device, pipe.unet.dtype
    img = torch.nn.functional.interpolate(x.float(), size=(R, R), mode="bilinear",
                                          antialias=True, align_corners=False) * 2 - 1
    vae = pipe.vae
    sf = vae.config.scaling_factor
    z0 = vae.encode(img.to(dev, dtype)).latent_dist.mean * sf
    blank = vae.encode(torch.zeros_like(img).to(dev, dtype)).latent_dist.mean * sf
    mask = torch.ones_like(z0[:, :1])
    cond, _ = editor.encode_prompts([prompt, caption])
    sched = pipe.scheduler
    sched.set_timesteps(sched.config.num_train_timesteps)
    t = torch.tensor([int(t_frac * (sched.config.num_train_timesteps - 1))], device=dev)
    gen = torch.Generator().manual_seed(seed)
    D = torch.zeros(z0.shape[-2:], device=dev)
    for _ in range(n):
        noise = torch.randn(z0.shape, generator=gen).to(dev, dtype)
        zt = sched.add_noise(z0, noise, t)
        inp = torch.cat([zt, mask, blank], 1).expand(2, -1, -1, -1)
        eps = pipe.unet(inp, t.expand(2), encoder_hidden_states=cond.to(dtype)).sample
        D += (eps[0] - eps[1]).abs().mean(0).float()
    return upsample(D.cpu() / n, H, W)


@torch.no_grad()
def clipseg_map(clip, x: torch.Tensor, caption: str) -> torch.Tensor:
    """(1, 3, H, W) image -> (H, W) G above."""
    visual = clip.model.visual
    H, W = x.shape[-2:]
    old = visual.output_tokens
    visual.output_tokens = True
    try:
        dtype = next(clip.model.parameters()).dtype
        _, tokens = visual(clip._prep(x).to(dtype))
    finally:
        visual.output_tokens = old
    tok = torch.nn.functional.normalize((tokens[0] @ visual.proj).float(), dim=-1)   # (N, E)
    g = int(round(tok.shape[0] ** 0.5))
    G = (tok @ clip.encode_text([caption])[0].to(tok)).view(g, g)
    return upsample(G.cpu(), H, W)


def dino_map(attn_mean: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """(h, w) head-averaged attention -> (H, W)."""
    return upsample(attn_mean.cpu(), H, W)


def peer_boxes(p, models, cfg) -> dict[str, list[int]]:
    """{peer name: box} for a Prepared edit p (lrlib.pipeline.prepare)."""
    H, W = p.x.shape[-2:]
    out = {"DINO attention box": _peak_box(dino_map(p.attn.mean(0), H, W)),
           "CLIPSeg-style mask": _peak_box(clipseg_map(models.clip, p.x, p.caption))}
    if models.editor.kind == "sd":
        out["DiffEdit-style mask"] = _peak_box(diffedit_map(models.editor, p.x, p.prompt,
                                                            p.caption, cfg.seed))
    return out


PEERS = ("DiffEdit-style mask", "CLIPSeg-style mask", "DINO attention box")
