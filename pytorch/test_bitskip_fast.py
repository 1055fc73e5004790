#!/usr/bin/python3
"""bitskip_fast.py (the fast benchmark comparator) against bitskip_torch.py (the readable golden oracle).

For every variant (baseline, h-only, ee-only, bitskip) and both profiles (paper, reference), at a micro size,
in float64 with dropout 0: the SAME initial weights (the oracle's state_dict loaded into the fast model, whose
parameter names are the oracle's) and the SAME skip mask [B, L] (a fixed mask with skips in layers 0 and 1,
passed to both; the mask is an input of both models' losses(), so the skip randomness is identical by
construction; the last layer is never skipped) must give the same loss terms and the same gradient of every
parameter, to 1e-9 relative (float64; the two differ only in the order of floating-point operations:
FWHT as a GEMM vs butterflies, fused q/k/v GEMM, chunked head).  Then one AdamW step each (the oracle's
torch.optim.AdamW vs bitskip_fast.AdamW) must give the same parameters to 1e-10 (relative to the largest).  A float32 run checks the
loss terms to 1e-5 relative (in float32 a quantizer input may round across a boundary, so gradients are
not compared there).  A bf16 run (autocast plus bf16 head operands, bitskip_fast --precision bf16) checks
that the head loss is that of the bf16-rounded operands and that every variant's losses stay within 2% of
float32's without being equal to them.

Run:  /usr/bin/python3 pytorch/test_bitskip_fast.py      (prints "all ok")
"""
import contextlib
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bitskip_torch as bt  # noqa: E402
import bitskip_fast as bf  # noqa: E402

torch.set_num_threads(1)
MICRO = dict(vocab_size=67, d_model=32, n_layers=3, n_heads=4, n_kv_heads=2, ffn_dim=48, ctx=8)
# ffn_dim 48 is not a power of two: H-BitLinear pads the down projection's input to 64


def rel_err(a, b):
    a, b = a.detach().double(), b.detach().double()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def pair(variant, profile, dtype, seed=3):
    cfg = bt.make_config(MICRO, profile, variant, dropout=0.0)
    torch.manual_seed(seed)
    ref = bt.BitSkipModel(cfg).to(dtype)
    fast = bf.BitSkipModel(cfg).to(dtype)
    names_r = [n for n, _ in ref.named_parameters()]
    names_f = [n for n, _ in fast.named_parameters()]
    assert names_r == names_f, (set(names_r) ^ set(names_f))
    fast.load_state_dict(ref.state_dict())
    ref.train(), fast.train()
    return cfg, ref, fast


def batch(cfg, B=3, seed=11):
    g = torch.Generator().manual_seed(seed)
    toks = torch.randint(0, cfg.vocab_size, (B, cfg.ctx + 1), generator=g)
    mask = torch.zeros(B, cfg.n_layers, dtype=torch.int32)
    mask[0, 0] = 1
    mask[2, 1] = 1
    return toks, mask


def check_variant(variant, profile):
    cfg, ref, fast = pair(variant, profile, torch.float64)
    toks, mask = batch(cfg)
    lr, _ = ref.losses(toks, mask)
    lf = fast.losses(toks, mask)
    keys = ["task", "route", "quant", "total"] + (["ee"] if cfg.lambda_ee else [])
    for k in keys:
        e = rel_err(lf[k], lr[k])
        assert e < 1e-9, (variant, profile, k, lf[k].item(), lr[k].item(), e)
    ref.zero_grad(), fast.zero_grad()
    lr["total"].backward()
    lf["total"].backward()
    worst = 0.0
    for (n, pr), (_, pf) in zip(ref.named_parameters(), fast.named_parameters()):
        gr = pr.grad if pr.grad is not None else torch.zeros_like(pr)
        gf = pf.grad if pf.grad is not None else torch.zeros_like(pf)
        if gr.abs().max() == 0:
            assert gf.abs().max() == 0, (variant, profile, n)
            continue
        e = rel_err(gf, gr)
        worst = max(worst, e)
        assert e < 1e-9, (variant, profile, n, e)

    # one optimizer step each from the same gradients (train_step's order: grads, clip, AdamW)
    for m in (ref, fast):
        for p in m.parameters():
            if p.grad is None:
                p.grad = torch.zeros_like(p)
    gr = torch.nn.utils.clip_grad_norm_(list(ref.parameters()), 1.0)
    gf = bf.clip_grad_norm(list(fast.parameters()), 1.0)
    assert rel_err(gf, gr) < 1e-9
    opt_r = bt.make_optimizer(ref, {"lr": 1e-2})
    grads = [p.grad.clone() for p in fast.parameters()]
    opt_f = bf.make_optimizer(fast, {"lr": 1e-2})
    for p, g in zip(fast.parameters(), grads):   # (make_optimizer allocates .grad only where missing)
        p.grad.copy_(g)
    opt_r.step()
    opt_f.step()
    for (n, pr), (_, pf) in zip(ref.named_parameters(), fast.named_parameters()):
        e = rel_err(pf, pr)
        assert e < 1e-10, (variant, profile, "after AdamW", n, e)
    return worst, {k: lr[k].item() for k in keys}


def check_float32(variant, profile):
    cfg, ref, fast = pair(variant, profile, torch.float32)
    toks, mask = batch(cfg)
    lr, _ = ref.losses(toks, mask)
    lf = fast.losses(toks, mask)
    for k in ("task", "route", "quant", "total"):
        e = rel_err(lf[k], lr[k])
        assert e < 1e-5, (variant, profile, k, e)


def test_fwht():
    for P in (32, 64, 1024, 2048):
        x = torch.randn(5, P, dtype=torch.float64)
        want = bt.fwht(x) * float(torch.tensor(P ** -0.5, dtype=torch.float32))
        for mode in ("matmul", "kron", "butterfly", "auto"):
            bf.FWHT_MODE = mode
            assert torch.allclose(bf.fwht_scaled(x), want, atol=1e-12), (P, mode)
    bf.FWHT_MODE = "auto"
    # the micro model below has P = 32 and 64 only: run its variants with the Kronecker form as well
    bf.FWHT_MODE = "kron"
    check_variant("bitskip", "paper")
    bf.FWHT_MODE = "auto"


def test_head_loss_chunking():
    """The chunked head at 1 row per chunk gives the same as at all rows in one chunk."""
    cfg, _, fast = pair("bitskip", "paper", torch.float64)
    toks, mask = batch(cfg)
    keep = bf.HEAD_CHUNK_ELEMS
    out = []
    for elems in (1, 1 << 30):
        bf.HEAD_CHUNK_ELEMS = elems
        fast.zero_grad()
        lf = fast.losses(toks, mask)
        lf["total"].backward()
        out.append((lf["total"].item(), fast.lm_head.weight.grad.clone()))
    bf.HEAD_CHUNK_ELEMS = keep
    assert abs(out[0][0] - out[1][0]) < 1e-12 and rel_err(out[0][1], out[1][1]) < 1e-12


@contextlib.contextmanager
def precision(p):
    """bitskip_fast's PRECISION set to p inside the block, back to fp32 after it (also when a check fails)."""
    bf.PRECISION = p
    try:
        yield
    finally:
        bf.PRECISION = "fp32"


def test_head_loss_bf16():
    """In bf16 mode the head loss is that of the bf16-rounded operands (h and W) with the logits rounded to bf16
    (torch 1.13's CPU product of bf16 tensors is bf16), the rest in float64 here; gradients within bf16 error."""
    torch.manual_seed(5)
    V, C, N = 67, 32, 10
    W = (torch.randn(V, C) * 0.3).requires_grad_()
    h = (torch.randn(N, C)).requires_grad_()
    t = torch.randint(0, V, (N,))
    with precision("bf16"):
        total, _ = bf._HeadLoss.apply(W, [0.7], [t], h)
        total.backward()
    Wr = W.detach().to(torch.bfloat16).double().requires_grad_()
    hr = h.detach().to(torch.bfloat16).double().requires_grad_()
    want = 0.7 * torch.nn.functional.cross_entropy((hr @ Wr.t()).to(torch.bfloat16).double(), t)
    want.backward()
    assert rel_err(total.double(), want) < 1e-5, (total.item(), want.item())
    # the gradients' products take the logit gradient rounded to bf16 as well: a few bf16 ulps of relative error
    assert rel_err(W.grad.double(), Wr.grad) < 2e-2 and rel_err(h.grad.double(), hr.grad) < 2e-2


def check_bf16(variant, profile):
    """A float32 model's step under bf16 mode: losses near float32's (bf16 has 8 bits of mantissa), not equal
    to them (the mode is on), gradients finite."""
    cfg, _, fast = pair(variant, profile, torch.float32)
    toks, mask = batch(cfg)
    l32 = fast.losses(toks, mask)
    with precision("bf16"):
        fast.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            l16 = fast.losses(toks, mask)
        l16["total"].backward()
    assert l16["total"].dtype == torch.float32
    # (the reference profile's N(0, 0.002) init gives logits so small that the task loss can round alike)
    assert any(l16[k].item() != l32[k].item() for k in ("task", "route", "total")), (variant, profile, "bf16 changed nothing")
    for k in ("task", "total"):
        e = rel_err(l16[k], l32[k])
        assert e < 2e-2, (variant, profile, k, e)
    for n, p in fast.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), (variant, profile, n)


def test_train_step_bf16():
    """train_step under PRECISION = bf16 (the path `train --precision bf16` takes): its losses and its updated
    weights differ from float32's from the same start, by bf16-sized amounts."""
    out = {}
    for prec in ("fp32", "bf16"):
        cfg, _, fast = pair("bitskip", "paper", torch.float32)
        toks, mask = batch(cfg)
        opt = bf.make_optimizer(fast)
        with precision(prec):
            losses, _ = bf.train_step(fast, opt, toks, mask)
        out[prec] = (losses, torch.cat([p.detach().reshape(-1) for p in fast.parameters()]))
    (l32, w32), (l16, w16) = out["fp32"], out["bf16"]
    assert l16["task"] != l32["task"] and abs(l16["task"] - l32["task"]) < 2e-2 * abs(l32["task"]), (l16, l32)
    # the routing loss does not pass through the head loss: it changes only if the forward ran under autocast
    assert l16["route"] != l32["route"], ("no autocast in train_step", l16, l32)
    assert not torch.equal(w16, w32) and torch.isfinite(w16).all()


def test_flops():
    cfg = bt.make_config("small", "paper", "baseline")
    d, V, L = 256, 50257, 6
    proj = d * (256 + 128 + 128 + 1024) + 256 * d + 1024 * d
    want = 3 * (2 * L * (proj + 2 * 4 * 256 * 64 + d * 64 + 64) + 2 * d * V)
    assert bf.train_flops_per_token(cfg, 256) == want
    assert bf.head_passes(bt.make_config("small", "paper", "bitskip")) == 6
    assert bf.head_passes(bt.make_config("small", "reference", "bitskip")) == 7


if __name__ == "__main__":
    test_fwht()
    test_flops()
    test_head_loss_chunking()
    test_head_loss_bf16()
    test_train_step_bf16()
    for profile in ("paper", "reference"):
        for variant in ("baseline", "h-only", "ee-only", "bitskip"):
            worst, losses = check_variant(variant, profile)
            check_float32(variant, profile)
            check_bf16(variant, profile)
            print(f"{profile:9s} {variant:8s} ok: max grad rel err {worst:.2e} (float64); "
                  + " ".join(f"{k} {v:.6f}" for k, v in losses.items()))
    print("all ok")
