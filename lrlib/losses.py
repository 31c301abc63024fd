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
"""
from __future__ import annotations

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


class EditLoss(torch.nn.Module):
    """The total loss for one source image x and one prompt, with the fixed parts cached.

    Call with edited images (B, 3, H, W) -> dict of (B,) tensors: L_clip, L_dir, L_str, L.
    """

    def __init__(self, clip: Clip, dino: Dino | None, x: torch.Tensor, prompt: str, caption: str,
                 lambda_clip=1.0, lambda_str=1.0, lambda_dir=1.0, n_aug=4, structure="dino"):
        super().__init__()
        self.clip, self.dino, self.n_aug, self.structure = clip, dino, n_aug, structure
        self.lam = dict(clip=lambda_clip, str=lambda_str, dir=lambda_dir)
        with torch.no_grad():
            T = clip.encode_text([prompt, caption])
            self.E_T, self.E_T_caption = T[0], T[1]
            self.E_I_src = clip.encode_image(x)[0]
            self.S_src = self._selfsim(x)

    def _selfsim(self, z: torch.Tensor) -> torch.Tensor:
        if self.structure == "dino":
            return self_similarity(self.dino(z).keys)
        return self_similarity(self.clip.tokens(z))

    def forward(self, e: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        out = {}
        views = augment(e, self.n_aug, generator)
        out["L_clip"] = L_clip(self.clip.encode_image(views), self.E_T, self.n_aug)
        out["L_dir"] = L_dir(self.clip.encode_image(e), self.E_I_src, self.E_T, self.E_T_caption)
        out["L_str"] = L_str(self._selfsim(e), self.S_src) if self.lam["str"] else torch.zeros_like(out["L_dir"])
        out["L"] = (self.lam["clip"] * out["L_clip"] + self.lam["str"] * out["L_str"]
                    + self.lam["dir"] * out["L_dir"])
        return out
