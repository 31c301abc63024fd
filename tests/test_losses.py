import torch
import torch.nn.functional as F

from lrlib.losses import L_clip, L_dir, L_str, augment, edit_loss, embed, self_similarity


def unit(v):
    return F.normalize(torch.tensor(v, dtype=torch.float32), dim=-1)


def test_L_dir_sign_follows_the_text_direction():
    src, cap, prompt = unit([1.0, 0, 0]), unit([1.0, 0, 0]), unit([0, 1.0, 0])
    toward = unit([0.6, 0.8, 0])[None]            # moved toward the prompt
    away = unit([0.8, -0.6, 0])[None]             # moved away from it
    lt, la = L_dir(toward, src, prompt, cap), L_dir(away, src, prompt, cap)
    assert float(lt) < 0.2 and float(la) > 1.2
    exact = L_dir((src + 0.3 * (prompt - cap))[None], src, prompt, cap)
    opposite = L_dir((src - 0.3 * (prompt - cap))[None], src, prompt, cap)
    assert abs(float(exact)) < 1e-6 and abs(float(opposite) - 2) < 1e-6
    assert abs(float(L_dir(src[None], src, prompt, cap)) - 1.0) < 1e-6   # no change -> 1


def test_L_clip_is_lower_for_the_matching_image():
    T = unit([0, 1.0, 0])
    views = torch.stack([unit([0.1, 1.0, 0]), unit([1.0, 0, 0.2])])   # n=1 view, 2 images
    l = L_clip(views, T, n=1)
    assert l[0] < l[1] and 0 <= float(l.min()) and float(l.max()) <= 2


def test_L_str_zero_for_identical_and_positive_otherwise():
    k = torch.randn(1, 10, 8)
    S = self_similarity(k)
    assert float(L_str(S, S)) == 0.0
    assert float(L_str(self_similarity(k.flip(1)), S)) > 0
    torch.testing.assert_close(torch.diagonal(S[0]), torch.ones(10))


def test_augment_is_differentiable_and_seeded(scene):
    x = scene[None].clone().requires_grad_(True)
    a = augment(x, 3, torch.Generator().manual_seed(0))
    b = augment(x, 3, torch.Generator().manual_seed(0))
    assert a.shape == (3, 3, 64, 64) and torch.equal(a, b)
    a.sum().backward()
    assert x.grad.abs().sum() > 0


def test_edit_loss_on_tiny_models(clip, dino, scene):
    x = scene[None]
    for structure in ("dino", "clip"):
        emb = embed(clip, dino, x, "a blue square", "a red circle", structure)
        loss = lambda e, g: edit_loss(e, g, emb=emb, clip=clip, dino=dino, n_aug=2)  # noqa: E731
        g = torch.Generator().manual_seed(0)
        same = loss(x, g)
        assert float(same["L_str"]) < 1e-10                  # identical image: no structure change
        assert abs(float(same["L_dir"]) - 1) < 1e-4          # no change: 1 - cos(0, .) = 1
        e = x.clone()
        e[:, :, 10:40, 10:40] = torch.tensor([0.1, 0.1, 0.9])[:, None, None]
        e.requires_grad_(True)
        out = loss(e, g)
        assert float(out["L_str"].detach()) > 0
        torch.testing.assert_close(out["L"], out["L_clip"] + out["L_str"] + out["L_dir"])
        out["L"].sum().backward()
        assert e.grad.abs().sum() > 0                        # gradient reaches the pixels


def test_clip_long_prompt_is_the_length_weighted_mean_of_its_chunks(clip):
    """A prompt over 77 tokens: its embedding is normalize(sum_c n_c t_c) over chunks of 75 BPE
    tokens, each wrapped in start/end and encoded by the CLIP text tower on its own (t_c unit,
    n_c the chunk's token count), computed here from the tokenizer and the model alone. Bugs
    caught: the prompt cut at 77 tokens, a plain (unweighted) mean, chunks of 77 (start/end not
    counted), a missing re-normalisation, chunks padded with the wrong token."""
    head = " ".join(["a red circle on a grey background"] * 12)      # ~84 tokens
    prompt = head + " and a green triangle in the corner"
    tok = clip.tokenizer
    ids = tok.encode(prompt)
    assert 77 < len(ids) <= 150
    chunks = [ids[:75], ids[75:]]
    rows = torch.zeros(2, 77, dtype=torch.long)
    for i, c in enumerate(chunks):
        rows[i, :len(c) + 2] = torch.tensor([tok.sot_token_id] + c + [tok.eot_token_id])
    with torch.no_grad():
        t = F.normalize(clip.model.encode_text(rows).float(), dim=-1)
    n = torch.tensor([75.0, len(ids) - 75.0])
    want = F.normalize((n[:, None] * t).sum(0), dim=-1)
    got = clip.encode_text([prompt])[0]
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    assert abs(float(got.norm()) - 1) < 1e-5
    assert float(F.cosine_similarity(got, F.normalize(t.mean(0), dim=-1), dim=0)) < 1 - 1e-6
