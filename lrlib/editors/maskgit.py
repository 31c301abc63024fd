r"""# MaskGIT editor: text-driven inpainting by iterative masked-token prediction

An image $x$ is turned into a grid of discrete tokens by a VQ autoencoder, $z = Q(E(x))$,
$z \in \{0, \dots, K-1\}^{h \times w}$ with one token per $g \times g$ pixel cell ($g$ = `grid`).
A bidirectional transformer (aMUSEd's U-ViT) is trained to predict the tokens hidden behind a
special mask token $[M]$ from the visible ones and the text $c$:

$$p_\theta(z_i \mid z_{\bar M}, c) = \mathrm{softmax}(\ell_i),
  \qquad \ell = f_\theta(z_{\bar M}, c).$$

**Inpainting.** The tokens whose cell touches the region to repaint are set to $[M]$ (a token is
masked if *any* pixel of its cell is masked: `snap_mask` gives the pixels really repainted); the
$N$ masked tokens are then filled in $T$ steps (MaskGIT, Chang et al. 2022; Muse/aMUSEd).
At step $t = 0, \dots, T-1$:

1. **Predict** with classifier-free guidance (unconditional = the empty prompt),
   $\hat\ell = \ell_\varnothing + s\,(\ell_c - \ell_\varnothing)$ ($s$ = `guidance_scale`).
2. **Sample** every still-masked token, $\hat z_i \sim \mathrm{softmax}(\hat\ell_i / \tau_s)$
   ($\tau_s$ = `sample_temperature`); visible tokens are kept as they are.
3. **Score** each sampled token with its confidence plus annealed Gumbel noise,
   $$\mathrm{conf}_i = \log p(\hat z_i) + \tau_t\, g_i, \qquad g_i \sim \mathrm{Gumbel}(0, 1),$$
   $\tau_t$ going linearly from `temperature[0]` to `temperature[1]`; tokens that were not masked
   at this step get $\mathrm{conf} = +\infty$ (they are never re-masked).
4. **Re-mask** the least confident: keep
   $$n_t = \max\!\Big(1, \min\big(n_{t-1} - 1,
     \left\lfloor N \cdot \gamma\!\left(\tfrac{t+1}{T}\right) \right\rfloor\big)\Big), \qquad
     \gamma(r) = \cos\left(\tfrac{\pi}{2} r\right), \quad n_{-1} = N$$
   tokens masked (`mask_schedule`), and $n_{T-1} = 0$: every token is filled after $T$ steps.
   The clamp is MaskGIT's (and diffusers' `AmusedScheduler`'s): each step reveals at least one
   token and keeps at least one hidden for the next, so no step is wasted (few tokens, many
   steps) and the last step never has to fill a large remainder alone.

Tokens outside the mask are never changed; the grid is decoded by the VQ decoder,
$\hat x = D(\hat z)$, clipped to $[0, 1]$. Outside the mask $\hat x$ is only the VQ reconstruction
of the source (not bit-exact): lrlib composites `m * E + (1 - m) * x` itself.

**Text.** Exactly as aMUSEd (`lrlib.editors.prompts`, shared with the toy trainer): the
penultimate hidden states of a CLIP text encoder (with projection) are the cross-attention context
and its projected pooled embedding `text_embeds` the global condition, together with the
micro-conditions `[width, height, crop_top, crop_left, aesthetic]` = `[R, R, 0, 0, 6]` at working
resolution $R$. Prompts over 77 tokens go in 75-token chunks (hidden states concatenated, pooled
embeddings averaged by real tokens per chunk); a batch is padded to its longest prompt with the
empty prompt's chunk, which is also the unconditional context.

This is our own loop on diffusers' `VQModel` + `UVit2DModel` and transformers'
`CLIPTextModelWithProjection` + `CLIPTokenizer`, in the aMUSEd folder layout
(`vqvae/`, `transformer/`, `text_encoder/`, `tokenizer/`).
"""
from __future__ import annotations

import copy
import json
import math
import os
import re

import torch
import torch.nn.functional as F

from lrlib.editors.base import (EDITOR_DEFAULTS_FILE, Editor, EditorSettings, check_inpaint_args,
                                crop_resize, crop_windows, dtype_kwarg, paste_crops)
from lrlib.editors.prompts import PromptEncoder, micro_conds
from lrlib.errors import LRError, checkpoint_error
from lrlib.text import check_prompt


def mask_schedule(n_masked: int, steps: int) -> list[int]:
    r"""Number of tokens still masked after each step $t = 0..T-1$:
    $n_t = \max(1, \min(n_{t-1} - 1, \lfloor N \cos(\frac{\pi}{2} \frac{t+1}{T}) \rfloor))$,
    $n_{-1} = N$, and $n_{T-1} = 0$ (MaskGIT's clamp, as diffusers' `AmusedScheduler`);
    non-increasing; all zeros when nothing is masked."""
    if steps < 1:
        raise LRError(f"steps must be >= 1, got {steps}; aMUSEd uses 12.")
    n_t, prev = [], n_masked
    for t in range(steps - 1):
        cos_t = math.floor(n_masked * math.cos(math.pi / 2 * (t + 1) / steps))
        prev = max(1, min(prev - 1, cos_t)) if n_masked else 0
        n_t.append(prev)
    return n_t + [0]   # gamma(1) = cos(pi/2) = 0: the last step fills everything


def gumbel_noise(shape, generator: torch.Generator) -> torch.Tensor:
    """$g = -\\log(-\\log u)$, $u \\sim U(0, 1)$, drawn on the generator's device."""
    u = torch.rand(shape, generator=generator, device=generator.device, dtype=torch.float32)
    minus_log_u = (-torch.log(u.clamp_min(1e-20))).clamp_min(1e-20)
    return -torch.log(minus_log_u)


class MaskGITEditor(Editor):
    """MaskGIT/Muse inpainting on an aMUSEd checkpoint (see the module docstring).

    Options: `steps` $T$; `guidance_scale` $s$ (guidance on when > 1, as aMUSEd) (these two and
    `prompt_template` are the defaults of a call; `inpaint(..., settings=EditorSettings(...))`
    overrides them for that call);
    `temperature` the Gumbel-noise scale of the confidence, annealed linearly from
    `temperature[0]` to `temperature[1]` (a number `t` means `(t, 0)`); `sample_temperature`
    $\tau_s$ divides the logits before sampling (1 = aMUSEd); `resolution` the working size
    (default: see `default_resolution`); `prompt_template` e.g. `"a photo of {}"`.
    """

    kind = "maskgit"

    def __init__(self, vqvae, transformer, text_encoder, tokenizer, *, device=None, dtype=None,
                 steps: int = 12, guidance_scale: float = 10.0,
                 temperature: float | tuple[float, float] = (2.0, 0.0),
                 sample_temperature: float = 1.0, resolution: int | None = None,
                 prompt_template: str | None = None, name: str = "maskgit",
                 crop_margin: float | None = None):
        self.crop_margin = crop_margin  # None: whole image; else edit a crop around each box
        self.device = torch.device(device) if device is not None else \
            torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = dtype if dtype is not None else \
            (torch.float16 if self.device.type == "cuda" else torch.float32)
        # the VQ runs in float32 when its config asks for it (as aMUSEd's `force_upcast`)
        upcast = getattr(vqvae.config, "force_upcast", False)
        self.vq_dtype = torch.float32 if upcast else self.dtype
        self.vqvae = _place(vqvae, self.device, self.vq_dtype)
        self.transformer = _place(transformer, self.device, self.dtype)
        self.text_encoder = _place(text_encoder, self.device, self.dtype)
        self.tokenizer = tokenizer
        self.name = name

        self.grid = 2 ** (len(vqvae.config.block_out_channels) - 1)  # pixels per token
        self.resolution = int(resolution) if resolution is not None else default_resolution(
            transformer, self.grid, name)
        if self.resolution % self.grid:
            raise LRError(f"resolution {self.resolution} is not a multiple of the VQ grid "
                          f"({self.grid} pixels per token); pass e.g. resolution="
                          f"{max(1, round(self.resolution / self.grid)) * self.grid}.")
        self.codebook_size = transformer.config.codebook_size  # K: logits are over K codes
        self.mask_id = transformer.config.vocab_size - 1       # [M]
        if sample_temperature <= 0:
            raise LRError(f"sample_temperature must be > 0, got {sample_temperature}; use 1.0.")
        self.defaults = self.check_settings(EditorSettings(
            steps=steps, guidance_scale=float(guidance_scale), scheduler="default",
            prompt_template=prompt_template or ""))
        self.temperature = (float(temperature), 0.0) if isinstance(temperature, (int, float)) \
            else (float(temperature[0]), float(temperature[1]))
        self.sample_temperature = float(sample_temperature)
        self.prompts = PromptEncoder(tokenizer, self.text_encoder, penultimate=True, pooled=True)

    # ---------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, name_or_path: str = "amused/amused-256", device=None, dtype=None,
                        steps: int = 12, guidance_scale: float = 10.0,
                        temperature: float | tuple[float, float] = (2.0, 0.0),
                        sample_temperature: float = 1.0, resolution: int | None = None,
                        prompt_template: str | None = None,
                        crop_margin: float | None = None) -> "MaskGITEditor":
        """Load an aMUSEd checkpoint: a hub id (`amused/amused-256`, `amused/amused-512`) or a
        local folder with `vqvae/`, `transformer/`, `text_encoder/`, `tokenizer/`.

        Defaults follow aMUSEd's pipeline: 12 steps, guidance 10, Gumbel temperature 2 -> 0.
        A local folder may carry `lrlib_editor.json` with a `crop_margin` (as the SD editor).
        Raises `CheckpointUnavailableError` (saying how to fix it) when anything cannot be loaded.
        """
        dev = torch.device(device) if device is not None else \
            torch.device("cuda" if torch.cuda.is_available() else "cpu")
        dt = dtype if dtype is not None else \
            (torch.float16 if dev.type == "cuda" else torch.float32)
        try:
            from diffusers import UVit2DModel, VQModel
            from transformers import CLIPTextModelWithProjection, CLIPTokenizer

            name = os.path.expanduser(str(name_or_path))
            if looks_like_path(name) and not os.path.isdir(name):
                raise FileNotFoundError(f"no such folder: {name}")  # don't ask the hub for it
            vqvae = VQModel.from_pretrained(name, subfolder="vqvae", **dtype_kwarg(dt))
            transformer = UVit2DModel.from_pretrained(name, subfolder="transformer",
                                                      **dtype_kwarg(dt))
            text_encoder = CLIPTextModelWithProjection.from_pretrained(
                name, subfolder="text_encoder", dtype=dt)
            tokenizer = CLIPTokenizer.from_pretrained(name, subfolder="tokenizer")
        except Exception as exc:  # offline hub, wrong id, missing folder or subfolder
            raise checkpoint_error("MaskGIT", str(name_or_path), exc,
                                   option="maskgit_model") from exc
        defaults = os.path.join(name, EDITOR_DEFAULTS_FILE)
        if crop_margin is None and os.path.isfile(defaults):
            with open(defaults) as f:
                crop_margin = json.load(f).get("crop_margin")
        return cls(vqvae, transformer, text_encoder, tokenizer, device=dev, dtype=dt, steps=steps,
                   guidance_scale=guidance_scale, temperature=temperature,
                   sample_temperature=sample_temperature, resolution=resolution,
                   prompt_template=prompt_template, name=str(name_or_path),
                   crop_margin=crop_margin)

    def modules(self) -> list[torch.nn.Module]:
        return [self.vqvae, self.transformer, self.text_encoder]

    # ---------------------------------------------------------------- grid
    @property
    def token_shape(self) -> tuple[int, int]:
        """(h, w): tokens per side at the working resolution."""
        side = self.resolution // self.grid
        return side, side

    def token_mask(self, masks: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) pixel masks -> (B, h, w) bool: a token is masked if any pixel of its cell
        is (mask >= 0.5, as aMUSEd binarizes), the cells taken in the input's own coordinates."""
        binary = (masks.float() >= 0.5).float()
        return F.adaptive_max_pool2d(binary, self.token_shape)[:, 0] > 0

    def snap_mask(self, masks: torch.Tensor) -> torch.Tensor:
        """The pixel mask really repainted: the masked token cells, filled, at the input's size.
        With `crop_margin` the token cells live in each crop, so the box itself is the mask."""
        if self.crop_margin:
            return (masks >= 0.5).to(masks.dtype)
        cells = self.token_mask(masks)[:, None].to(masks.dtype)
        return F.interpolate(cells, size=masks.shape[-2:], mode="nearest")

    # ---------------------------------------------------------------- VQ
    def _to_working(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float()
        if tuple(x.shape[-2:]) != (self.resolution, self.resolution):
            x = F.interpolate(x, size=(self.resolution, self.resolution), mode="bilinear",
                              align_corners=False, antialias=True)
        return x.clamp(0, 1)

    @torch.no_grad()
    def tokenize(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, R, R) in [0, 1] -> (B, h, w) token ids. aMUSEd's VQ takes [0, 1] as is (its
        image processor has `do_normalize=False`)."""
        x = images.to(self.device, self.vq_dtype)
        latents = self.vqvae.encode(x).latents
        b, _, h, w = latents.shape
        return self.vqvae.quantize(latents)[2][2].reshape(b, h, w).long()

    @torch.no_grad()
    def detokenize(self, tokens: torch.Tensor, upcast: bool = False) -> torch.Tensor:
        """(B, h, w) token ids -> (B, 3, R, R) float32 in [0, 1]. upcast: decode with a float32
        copy of the VQ (made for this call; the editor's own is left as it is)."""
        b, h, w = tokens.shape
        vq = self.vqvae
        if upcast and self.vq_dtype != torch.float32:
            vq = copy.deepcopy(vq).to(torch.float32)
        cfg = vq.config
        shape = (b, h, w, cfg.vq_embed_dim or cfg.latent_channels)
        tokens = tokens.to(self.device)
        if cfg.lookup_from_codebook:
            out = vq.decode(tokens, force_not_quantize=True, shape=shape).sample
        else:  # look the codes up ourselves, then decode the embeddings
            quant = vq.quantize.get_codebook_entry(tokens.reshape(-1), shape)
            out = vq.decode(quant, force_not_quantize=True).sample
        return out.float().clamp(0, 1)

    # ---------------------------------------------------------------- text
    @staticmethod
    def _format(prompt: str, template: str | None) -> str:
        p = check_prompt(prompt)
        return check_prompt(template.format(p)) if template else p

    @torch.no_grad()
    def encode_prompts(self, prompts: list[str], prompt_template: str | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Conditioning for a batch: (hidden (B, S, D), pooled (B, P), uncond hidden (B, S, D),
        uncond pooled (B, P)), S = 77 * the largest number of chunks in the batch. Shorter
        prompts are padded with the empty prompt's chunk (`lrlib.editors.prompts`). Each prompt
        goes into `prompt_template` first ("": none; None: the editor's default)."""
        template = self.defaults.prompt_template if prompt_template is None else prompt_template
        hidden, pooled = self.prompts([self._format(p, template) for p in prompts])
        return (hidden, pooled) + self.prompts.unconditional(len(prompts), hidden.shape[1])

    def micro_conds(self, batch: int) -> torch.Tensor:
        """aMUSEd's micro-conditioning `[width, height, crop_top, crop_left, aesthetic]`."""
        return micro_conds(batch, self.resolution, self.device, self.dtype)

    # ---------------------------------------------------------------- MaskGIT
    @torch.no_grad()
    def logits(self, z: torch.Tensor, cond, guidance_scale: float | None = None) -> torch.Tensor:
        r"""Guided logits $\hat\ell = \ell_\varnothing + s(\ell_c - \ell_\varnothing)$,
        (B, h, w) tokens -> (B, h*w, K) float32; $s$ = guidance_scale (None: the default)."""
        hidden, pooled, u_hidden, u_pooled = cond
        b = z.shape[0]
        w = self.defaults.guidance_scale if guidance_scale is None else guidance_scale
        guided = w > 1.0  # as aMUSEd: guidance only above 1
        if guided:
            z_in = torch.cat([z, z])
            ctx, pool = torch.cat([u_hidden, hidden]), torch.cat([u_pooled, pooled])
        else:
            z_in, ctx, pool = z, hidden, pooled
        out = self.transformer(z_in, encoder_hidden_states=ctx, pooled_text_emb=pool,
                               micro_conds=self.micro_conds(z_in.shape[0])).float()
        if guided:
            l_uncond, l_cond = out.chunk(2)
            out = l_uncond + w * (l_cond - l_uncond)
        return out.reshape(b, out.shape[1], -1).permute(0, 2, 1)  # (B, L, K)

    @torch.no_grad()
    def generate_tokens(self, tokens: torch.Tensor, token_mask: torch.Tensor, prompts: list[str],
                        generator: torch.Generator, trace: list | None = None,
                        settings: EditorSettings | None = None) -> torch.Tensor:
        """Fill the masked tokens in `settings.steps` MaskGIT steps (with its guidance_scale and
        prompt_template; None: the defaults); the others are never touched.

        `tokens` (B, h, w) ids, `token_mask` (B, h, w) bool. If `trace` is a list, the number of
        still-masked tokens per sample is appended after each step (it follows `mask_schedule`).
        """
        s = self.resolve(settings)
        steps = s.steps
        if generator is None:  # still reproducible from torch.manual_seed
            generator = torch.Generator().manual_seed(int(torch.randint(2 ** 62, (1,))))
        b, h, w = tokens.shape
        L = h * w
        masked = token_mask.to(self.device).reshape(b, L)
        z = torch.where(masked, self.mask_id, tokens.to(self.device).reshape(b, L))
        n_masked = masked.sum(1).tolist()
        n_t = torch.tensor([mask_schedule(n, steps) for n in n_masked],
                           device=self.device).reshape(b, steps)             # (B, T)
        tau = torch.linspace(self.temperature[0], self.temperature[1], steps).tolist()
        # checks the prompts even when nothing is masked
        cond = self.encode_prompts(prompts, s.prompt_template)
        ranks = torch.arange(L, device=self.device)[None]

        for t in range(steps):
            unknown = z == self.mask_id                                       # (B, L)
            if unknown.any():
                # 1. predict (with guidance), 2. sample the masked tokens
                log_p = torch.log_softmax(
                    self.logits(z.reshape(b, h, w), cond, s.guidance_scale)
                    / self.sample_temperature, dim=-1)
                probs_u = log_p[unknown].exp().to(generator.device)          # (M, K)
                sampled = torch.multinomial(probs_u, 1, generator=generator)[:, 0]
                z_hat = z.clone()
                z_hat[unknown] = sampled.to(self.device)
                # 3. confidence + annealed Gumbel noise; known tokens are never re-masked
                log_p_hat = log_p.gather(-1, z_hat[..., None])[..., 0]
                g = gumbel_noise((b, L), generator).to(self.device)
                conf = torch.nan_to_num(log_p_hat + tau[t] * g, nan=-1e30, posinf=1e30,
                                        neginf=-1e30)
                conf = torch.where(unknown, conf, torch.inf)
                # 4. re-mask the n_t least confident (conf = +inf sorts last)
                order = conf.argsort(dim=1, stable=True)
                remask = torch.zeros_like(unknown).scatter(1, order, ranks < n_t[:, t:t + 1])
                z = torch.where(remask, self.mask_id, z_hat)
            if trace is not None:
                trace.append((z == self.mask_id).sum(1).tolist())
        return z.reshape(b, h, w)

    @torch.no_grad()
    def edit_tokens(self, images: torch.Tensor, masks: torch.Tensor, prompts: list[str],
                    generator: torch.Generator, trace: list | None = None,
                    settings: EditorSettings | None = None):
        """Token-level inpainting: returns (source tokens, token mask, edited tokens), each
        (B, h, w). The edited tokens equal the source outside the token mask."""
        check_inpaint_args(images, masks, prompts)
        z_src = self.tokenize(self._to_working(images))
        m = self.token_mask(masks).to(self.device)
        z = self.generate_tokens(z_src, m, prompts, generator, trace=trace, settings=settings)
        return z_src, m, z

    @torch.no_grad()
    def inpaint(self, images: torch.Tensor, masks: torch.Tensor, prompts: list[str],
                generator: torch.Generator,
                settings: EditorSettings | None = None) -> torch.Tensor:
        s = self.resolve(settings)
        self.place()                    # back on the GPU if another editor's load moved it off
        if self.crop_margin:   # a square crop around each box, at the working resolution
            windows = crop_windows(masks, self.crop_margin)
            R = self.resolution
            xc, mc = crop_resize(images.float(), windows, R), crop_resize(masks.float(), windows, R)
            _, _, z = self.edit_tokens(xc, mc, prompts, generator, settings=s)
            out = paste_crops(images.float().cpu(),
                             self.detokenize(z, s.upcast_vae).float().cpu(), windows)
            return out.clamp(0, 1).to(images.device)
        _, _, z = self.edit_tokens(images, masks, prompts, generator, settings=s)
        x_hat = self.detokenize(z, s.upcast_vae)
        if tuple(x_hat.shape[-2:]) != tuple(images.shape[-2:]):
            x_hat = F.interpolate(x_hat, size=images.shape[-2:], mode="bilinear",
                                  align_corners=False, antialias=True).clamp(0, 1)
        return x_hat.to(images.device, torch.float32)


def looks_like_path(name: str) -> bool:
    """A local path rather than a hub id (`owner/name` has exactly one '/' and no leading '.')."""
    return (os.path.isabs(name) or name.startswith((".", "~")) or name.count("/") > 1
            or (os.sep != "/" and os.sep in name))


def _place(module, device: torch.device, dtype: torch.dtype):
    """Move to device, cast only when needed (a no-op cast would make diffusers warn), eval mode."""
    if module.dtype != dtype:
        module = module.to(dtype)
    return module.to(device).eval().requires_grad_(False)


def default_resolution(transformer, grid: int, name: str = "") -> int:
    """Working resolution: tokens per side (the U-ViT's `sample_size`: 16 for amused-256, 32 for
    amused-512) times pixels per token. If the config file has no `sample_size`, the size in the
    checkpoint's name (`...-256`, `...-512`), else 512."""
    cfg = transformer.config
    if "sample_size" not in (cfg.get("_use_default_values") or []):
        return int(cfg.sample_size) * grid
    found = re.findall(r"(?<!\d)(256|512|1024)(?!\d)", name)
    return int(found[-1]) if found else 512
