"""Stage 4: the losses that train the RGN (through the edited image, never through the editor).

With x the source image, e an edited image, t the prompt, c the source caption, E_I / E_T the CLIP
image / text embeddings (unit vectors) and aug_v random crops-and-flips (v = 1..V):

    L_clip = 1/V sum_v [1 - cos(E_I(aug_v(e)), E_T(t))]                           (CLIP guidance)
    L_dir  = 1 - cos(E_I(e) - E_I(x), E_T(t) - E_T(c))                             (directional)
    L_str  = 1/N^2 || S(e) - S(x) ||_F^2,  S(z)_ab = cos(k_a(z), k_b(z))          (structure)
    L      = lambda_C L_clip + lambda_S L_str + lambda_D L_dir                     (paper: 1, 1, 1)

L_str compares token self-similarity matrices (Splicing ViT Features, Tumanyan et al. 2022): by
default the keys k of DINO's last block, or (structure="clip") the CLIP visual tokens entering
the last block, as the official code does. Identical images give L_str = 0 exactly.
Without a caption c, L_dir uses `default_caption` ("a photo").

Everything about x, t and c is computed once per edit, `embed(...) -> Embeddings`, and that one
object feeds both `edit_loss` here and the quality score (lrlib.scoring); the weights lambda are
arguments of each call (the ablations of the benchmark pass other values, nothing is mutated).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lrlib.anchors import Dino
from lrlib.clip import Clip


def augment(x: torch.Tensor, n: int, generator: torch.Generator, scale=(0.7, 1.0)) -> torch.Tensor:
    """n random crops (area fraction in `scale`) with random horizontal flips of each image,
    differentiable (affine grid sampling). (B, 3, H, W) -> (n * B, 3, H, W), views grouped by v."""
    B = x.shape[0]
    s = torch.empty(n, B).uniform_(*scale, generator=generator).sqrt()           # side fraction
    tx = (torch.rand(n, B, generator=generator) * 2 - 1) * (1 - s)
    ty = (torch.rand(n, B, generator=generator) * 2 - 1) * (1 - s)
    flip = torch.where(torch.rand(n, B, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, B, 2, 3)
    theta[..., 0, 0], theta[..., 0, 2] = s * flip, tx
    theta[..., 1, 1], theta[..., 1, 2] = s, ty
    theta = theta.reshape(n * B, 2, 3).to(x)
    grid = F.affine_grid(theta, [n * B, *x.shape[1:]], align_corners=False)
    return F.grid_sample(x.repeat(n, 1, 1, 1), grid, mode="bilinear", padding_mode="reflection",
                         align_corners=False)


def self_similarity(tokens: torch.Tensor) -> torch.Tensor:
    """(B, N, D) -> (B, N, N) cosine self-similarity S_ab = cos(k_a, k_b)."""
    z = F.normalize(tokens.float(), dim=-1)
    return z @ z.transpose(1, 2)


def L_clip(E_I_views: torch.Tensor, E_T: torch.Tensor, n: int) -> torch.Tensor:
    """(n * B, E) view embeddings, (E,) prompt -> (B,) mean over views of 1 - cos."""
    cos = (E_I_views @ E_T).view(n, -1)
    return (1 - cos).mean(0)


def L_dir(E_I_edit: torch.Tensor, E_I_src: torch.Tensor, E_T_prompt: torch.Tensor,
          E_T_caption: torch.Tensor) -> torch.Tensor:
    """(B, E) edited, (E,) source, (E,) prompt, (E,) caption -> (B,) 1 - cos(dI, dT).

    An edit that moves the image the way the text moves gives ~0; the opposite way ~2; no change
    at all gives 1 (cos of a zero vector is 0).
    """
    dI = E_I_edit - E_I_src
    dT = (E_T_prompt - E_T_caption).expand_as(dI)
    return 1 - F.cosine_similarity(dI, dT, dim=-1, eps=1e-8)


def L_str(S_edit: torch.Tensor, S_src: torch.Tensor) -> torch.Tensor:
    """(B, N, N), (1 or B, N, N) self-similarities -> (B,) mean squared difference."""
    return ((S_edit - S_src) ** 2).mean((1, 2))


@dataclass(frozen=True)
class Embeddings:
    """The fixed side of one edit, computed once (`embed`) and read by the losses and the ranking."""
    E_T: torch.Tensor            # (E,) prompt t
    E_T_caption: torch.Tensor    # (E,) caption c
    E_I_src: torch.Tensor        # (E,) source image x
    S_src: torch.Tensor          # (1, N, N) structure self-similarity S(x)
    structure: str               # which tokens S is built from: "dino" or "clip"


def structure_of(z: torch.Tensor, clip: Clip, dino: Dino | None, structure: str) -> torch.Tensor:
    """S(z) (B, N, N): self-similarity of DINO's last-block keys, or of CLIP's last-block tokens."""
    if structure == "dino":
        return self_similarity(dino(z).keys)
    return self_similarity(clip.tokens(z))


def embed(clip: Clip, dino: Dino | None, x: torch.Tensor, prompt: str, caption: str,
          structure: str = "dino") -> Embeddings:
    """E_T(t), E_T(c), E_I(x) and S(x) of a source x (1, 3, H, W), without gradient."""
    with torch.no_grad():
        T = clip.encode_text([prompt, caption])
        return Embeddings(E_T=T[0], E_T_caption=T[1], E_I_src=clip.encode_image(x)[0],
                          S_src=structure_of(x, clip, dino, structure), structure=structure)


def edit_loss(e: torch.Tensor, generator: torch.Generator, *, emb: Embeddings, clip: Clip,
              dino: Dino | None, lambda_clip: float = 1.0, lambda_str: float = 1.0,
              lambda_dir: float = 1.0, n_aug: int = 4) -> dict[str, torch.Tensor]:
    """L of edited images e (B, 3, H, W) against one edit's `emb`: dict of (B,) tensors L_clip,
    L_dir, L_str and L. L_str is not computed (zeros) when lambda_str = 0."""
    views = augment(e, n_aug, generator)
    out = {"L_clip": L_clip(clip.encode_image(views), emb.E_T, n_aug),
           "L_dir": L_dir(clip.encode_image(e), emb.E_I_src, emb.E_T, emb.E_T_caption)}
    out["L_str"] = (L_str(structure_of(e, clip, dino, emb.structure), emb.S_src) if lambda_str
                    else torch.zeros_like(out["L_dir"]))
    out["L"] = lambda_clip * out["L_clip"] + lambda_str * out["L_str"] + lambda_dir * out["L_dir"]
    return out
