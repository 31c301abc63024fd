"""GPU seconds per edit, estimated from counted work: `python -m lrlib.bench estimate`.

No GPU has measured these (the `tools/gpu_check/` scripts do, when one is lent). What is exact is
the count of the editor's work per edit, from the config:

    UNet image-evaluations  = g * (N * n(s_c) + n(s))        g = 2 with guidance (1 without)
    VAE encodes + decodes   = N + 1                          N = K * M candidates (fewer when the
                                                             caption prunes anchors)

with s_c the candidates' steps (draft_steps when drafting, else steps), n(s) the UNet calls for s
steps (PNDM, SD 2's own: s + 1, counted for every scheduler as an upper bound) and the + 1 the
winner painted again (at full steps, on the photo itself or on the canvas); `LRConfig.work`
counts them, and bounds them before an edit starts. Each is multiplied by its FLOPs, measured
with torch's FlopCounterMode on the real architectures (random weights; shared/notes/stack.md):

    SD 2 UNet at 512 px: 0.80 TFLOP;  VAE decode 2.5, encode 1.1 TFLOP
    SDXL UNet at 1024 px: 6.76 TFLOP; VAE decode 10.5, encode 4 x 1.1 TFLOP (scaled, an estimate)

and divided by a throughput: a T4 runs one SD UNet image-evaluation at 512 px in ~0.07 s in fp16
(diffusers' published figures), 11.4 TFLOP/s; other cards are scaled from it by their dense fp16
tensor peak (A100 312, H100 989, L4 121, T4 65 TFLOP/s), i.e. at the T4's 17.5% of peak. CLIP and
DINO forwards (ViT-B/16: ~35 GFLOP per 224 px image) are added from their counts.
"""
from __future__ import annotations

from lrlib.config import LRConfig

#: TFLOP per image: UNet evaluation, VAE decode, VAE encode at the family's resolution
FLOPS = {"sd2": (0.80, 2.5, 1.1), "sdxl": (6.76, 10.5, 4.4)}
#: dense fp16 tensor peak, TFLOP/s
PEAK = {"T4": 65.0, "L4": 121.0, "A100": 312.0, "H100": 989.0}
T4_EFFECTIVE = 0.80 / 0.07          # TFLOP/s: diffusers' ~0.07 s per SD UNet evaluation on a T4
CLIP_TFLOP = 0.035                  # ViT-B/16 at 224 px, one image forward


def work(cfg: LRConfig, anchors: int | None = None) -> dict:
    """Exact per-edit counts for cfg with `anchors` edited (default: all K): `LRConfig.work`."""
    w = cfg.replace(K=anchors or cfg.K).work()
    return {"candidates": w["candidates"], "unet": w["editor_evals"], "vae": w["candidates"] + 1,
            "clip": w["clip_forwards"]}


def estimate(cfg: LRConfig, family: str = "sd2", anchors: int | None = None) -> dict:
    """{card: seconds} for one edit (an estimate, see the module docstring) and the counts."""
    w = work(cfg, anchors)
    u, dec, enc = FLOPS[family]
    tflop = w["unet"] * u + w["vae"] * (dec + enc) + w["clip"] * CLIP_TFLOP
    eff = T4_EFFECTIVE / PEAK["T4"]
    return {**w, "tflop": tflop, **{card: tflop / (peak * eff) for card, peak in PEAK.items()}}


def table() -> str:
    rows = [("LRConfig(), SD 2", LRConfig(), "sd2"),
            ("LRConfig(draft_steps=0), SD 2", LRConfig(draft_steps=0), "sd2"),
            ("LRConfig.paper(), SD 2", LRConfig.paper(), "sd2"),
            ("LRConfig(), SDXL", LRConfig(), "sdxl"),
            ("LRConfig(draft_steps=0), SDXL", LRConfig(draft_steps=0), "sdxl")]
    head = (f"{'config (all K anchors edited)':32s}{'cands':>6s}{'UNet evals':>11s}{'VAE':>5s}"
            f"{'TFLOP':>8s}" + "".join(f"{c + ' s':>9s}" for c in PEAK))
    lines = ["GPU seconds per edit, ESTIMATED from exact work counts x measured FLOPs / "
             f"(fp16 peak x {T4_EFFECTIVE / PEAK['T4']:.3f}); not measured", head]
    for name, cfg, fam in rows:
        e = estimate(cfg, fam)
        lines.append(f"{name:32s}{e['candidates']:6d}{e['unet']:11d}{e['vae']:5d}{e['tflop']:8.0f}"
                     + "".join(f"{e[c]:9.0f}" for c in PEAK))
    lines.append("anchors pruned by the caption edit fewer candidates (toy benchmark: 1.22 of 3 on "
                 "average): the counts scale with the anchors edited")
    return "\n".join(lines)
