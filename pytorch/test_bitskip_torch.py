#!/usr/bin/python3
"""Spot checks of bitskip_torch.py against naive, loop-based restatements of the spec.

Run:  /usr/bin/python3 pytorch/test_bitskip_torch.py      (prints "all ok")
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bitskip_torch as bt  # noqa: E402

torch.set_num_threads(1)
MICRO = dict(vocab_size=67, d_model=32, n_layers=3, n_heads=4, n_kv_heads=2, ffn_dim=64, ctx=8)


def sylvester(n):
    H = np.array([[1.0]])
    while H.shape[0] < n:
        H = np.block([[H, H], [H, -H]])
    return H


def test_fwht():
    x = torch.randn(3, 64, dtype=torch.float64)
    got = bt.fwht(x).numpy()
    want = x.numpy() @ sylvester(64).T
    assert np.allclose(got, want, atol=1e-12)
    assert torch.allclose(bt.fwht(bt.fwht(x)) / 64, x, atol=1e-12)  # self-inverse up to n


def test_act_quant():
    Q = 127.0
    # values whose Q*x/s is exactly k + 0.5 -> half to even
    x = torch.tensor([[127.0, 0.5, 1.5, 2.5, -0.5, -1.5, 3.4]])
    xh = bt.act_quant(x, 8)
    assert xh.tolist()[0] == [127.0, 0.0, 2.0, 2.0, -0.0, -2.0, 3.0]
    x = torch.randn(5, 16, requires_grad=True)
    y = bt.act_quant(x, 4)
    s = x.detach().abs().amax(-1, keepdim=True)
    q = (y.detach() * 7 / s)
    assert torch.allclose(q, q.round(), atol=1e-4) and q.abs().max() <= 7 + 1e-4
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))  # STE


def test_ternary():
    w = torch.randn(8, 16)
    w_hat, alpha = bt.ternary_weight(w)
    assert math.isclose(alpha.item(), w.abs().mean().item(), rel_tol=1e-6)
    for a, b in zip(w.flatten().tolist(), (w_hat / alpha).flatten().tolist()):
        want = 1.0 if a > 0.5 * alpha else -1.0 if a < -0.5 * alpha else 0.0
        assert b == want


def test_param_names():
    for prof in ("paper", "reference"):
        for var in bt.VARIANTS:
            cfg = bt.make_config(MICRO, prof, var)
            names = set(n for n, _ in bt.BitSkipModel(cfg).named_parameters())
            want = {"tok_embeddings.weight", "final_norm.weight", "final_norm.bias", "lm_head.weight"}
            if cfg.learned_positions:
                want.add("pos_embeddings.weight")
            for i in range(cfg.n_layers):
                projs = [f"attn.{p}_proj" for p in "qkvo"] + ["ffn.up_proj", "ffn.down_proj"]
                for p in projs:
                    want.add(f"layers.{i}.{p}.weight")
                    if cfg.hadamard:
                        want |= {f"layers.{i}.{p}.norm.weight", f"layers.{i}.{p}.norm.bias"}
                for n in ("attn_norm", "ffn_norm", "router.norm", "router.fc1", "router.fc2"):
                    want |= {f"layers.{i}.{n}.weight", f"layers.{i}.{n}.bias"}
            assert names == want, (prof, var, names ^ want)


def naive_attention(attn, h):
    """Loop version: per sample, head, position; query head i uses KV head i // (NH/NKV)."""
    cfg = attn.cfg
    B, T, d = h.shape
    NH, NKV, hs = cfg.n_heads, cfg.n_kv_heads, cfg.head_size
    x = F.layer_norm(h, (d,), eps=cfg.ln_eps) if (cfg.attn_input_norm and not cfg.hadamard) else h
    q = attn.q_proj(x).view(B, T, NH, hs)
    k = attn.k_proj(x).view(B, T, NKV, hs)
    v = attn.v_proj(x).view(B, T, NKV, hs)

    def rope(vec, t):
        out = vec.clone()
        for j in range(hs // 2):
            ang = t * cfg.rope_theta ** (-2.0 * j / hs)
            c, s = math.cos(ang), math.sin(ang)
            out[j] = vec[j] * c - vec[j + hs // 2] * s
            out[j + hs // 2] = vec[j + hs // 2] * c + vec[j] * s
        return out

    o = torch.zeros(B, T, NH * hs)
    for b in range(B):
        for i in range(NH):
            kv = i // (NH // NKV)
            for t in range(T):
                qt = rope(q[b, t, i], t)
                sc = torch.stack([qt @ rope(k[b, u, kv], u) for u in range(t + 1)]) / math.sqrt(hs)
                p = torch.softmax(sc, 0)
                o[b, t, i * hs:(i + 1) * hs] = sum(p[u] * v[b, u, kv] for u in range(t + 1))
    return attn.o_proj(o)


def test_attention_and_skip_and_losses():
    torch.manual_seed(0)
    for prof in ("paper", "reference"):
        for var in ("ee-only", "bitskip"):
            cfg = bt.make_config(MICRO, prof, var, dropout=0.0)
            model = bt.BitSkipModel(cfg)
            g = torch.Generator().manual_seed(3)
            with torch.no_grad():
                for p in model.parameters():
                    p.copy_(torch.randn(p.shape, generator=g) * 0.3 + (1.0 if p.dim() == 1 else 0.0))
            model.train()
            h = torch.randn(2, 8, 32)
            cos, sin = bt.rope_tables(8, cfg.head_size, cfg.rope_theta)
            a1 = model.layers[0].attn(h, cos, sin)
            a2 = naive_attention(model.layers[0].attn, h)
            assert torch.allclose(a1, a2, rtol=1e-4, atol=1e-4 * a1.abs().max().item()), (prof, var)

            tokens = torch.randint(0, 67, (2, 9), generator=g)
            mask = torch.tensor([[0, 1, 1], [0, 0, 0]], dtype=torch.int32)  # last-layer bit is ignored
            losses, out = model.losses(tokens, mask)
            hid = out["hidden"]
            assert torch.equal(hid[1][0], hid[0][0]) and not torch.equal(hid[1][1], hid[0][1])
            assert not torch.equal(hid[2][0], hid[1][0])  # last layer never skipped

            # losses restated
            L, V = cfg.n_layers, cfg.vocab_size
            x, y = tokens[:, :-1], tokens[:, 1:]
            ce = lambda lg, tg: -torch.log_softmax(lg, -1).gather(-1, tg[..., None]).mean()
            assert torch.allclose(losses["task"], ce(out["logits"], y))
            ws = [1 / (l + 1) if cfg.ee_weights == "inverse" else l + 1 for l in range(L)]
            tg = y if cfg.ee_targets == "shifted" else x
            ee = 0.0
            for l in range(L):
                hl = hid[l]
                lg = model.lm_head(model.final_norm(hl)) if cfg.ee_final_norm else model.lm_head(hl)
                ee = ee + ws[l] / sum(ws) * ce(lg, tg)
            assert torch.allclose(losses["ee"], ee)
            p = out["p_exit"]
            lbar = torch.zeros(2, 8)
            for b in range(2):
                for t in range(8):
                    surv = 1.0
                    for l in range(L):
                        lbar[b, t] += l * p[l, b, t] * surv
                        surv *= 1 - p[l, b, t]
            r = ((lbar - L / 2) ** 2).mean() if cfg.route_loss == "per_token" else (lbar.mean() - L / 2) ** 2
            assert torch.allclose(losses["route"], r)
            qs = []
            for m in model.quant_projs():
                w = m.weight.detach()
                al = w.abs().mean()
                wh = al * ((w > al / 2).float() - (w < -al / 2).float())
                qs.append(((w - wh) ** 2).sum() if cfg.quant_loss == "l2" else ((w - wh) ** 2).mean())
            assert len(qs) == 6 * L and torch.allclose(losses["quant"], torch.stack(qs).mean())
            tot = losses["task"] + cfg.lambda_ee * ee + cfg.lambda_q * losses["quant"] + cfg.lambda_r * r
            assert torch.allclose(losses["total"], tot)


def test_presets():
    c = bt.make_config("paper-85m", "paper", "bitskip")
    assert (c.d_model, c.n_layers, c.n_heads, c.n_kv_heads, c.ffn_dim, c.ctx) == (512, 12, 8, 4, 2048, 512)
    d, f = 512, 2048
    per_layer = d * d + 2 * d * (d // 2) + d * d + 2 * d * f
    assert 12 * per_layer == 34_603_008
    r = bt.make_config("tiny", "reference", "baseline")
    assert r.lambda_r == 0 and r.lambda_q == 0 and r.skip_denominator == "L-1"
    assert bt.make_config("tiny", "paper", "baseline").lambda_r == 0.2
    assert bt.make_config("tiny", "reference", "ee-only").lambda_q == 0.05
    pr = bt.make_config(MICRO, "reference", "bitskip").skip_probs()
    assert pr == [0.0, 0.7 * 0.25, 0.0]
    pp = bt.make_config(MICRO, "paper", "bitskip").skip_probs()
    assert math.isclose(pp[1], 0.7 / 9) and pp[2] == 0.0


def test_exit_heads():
    """adapter: zero W is the shared head exactly; grad stop: the exits' loss leaves the shared head alone."""
    torch.manual_seed(3)
    tokens = torch.randint(0, MICRO["vocab_size"], (2, MICRO["ctx"] + 1))
    shared = bt.BitSkipModel(bt.make_config(MICRO, "paper", "ee-only", dropout=0.0))
    adapter = bt.BitSkipModel(bt.make_config(MICRO, "paper", "ee-only", dropout=0.0, exit_head="adapter"))
    names = [n for n, _ in adapter.named_parameters() if n.startswith("exit_heads.")]
    L = MICRO["n_layers"]
    assert names == [f"exit_heads.{l}.{k}" for l in range(L - 1) for k in ("norm.weight", "norm.bias", "proj.weight")]
    sd = adapter.state_dict()
    sd.update(shared.state_dict())
    adapter.load_state_dict(sd)
    a, _ = shared.losses(tokens)
    b, _ = adapter.losses(tokens)
    assert torch.equal(a["total"], b["total"])
    for gs in (False, True):
        m = bt.BitSkipModel(bt.make_config(MICRO, "paper", "ee-only", dropout=0.0, exit_head="adapter",
                                           exit_head_grad_stop=gs))
        with torch.no_grad():
            for ad in m.exit_heads:
                ad.proj.weight.normal_(0.0, 0.1)
        _, out = m.losses(tokens)
        # only the early exits' cross-entropy: with grad stop, no gradient reaches the head or the final norm
        ce = sum(F.cross_entropy(out["exit_logits"][l].reshape(-1, MICRO["vocab_size"]), tokens[:, 1:].reshape(-1))
                 for l in range(L - 1))
        m.zero_grad(set_to_none=True)
        ce.backward()
        head_grads = [m.lm_head.weight.grad, m.final_norm.weight.grad, m.final_norm.bias.grad]
        assert all(g is None for g in head_grads) == gs, gs
        assert m.exit_heads[0].proj.weight.grad.abs().sum() > 0
        assert m.layers[0].ffn_norm.weight.grad.abs().sum() > 0
    # lowrank: zero U is the shared head; the exit reads FinalLN(h) (W + U D)^T, = W x + U (D x)
    lr = bt.BitSkipModel(bt.make_config(MICRO, "paper", "ee-only", dropout=0.0, exit_head="lowrank", exit_rank=3))
    names = [n for n, _ in lr.named_parameters() if n.startswith("exit_heads.")]
    assert names == [f"exit_heads.{l}.{k}" for l in range(L - 1) for k in ("down.weight", "up.weight")]
    assert tuple(lr.exit_heads[0].up.weight.shape) == (MICRO["vocab_size"], 3)
    sd = lr.state_dict()
    sd.update(shared.state_dict())
    lr.load_state_dict(sd)
    assert torch.equal(shared.losses(tokens)[0]["total"], lr.losses(tokens)[0]["total"])
    with torch.no_grad():
        for e in lr.exit_heads:
            e.up.weight.normal_(0.0, 0.3)
    h = torch.randn(2, MICRO["d_model"])
    x = lr.final_norm(h)
    want = lr.lm_head(x) + lr.exit_heads[0].up(lr.exit_heads[0].down(x))
    assert torch.allclose(lr.exit_logits(h, 0), want, atol=1e-5)
    assert torch.equal(lr.exit_logits(h, L - 1), lr.lm_head(x))
    for variant, bad in (("baseline", dict(exit_head="adapter")), ("baseline", dict(exit_head_grad_stop=True)),
                         ("ee-only", dict(exit_head="mixed")), ("ee-only", dict(exit_head="lowrank")),
                         ("ee-only", dict(exit_head="adapter", exit_rank=2))):
        try:
            bt.make_config(MICRO, "paper", variant, **bad)
        except ValueError:
            continue
        raise AssertionError(f"accepted {variant} {bad}")
    assert bt.BitSkipConfig.from_dict(bt.make_config_dict(MICRO, "paper", "ee-only")).exit_head == "shared"


if __name__ == "__main__":
    for name, fn in list(globals().items()):
        if name.startswith("test_"):
            fn()
            print(name, "ok")
    print("all ok")
