#!/usr/bin/python3
"""BitSkip reference model in PyTorch — an independent implementation of /work/shared/spec/MODEL.md.

It exists to check the Java engine: same configuration keys (snake_case JSON), same parameter
names, same forward/backward semantics.  Everything is float32.  Readability beats speed.

Run with Debian's interpreter (torch 1.13):
    /usr/bin/python3 pytorch/bitskip_torch.py train --preset tiny --variant bitskip --steps 20 --batch 4 --threads 4
    /usr/bin/python3 pytorch/bitskip_torch.py train --preset tiny --profile reference --data tokens.i32 ...

Semantics in one place (they are the contract with the Java side):
  * post-norm block:  a = Attn(h); h = LN_attn(h + drop(a)); f = FFN(h); h = LN_ffn(h + drop(f))
  * quantized projection Proj(x) (q,k,v,o,up,down), weight [out, in_eff]:
      BitLinear:    y = actquant(x, act_bits) @ W_hat^T
      H-BitLinear:  u = LN(x); pad to P = 2^ceil(log2 in); z = FWHT(u) * f32(1/sqrt(P));
                    y = actquant(z, hadamard_act_bits) @ W_hat^T       (W is [out, P])
      then relu(y)^2 if projection_act == "all" or ("hadamard" and hadamard)
  * ternary: alpha = mean|W| (>=1e-6, no grad); Wq = sign(W) where |W| > alpha/2, else 0;
    W_hat = alpha*Wq; forward uses W + (W_hat - W).detach()  (straight-through)
  * actquant(x, b): s = max|x| per token (>=1e-6, no grad); Q = 2^(b-1)-1;
    q = round_half_even((Q*x)/s) clamped to [-Q,Q]; x_hat = (s*q)/Q; forward x + (x_hat - x).detach()
  * skip mask [B, L] (1 = skip): the sample's hidden state passes through the block unchanged.
  * every parameter takes part in every AdamW step; a parameter without a gradient path gets a
    zero gradient (so weight decay still applies to it).
  * exit heads (early exits l < L-1 only; the last layer's exit is the plain final path):
      exit_head "shared":  exit_l = Head(FinalLN(h_l))            (FinalLN only if ee_final_norm)
      exit_head "adapter": exit_l = Head(FinalLN(h_l + W_l LN_l(h_l))), W_l [d, d] float, zero at init,
                           parameters exit_heads.<l>.norm.{weight,bias}, exit_heads.<l>.proj.weight
      exit_head "lowrank": exit_l = FinalLN(h_l) (W + U_l D_l)^T, rank exit_rank, U_l [V, r] zero at init,
                           parameters exit_heads.<l>.down.weight [r, d] (D_l), exit_heads.<l>.up.weight (U_l)
      exit_head_grad_stop: the exits l < L-1 see FinalLN's and the head's weights detached (their loss
                           trains the trunk and the adapters, not the shared head)
"""
import argparse
import json
import math
import os
import resource
import sys
import time
from dataclasses import dataclass, asdict, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

# ----------------------------------------------------------------------------------------------
# configuration
# ----------------------------------------------------------------------------------------------

CHOICES = {
    "projection_act": ("all", "hadamard", "none"),
    "ee_targets": ("shifted", "unshifted"),
    "ee_weights": ("inverse", "linear"),
    "skip_denominator": ("L", "L-1"),
    "route_loss": ("per_token", "batch_mean"),
    "quant_loss": ("l2", "mse"),
    "init": ("paper", "reference"),
    "exit_head": ("shared", "adapter", "lowrank"),
}

# keys added after the first golden files; a config without them means these values
ADDED_DEFAULTS = {"exit_head": "shared", "exit_head_grad_stop": False, "exit_rank": 0}

# optimizer keys that may travel in the same JSON (golden metadata); not part of the model config
OPTIM_DEFAULTS = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "adam_eps": 1e-8,
                  "weight_decay": 0.1, "grad_clip": 1.0}


@dataclass
class BitSkipConfig:
    vocab_size: int
    d_model: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    ffn_dim: int
    ctx: int
    ln_eps: float
    rope_theta: float
    dropout: float
    hadamard: bool
    act_bits: int
    hadamard_act_bits: int
    projection_act: str
    learned_positions: bool
    attn_input_norm: bool
    lambda_ee: float
    p_max: float
    lambda_r: float
    lambda_q: float
    ee_targets: str
    ee_weights: str
    ee_final_norm: bool
    skip_denominator: str
    route_loss: str
    quant_loss: str
    init: str
    exit_head: str = "shared"
    exit_head_grad_stop: bool = False
    exit_rank: int = 0

    @staticmethod
    def from_dict(d):
        """Exactly the model keys; raises on a missing or unknown key (optimizer keys are ignored)."""
        names = [f.name for f in fields(BitSkipConfig)]
        unknown = set(d) - set(names) - set(OPTIM_DEFAULTS)
        d = {**ADDED_DEFAULTS, **d}
        missing = set(names) - set(d)
        if unknown or missing:
            raise ValueError(f"config keys: unknown {sorted(unknown)}, missing {sorted(missing)}")
        cfg = BitSkipConfig(**{k: d[k] for k in names})
        cfg.validate()
        return cfg

    def to_dict(self):
        return asdict(self)

    def validate(self):
        for k, allowed in CHOICES.items():
            if getattr(self, k) not in allowed:
                raise ValueError(f"{k}={getattr(self, k)!r} not in {allowed}")
        if self.d_model % self.n_heads or self.n_heads % self.n_kv_heads:
            raise ValueError("d_model % n_heads and n_heads % n_kv_heads must be 0")
        if (self.d_model // self.n_heads) % 2:
            raise ValueError("head size must be even for RoPE")
        if not isinstance(self.exit_head_grad_stop, bool):
            raise ValueError("exit_head_grad_stop must be a bool")
        if (self.exit_head != "shared" or self.exit_head_grad_stop) and not self.lambda_ee > 0:
            raise ValueError("exit_head other than shared, or exit_head_grad_stop, needs lambda_ee > 0")
        if self.exit_head == "lowrank":
            if not 1 <= self.exit_rank <= min(self.d_model, self.vocab_size):
                raise ValueError("exit_rank must be in [1, min(d_model, vocab_size)] for exit_head lowrank")
        elif self.exit_rank != 0:
            raise ValueError("exit_rank must be 0 unless exit_head is lowrank")

    @property
    def head_size(self):
        return self.d_model // self.n_heads

    def skip_probs(self):
        """p_l = p_max*(l/D)^2 with D = L or L-1; the last layer is never skipped."""
        L = self.n_layers
        D = L if self.skip_denominator == "L" else max(L - 1, 1)
        p = [self.p_max * (l / D) ** 2 for l in range(L)]
        p[L - 1] = 0.0
        return p


PRESETS = {
    "tiny": dict(vocab_size=50257, d_model=128, n_layers=4, n_heads=4, n_kv_heads=2, ffn_dim=512, ctx=128),
    "small": dict(vocab_size=50257, d_model=256, n_layers=6, n_heads=4, n_kv_heads=2, ffn_dim=1024, ctx=256),
    "paper-85m": dict(vocab_size=50257, d_model=512, n_layers=12, n_heads=8, n_kv_heads=4, ffn_dim=2048, ctx=512),
}

_COMMON = dict(ln_eps=1e-5, rope_theta=10000.0, dropout=0.1, act_bits=8, projection_act="all")

PROFILES = {
    "paper": dict(hadamard_act_bits=4, learned_positions=False, attn_input_norm=False,
                  ee_targets="shifted", ee_weights="inverse", ee_final_norm=True,
                  skip_denominator="L", route_loss="per_token", quant_loss="mse", init="paper"),
    "reference": dict(hadamard_act_bits=8, learned_positions=True, attn_input_norm=True,
                      ee_targets="unshifted", ee_weights="linear", ee_final_norm=False,
                      skip_denominator="L-1", route_loss="batch_mean", quant_loss="mse", init="reference"),
}

VARIANTS = {  # spec section 4 table (paper profile values; reference zeroes lambda_r/q of the no-EE rows)
    "baseline": dict(hadamard=False, lambda_ee=0.0, p_max=0.0, lambda_r=0.2, lambda_q=0.05),
    "h-only": dict(hadamard=True, lambda_ee=0.0, p_max=0.0, lambda_r=0.2, lambda_q=0.05),
    "ee-only": dict(hadamard=False, lambda_ee=0.3, p_max=0.7, lambda_r=0.2, lambda_q=0.05),
    "bitskip": dict(hadamard=True, lambda_ee=0.3, p_max=0.7, lambda_r=0.2, lambda_q=0.05),
}


def variant_dict(variant, profile):
    v = dict(VARIANTS[variant])
    if profile == "reference" and variant in ("baseline", "h-only"):
        v.update(lambda_r=0.0, lambda_q=0.0)
    return v


def make_config_dict(preset="tiny", profile="paper", variant="bitskip", **overrides):
    shape = dict(PRESETS[preset]) if isinstance(preset, str) else dict(preset)
    d = {**shape, **_COMMON, **PROFILES[profile], **variant_dict(variant, profile), **overrides}
    BitSkipConfig.from_dict(d)  # validates
    return d


def make_config(preset="tiny", profile="paper", variant="bitskip", **overrides):
    return BitSkipConfig.from_dict(make_config_dict(preset, profile, variant, **overrides))


# ----------------------------------------------------------------------------------------------
# quantizers and the Hadamard transform
# ----------------------------------------------------------------------------------------------

class MarginRecorder:
    """Collects the distance of every quantizer input to its rounding boundary (for golden files).

    act:    min over quantized values of | frac(Q*x/s) - 0.5 |  (in units of one quantization step)
    weight: min over weights of | |W| - 0.5*alpha | / alpha
    Only samples not skipped in the current layer count (``active``)."""

    def __init__(self):
        self.act = math.inf
        self.weight = math.inf
        self.active = None  # bool [B] or None

    def record_act(self, v):
        if self.active is not None:
            v = v[self.active]
        if v.numel():
            d = ((v - torch.floor(v)) - 0.5).abs().min().item()
            self.act = min(self.act, d)

    def record_weight(self, w, alpha):
        d = ((w.abs() - 0.5 * alpha).abs().min() / alpha).item()
        self.weight = min(self.weight, d)


RECORDER = None  # set to a MarginRecorder to record


def ternary_weight(w):
    """Returns (W_hat, alpha), both detached.  alpha = mean|W| clamped to >= 1e-6."""
    w = w.detach()
    alpha = w.abs().mean().clamp_min(1e-6)
    thr = 0.5 * alpha
    wq = (w > thr).to(w.dtype) - (w < -thr).to(w.dtype)
    if RECORDER is not None:
        RECORDER.record_weight(w, alpha)
    return alpha * wq, alpha


def act_quant(x, bits):
    """Per-token absmax quantization to `bits` bits with a straight-through estimator."""
    Q = float(2 ** (bits - 1) - 1)
    xd = x.detach()
    s = xd.abs().amax(dim=-1, keepdim=True).clamp_min(1e-6)
    v = (Q * xd) / s
    if RECORDER is not None:
        RECORDER.record_act(v)
    q = v.round().clamp(-Q, Q)          # torch.round = half to even (Java Math.rint)
    x_hat = (s * q) / Q
    return x + (x_hat - x).detach()


def next_pow2(n):
    return 1 << (n - 1).bit_length()


def fwht(x):
    """Unnormalized fast Walsh-Hadamard transform over the last dim (size a power of two),
    natural (Sylvester) order: butterflies h = 1, 2, 4, ..., pairs (i, i+h) -> (a+b, a-b)."""
    n = x.shape[-1]
    lead = x.shape[:-1]
    h = 1
    while h < n:
        y = x.reshape(*lead, n // (2 * h), 2, h)
        a, b = y[..., 0, :], y[..., 1, :]
        x = torch.stack((a + b, a - b), dim=-2).reshape(*lead, n)
        h *= 2
    return x


class QuantProj(nn.Module):
    """BitLinear (hadamard=False) or H-BitLinear (hadamard=True), no bias."""

    def __init__(self, in_features, out_features, cfg: BitSkipConfig):
        super().__init__()
        self.in_features = in_features
        self.hadamard = cfg.hadamard
        self.in_eff = next_pow2(in_features) if cfg.hadamard else in_features
        self.weight = nn.Parameter(torch.empty(out_features, self.in_eff))
        if cfg.hadamard:
            self.norm = nn.LayerNorm(in_features, eps=cfg.ln_eps)
            self.bits = cfg.hadamard_act_bits
        else:
            self.bits = cfg.act_bits
        self.relu2 = cfg.projection_act == "all" or (cfg.projection_act == "hadamard" and cfg.hadamard)

    def forward(self, x):
        if self.hadamard:
            u = self.norm(x)
            if self.in_eff != self.in_features:
                u = F.pad(u, (0, self.in_eff - self.in_features))
            z = fwht(u) * torch.tensor(1.0 / math.sqrt(self.in_eff), dtype=torch.float32)
            xq = act_quant(z, self.bits)
        else:
            xq = act_quant(x, self.bits)
        w_hat, _ = ternary_weight(self.weight)
        w = self.weight + (w_hat - self.weight).detach()
        y = F.linear(xq, w)
        if self.relu2:
            y = F.relu(y) ** 2
        return y


# ----------------------------------------------------------------------------------------------
# model
# ----------------------------------------------------------------------------------------------

def rope_tables(T, hs, theta):
    """cos/sin [T, hs/2]: angle = t * theta^(-2j/hs) in float64, then cast to float32."""
    j = torch.arange(hs // 2, dtype=torch.float64)
    inv = theta ** (-2.0 * j / hs)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def apply_rope(x, cos, sin):
    """x [B,T,H,hs]; rotate-half pairing j <-> j+hs/2."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.cat((x1 * c - x2 * s, x2 * c + x1 * s), dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg: BitSkipConfig):
        super().__init__()
        d, hs = cfg.d_model, cfg.head_size
        self.cfg = cfg
        self.q_proj = QuantProj(d, cfg.n_heads * hs, cfg)
        self.k_proj = QuantProj(d, cfg.n_kv_heads * hs, cfg)
        self.v_proj = QuantProj(d, cfg.n_kv_heads * hs, cfg)
        self.o_proj = QuantProj(cfg.n_heads * hs, d, cfg)

    def forward(self, h, cos, sin):
        cfg = self.cfg
        B, T, d = h.shape
        NH, NKV, hs = cfg.n_heads, cfg.n_kv_heads, cfg.head_size
        x = F.layer_norm(h, (d,), eps=cfg.ln_eps) if (cfg.attn_input_norm and not cfg.hadamard) else h
        q = self.q_proj(x).view(B, T, NH, hs)
        k = self.k_proj(x).view(B, T, NKV, hs)
        v = self.v_proj(x).view(B, T, NKV, hs)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        rep = NH // NKV                      # query head i uses KV head i // rep
        k = k.repeat_interleave(rep, dim=2)
        v = v.repeat_interleave(rep, dim=2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))          # [B, NH, T, hs]
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(hs)
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        scores = scores.masked_fill(~causal, float("-inf"))
        probs = F.dropout(torch.softmax(scores, dim=-1), cfg.dropout, self.training)
        out = (probs @ v).transpose(1, 2).reshape(B, T, NH * hs)
        return self.o_proj(out)


class FFN(nn.Module):
    def __init__(self, cfg: BitSkipConfig):
        super().__init__()
        self.up_proj = QuantProj(cfg.d_model, cfg.ffn_dim, cfg)
        self.down_proj = QuantProj(cfg.ffn_dim, cfg.d_model, cfg)
        self.dropout = cfg.dropout

    def forward(self, h):
        # dropout inside the FFN too (spec section 1), as the Java model does; off in the goldens
        return self.down_proj(F.dropout(F.relu(self.up_proj(h)) ** 2, self.dropout, self.training))


class Router(nn.Module):
    def __init__(self, cfg: BitSkipConfig):
        super().__init__()
        d = cfg.d_model
        self.norm = nn.LayerNorm(d, eps=cfg.ln_eps)
        self.fc1 = nn.Linear(d, d // 4)
        self.fc2 = nn.Linear(d // 4, 1)

    def forward(self, h):  # -> [B, T]
        return torch.sigmoid(self.fc2(F.relu(self.fc1(self.norm(h))))).squeeze(-1)


class ExitAdapter(nn.Module):
    """h + W LN(h): an early exit's own residual adapter before the shared head (W zero at init)."""

    def __init__(self, cfg: BitSkipConfig):
        super().__init__()
        self.norm = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def forward(self, h):
        return h + self.proj(self.norm(h))


class ExitLowRank(nn.Module):
    """An early exit's rank-r correction of the shared head's weights: W + up.weight @ down.weight."""

    def __init__(self, cfg: BitSkipConfig):
        super().__init__()
        self.down = nn.Linear(cfg.d_model, cfg.exit_rank, bias=False)
        self.up = nn.Linear(cfg.exit_rank, cfg.vocab_size, bias=False)


class Block(nn.Module):
    def __init__(self, cfg: BitSkipConfig):
        super().__init__()
        self.cfg = cfg
        self.attn = Attention(cfg)
        self.attn_norm = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
        self.ffn = FFN(cfg)
        self.ffn_norm = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
        self.router = Router(cfg)

    def forward(self, h, cos, sin):
        p = self.cfg.dropout
        h = self.attn_norm(h + F.dropout(self.attn(h, cos, sin), p, self.training))
        h = self.ffn_norm(h + F.dropout(self.ffn(h), p, self.training))
        return h


class BitSkipModel(nn.Module):
    def __init__(self, cfg: BitSkipConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.d_model)
        if cfg.learned_positions:
            self.pos_embeddings = nn.Embedding(cfg.ctx, cfg.d_model)
        self.layers = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
        self.final_norm = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.exit_head == "adapter":
            self.exit_heads = nn.ModuleList([ExitAdapter(cfg) for _ in range(cfg.n_layers - 1)])
        elif cfg.exit_head == "lowrank":
            self.exit_heads = nn.ModuleList([ExitLowRank(cfg) for _ in range(cfg.n_layers - 1)])
        self.init_weights()

    # -- init -----------------------------------------------------------------------------------
    @torch.no_grad()
    def init_weights(self, generator=None):
        g = generator
        ref = self.cfg.init == "reference"
        for m in self.modules():
            if isinstance(m, QuantProj):
                if ref:  # kaiming_uniform(a=sqrt 5) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)), times 0.1
                    bound = 1.0 / math.sqrt(m.in_eff)
                    m.weight.uniform_(-bound, bound, generator=g).mul_(0.1)
                else:
                    m.weight.normal_(0.0, 0.02, generator=g)
            elif isinstance(m, nn.Linear):
                m.weight.normal_(0.0, 0.002 if ref else 0.02, generator=g)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.Embedding):
                m.weight.normal_(0.0, 0.001 if ref else 0.02, generator=g)
            elif isinstance(m, nn.LayerNorm):
                m.weight.fill_(1.0)
                m.bias.zero_()
        if self.cfg.exit_head == "adapter":
            for a in self.exit_heads:   # an untrained adapter is the identity
                a.proj.weight.zero_()
        elif self.cfg.exit_head == "lowrank":
            for a in self.exit_heads:   # an untrained correction is zero (down keeps its Linear init)
                a.up.weight.zero_()

    def quant_projs(self):
        """The 6*L quantized matrices, in a fixed order (layer, q, k, v, o, up, down)."""
        out = []
        for b in self.layers:
            out += [b.attn.q_proj, b.attn.k_proj, b.attn.v_proj, b.attn.o_proj, b.ffn.up_proj, b.ffn.down_proj]
        return out

    # -- forward ----------------------------------------------------------------------------------
    def forward(self, tokens, skip_mask=None):
        """tokens [B,T] int64; skip_mask [B,L] (1 = skip) or None.
        Returns dict: hidden (list of L [B,T,d]), p_exit [L,B,T], logits [B,T,V]."""
        cfg = self.cfg
        B, T = tokens.shape
        h = self.tok_embeddings(tokens)
        if cfg.learned_positions:
            h = h + self.pos_embeddings.weight[:T][None]
        cos, sin = rope_tables(T, cfg.head_size, cfg.rope_theta)
        hidden, p_exit = [], []
        for l, block in enumerate(self.layers):
            skip = None
            if skip_mask is not None and l < cfg.n_layers - 1:
                skip = skip_mask[:, l].bool()
                if not skip.any():
                    skip = None
            if RECORDER is not None:
                RECORDER.active = None if skip is None else ~skip
            out = block(h, cos, sin)
            h = out if skip is None else torch.where(skip[:, None, None], h, out)
            hidden.append(h)
            p_exit.append(block.router(h))
        if RECORDER is not None:
            RECORDER.active = None
        logits = self.lm_head(self.final_norm(h))
        return {"hidden": hidden, "p_exit": torch.stack(p_exit), "logits": logits}

    def exit_logits(self, h, l=None):
        """Logits of exit l (None: no early exit, the shared head alone) from its hidden state h."""
        cfg = self.cfg
        early = l is not None and l < cfg.n_layers - 1
        if early and cfg.exit_head == "adapter":
            h = self.exit_heads[l](h)
        lowrank = early and cfg.exit_head == "lowrank"
        if early and (cfg.exit_head_grad_stop or lowrank):
            stop = cfg.exit_head_grad_stop
            fn, w = self.final_norm, self.lm_head.weight
            w = w.detach() if stop else w
            if lowrank:
                e = self.exit_heads[l]
                w = w + e.up.weight @ e.down.weight
            if cfg.ee_final_norm:
                nw, nb = (fn.weight.detach(), fn.bias.detach()) if stop else (fn.weight, fn.bias)
                h = F.layer_norm(h, (cfg.d_model,), nw, nb, fn.eps)
            return F.linear(h, w)
        return self.lm_head(self.final_norm(h)) if cfg.ee_final_norm else self.lm_head(h)

    # -- losses -----------------------------------------------------------------------------------
    def losses(self, tokens, skip_mask=None):
        """tokens [B,T+1]. Returns (dict of loss terms incl. 'total', forward dict with exit_logits)."""
        cfg = self.cfg
        L, V = cfg.n_layers, cfg.vocab_size
        x, y = tokens[:, :-1], tokens[:, 1:]
        out = self.forward(x, skip_mask)
        task = F.cross_entropy(out["logits"].reshape(-1, V), y.reshape(-1))

        ee_y = y if cfg.ee_targets == "shifted" else x
        w = [1.0 / (l + 1) if cfg.ee_weights == "inverse" else float(l + 1) for l in range(L)]
        wsum = sum(w)
        exit_logits = [self.exit_logits(h, l) for l, h in enumerate(out["hidden"])]
        ee = sum((w[l] / wsum) * F.cross_entropy(exit_logits[l].reshape(-1, V), ee_y.reshape(-1))
                 for l in range(L))

        p = out["p_exit"]                                   # [L,B,T]
        survive = torch.ones_like(p[0])
        lbar = torch.zeros_like(p[0])
        for l in range(L):
            lbar = lbar + l * (p[l] * survive)
            survive = survive * (1 - p[l])
        target = L / 2
        if cfg.route_loss == "per_token":
            route = ((lbar - target) ** 2).mean()
        else:
            route = (lbar.mean() - target) ** 2

        qterms = []
        for m in self.quant_projs():
            w_hat, _ = ternary_weight(m.weight)
            diff = m.weight - w_hat
            qterms.append((diff ** 2).sum() if cfg.quant_loss == "l2" else (diff ** 2).mean())
        quant = torch.stack(qterms).mean()

        total = task
        for lam, term in ((cfg.lambda_ee, ee), (cfg.lambda_q, quant), (cfg.lambda_r, route)):
            if lam != 0:
                total = total + lam * term
        out["exit_logits"] = exit_logits
        return {"task": task, "ee": ee, "route": route, "quant": quant, "total": total}, out


# ----------------------------------------------------------------------------------------------
# training helpers
# ----------------------------------------------------------------------------------------------

def draw_skip_mask(cfg: BitSkipConfig, batch, generator=None):
    """[B, L] int32, 1 = skip, drawn independently per sample and layer with p_l; last layer never."""
    p = torch.tensor(cfg.skip_probs(), dtype=torch.float32)
    u = torch.rand((batch, cfg.n_layers), generator=generator)
    m = (u < p[None, :]).to(torch.int32)
    m[:, -1] = 0
    return m


def make_optimizer(model, opt=None):
    o = {**OPTIM_DEFAULTS, **(opt or {})}
    return torch.optim.AdamW(model.parameters(), lr=o["lr"], betas=(o["beta1"], o["beta2"]),
                             eps=o["adam_eps"], weight_decay=o["weight_decay"], foreach=False)


def train_step(model, optimizer, tokens, skip_mask, grad_clip=1.0):
    """One step; returns (loss dict (detached floats), grad norm before clipping)."""
    optimizer.zero_grad(set_to_none=False)
    losses, _ = model.losses(tokens, skip_mask)
    losses["total"].backward()
    for p in model.parameters():             # parameters without a gradient path get 0
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    gn = torch.nn.utils.clip_grad_norm_(list(model.parameters()), grad_clip)
    optimizer.step()
    return {k: v.item() for k, v in losses.items()}, gn.item()


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def token_batches(path, vocab_size, B, T, g):
    """A function returning B sequences of T + 1 tokens per call, drawn with generator g: windows at random
    starts of a token file (little-endian int32 ids), or uniform random tokens without one. Prints which."""
    if path:
        import numpy as np
        data = torch.from_numpy(np.fromfile(path, dtype="<i4").astype("int64"))
        print(f"data: {path}: {data.numel()} tokens")
    else:
        data = None
        print("data: random tokens")

    def batch():
        if data is None:
            return torch.randint(0, vocab_size, (B, T + 1), generator=g)
        starts = torch.randint(0, data.numel() - T - 1, (B,), generator=g)
        return torch.stack([data[s:s + T + 1] for s in starts.tolist()])
    return batch


def cmd_train(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    overrides = {}
    if args.ctx:
        overrides["ctx"] = args.ctx
    cfg = make_config(args.preset, args.profile, args.variant, **overrides)
    T = cfg.ctx if args.seq is None else args.seq
    model = BitSkipModel(cfg)
    model.train()
    opt = make_optimizer(model, {"lr": args.lr})
    g = torch.Generator().manual_seed(args.seed)
    batch = token_batches(args.data, cfg.vocab_size, args.batch, T, g)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"config: preset={args.preset} profile={args.profile} variant={args.variant} "
          f"params={nparams} T={T} B={args.batch} threads={args.threads}")

    timed_tokens, timed_s = 0, 0.0
    for step in range(args.steps):
        toks = batch()
        mask = draw_skip_mask(cfg, args.batch, g)
        t0 = time.perf_counter()
        losses, gn = train_step(model, opt, toks, mask)
        dt = time.perf_counter() - t0
        if step >= args.warmup:
            timed_tokens += args.batch * T
            timed_s += dt
        if step % args.log_every == 0 or step == args.steps - 1:
            print(f"step {step:5d} loss {losses['total']:.4f} task {losses['task']:.4f} "
                  f"ee {losses['ee']:.4f} route {losses['route']:.4f} quant {losses['quant']:.6f} "
                  f"gnorm {gn:.3f} {dt * 1000:.0f} ms", flush=True)
    tps = timed_tokens / timed_s if timed_s > 0 else float("nan")
    print(f"tokens/s: {tps:.1f} (steps {args.warmup}..{args.steps - 1}, {timed_tokens} tokens in {timed_s:.2f} s)")
    print(f"peak RSS: {peak_rss_mib():.1f} MiB")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train on int32 token ids (or random tokens) and report speed")
    t.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    t.add_argument("--profile", default="paper", choices=sorted(PROFILES))
    t.add_argument("--variant", default="bitskip", choices=sorted(VARIANTS))
    t.add_argument("--steps", type=int, default=20)
    t.add_argument("--batch", type=int, default=4)
    t.add_argument("--seq", type=int, default=None, help="sequence length (default: ctx)")
    t.add_argument("--ctx", type=int, default=None, help="override the preset's ctx")
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--lr", type=float, default=6e-4)
    t.add_argument("--seed", type=int, default=7)
    t.add_argument("--data", default=None, help="binary file of little-endian int32 token ids")
    t.add_argument("--warmup", type=int, default=1, help="steps excluded from the tokens/s figure")
    t.add_argument("--log-every", type=int, default=10)
    args = ap.parse_args(argv)
    if args.cmd == "train":
        cmd_train(args)


if __name__ == "__main__":
    main()
