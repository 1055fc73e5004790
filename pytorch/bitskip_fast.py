#!/usr/bin/python3
"""BitSkip in PyTorch, written for speed: the benchmark comparator of benchmarks/compare-pytorch.sh.

Same model, same training step and same parameter names as pytorch/bitskip_torch.py (the readable
golden-file oracle, whose docstring states the semantics); pytorch/test_bitskip_fast.py checks that the two
give the same losses and gradients.  What is different is only how the math is executed:

  * BitLinear q/k/v of one block share their (identical) quantized input and run as ONE GEMM against the
    concatenated ternary weights; H-BitLinear projections each have their own LayerNorm, so they run apart.
  * FWHT as GEMMs with the scaled Sylvester matrix (one [P, P] GEMM below P = 1024, two small ones as a
    Kronecker product from 1024 up): faster here than the log2(P) butterfly passes (`--fwht` picks one).
  * attention batched over batch and heads with bmm/baddbmm and an additive causal mask; GQA without
    copying K/V: the query heads that share a KV head are stacked along the rows of one bmm.
  * straight-through quantizers as autograd Functions (no `x + (x_hat - x).detach()` temporaries; the
    backward is the identity), relu(y)^2 as one Function that saves only its input.
  * the LM head and cross-entropy of every head pass (the task head and, with early exit, each exit) in
    ONE autograd Function that runs chunks of rows: logits of one chunk, softmax in place, the chunk's
    gradient at once (dH rows, and dW accumulated into one [V, d] buffer), so no [B, T, V] logits are
    ever kept, like the Java engine's headLoss.  The exit losses enter with their constant weights.
  * AdamW with foreach=True; the gradient norm with torch._foreach_norm.

Run:  /usr/bin/python3 pytorch/bitskip_fast.py train --preset small --variant bitskip --batch 8 --threads 2 --steps 4
      /usr/bin/python3 pytorch/bitskip_fast.py flops --preset small --variant bitskip --batch 8
      /usr/bin/python3 pytorch/bitskip_fast.py sgemm --rows 2048 --k 256 --n 50257 --threads 2
"""
import argparse
import math
import os
import sys
import time

# Fresh large allocations page-fault on every step (glibc hands blocks over 32 MiB, and after a free even
# smaller ones, back to the kernel); on this machine a fault costs ~13 us per 4 KiB page, which made the
# first version of this file 5x slower.  Keep freed memory in the process, as the JVM keeps its heap:
# re-exec once with glibc's tunables set (BITSKIP_FAST_MALLOC=0 keeps the defaults).  And let idle OpenMP
# threads sleep at once (OMP_WAIT_POLICY=PASSIVE; the caller's setting wins): torch's OpenMP pool and
# OpenBLAS's own threads take turns on the same cores, and GOMP's default spinning after each parallel
# region took the cores from OpenBLAS (small baseline B=8 on the shared machine, load ~6: 16 s/step
# spinning, 6 s passive) -- the same reason both sides run with OPENBLAS_THREAD_TIMEOUT=4.
_MALLOC_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 36), "MALLOC_TOP_PAD_": str(1 << 28),
               "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
if __name__ == "__main__" and os.environ.get("BITSKIP_FAST_MALLOC", "1") != "0" \
        and any(os.environ.get(k) != v for k, v in _MALLOC_ENV.items()):
    os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, **_MALLOC_ENV})

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bitskip_torch as bt  # noqa: E402  (configuration, presets, init: shared with the oracle)

BitSkipConfig = bt.BitSkipConfig
make_config = bt.make_config
PRESETS, PROFILES, VARIANTS = bt.PRESETS, bt.PROFILES, bt.VARIANTS

HEAD_CHUNK_ELEMS = 1 << 25   # rows per head chunk = this / V (128 MiB of logits: 667 rows at V = 50257)
FWHT_MODE = "auto"
# "bf16": the step's forward runs under torch.autocast("cpu", torch.bfloat16) (PyTorch's own mixed precision:
# matmuls in bf16 through oneDNN, activations between them as autocast leaves them), and the fused head loss (a
# custom autograd Function: its products take bf16 operands explicitly, whatever autocast does, and its backward
# runs outside autocast), as the engine's bf16 mode does; their results are bf16 (torch 1.13 has no
# bf16 x bf16 -> float32 product on the CPU), taken to float32 at once.  Master weights, AdamW state and the
# loss sums stay float32.  Every LayerNorm takes its input through unbf16 (float32 for a bf16 tensor, else
# unchanged): torch 1.13's CPU layer_norm refuses a bf16 input with float32 gain and bias, and under autocast a
# LayerNorm right after a product gets its bf16 output (the H-BitLinear norms of o_proj and down_proj); the
# engine's norms are float32 too.
PRECISION = "fp32"


def unbf16(x):
    return x.float() if x.dtype == torch.bfloat16 else x

# ----------------------------------------------------------------------------------------------
# quantizers
# ----------------------------------------------------------------------------------------------


class _ActQuant(torch.autograd.Function):
    """Per-token absmax quantization, straight-through: same op order as bitskip_torch.act_quant."""

    @staticmethod
    def forward(ctx, x, Q):
        s = x.abs().amax(dim=-1, keepdim=True).clamp_min_(1e-6)
        v = x * Q
        v.div_(s).round_().clamp_(-Q, Q)
        return v.mul_(s).div_(Q)

    @staticmethod
    def backward(ctx, g):
        return g, None


def act_quant(x, bits):
    return _ActQuant.apply(x, float(2 ** (bits - 1) - 1))


class _Ste(torch.autograd.Function):
    """Forward: the given (detached) quantized weight; backward: the gradient passes to the latent weight."""

    @staticmethod
    def forward(ctx, w, w_hat):
        return w_hat

    @staticmethod
    def backward(ctx, g):
        return g, None


@torch.no_grad()
def ternary(w):
    alpha = w.abs().mean().clamp_min(1e-6)
    thr = 0.5 * alpha
    return ((w > thr).to(w.dtype) - (w < -thr).to(w.dtype)).mul_(alpha)


class _Relu2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y):
        ctx.save_for_backward(y)
        r = torch.relu(y)
        return r.mul_(r)

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * torch.relu(y).mul_(2.0)


relu2 = _Relu2.apply


class _Dropout(torch.autograd.Function):
    """Inverted dropout with the mask drawn by uniform_ (2-5x cheaper here than F.dropout's bernoulli_)."""

    @staticmethod
    def forward(ctx, x, p):
        keep = torch.empty_like(x).uniform_().ge_(p).mul_(1.0 / (1.0 - p))
        ctx.save_for_backward(keep)
        return x * keep

    @staticmethod
    def backward(ctx, g):
        (keep,) = ctx.saved_tensors
        return g * keep, None


def dropout(x, p, training):
    return _Dropout.apply(x, p) if (training and p > 0) else x


class _QuantLoss(torch.autograd.Function):
    """mean over matrices of sum((W - W_hat)^2) (l2) or its mean (mse); gradient 2 (W - W_hat) / (n count),
    recomputed in backward instead of kept."""

    @staticmethod
    def forward(ctx, l2, w_hats, *ws):
        ctx.l2, ctx.w_hats = l2, w_hats
        ctx.save_for_backward(*ws)
        tot = torch.zeros((), dtype=torch.float64)
        for w, wh in zip(ws, w_hats):
            d = _scratch("quant_diff", (w.numel(),), w.dtype)
            torch.sub(w.reshape(-1), wh.reshape(-1), out=d)
            tot += torch.dot(d, d).double() / (1 if l2 else w.numel())
        return (tot / len(ws)).to(ws[0].dtype)

    @staticmethod
    def backward(ctx, g):
        ws = ctx.saved_tensors
        out = []
        for w, wh in zip(ws, ctx.w_hats):
            c = 2.0 / len(ws) / (1 if ctx.l2 else w.numel())
            out.append(torch.sub(w, wh).mul_(g * c))
        return (None, None) + tuple(out)

_HCACHE = {}


def hadamard_matrix(P, dtype, scale_of=None):
    """The [P, P] Sylvester matrix times f32(1/sqrt(scale_of)) (scale_of defaults to P)."""
    n = P if scale_of is None else scale_of
    key = (P, n, dtype)
    if key not in _HCACHE:
        H = torch.ones(1, 1, dtype=torch.float64)
        while H.shape[0] < P:
            H = torch.cat((torch.cat((H, H), 1), torch.cat((H, -H), 1)), 0)
        scale = float(torch.tensor(1.0 / math.sqrt(n), dtype=torch.float32))   # the spec's f32(1/sqrt(P))
        _HCACHE[key] = (H * scale).to(dtype).contiguous()
    return _HCACHE[key]


def fwht_scaled(u):
    """FWHT(u) * f32(1/sqrt(P)) over the last dim (the scale rounded to float32, as the spec has it).

    matmul: one GEMM with the scaled [P, P] Sylvester matrix (2 P^2 flops a row); kron: H_P = H_a (x) H_b
    with a b = P, so the row viewed as [a, b] is multiplied by H_b on the right and H_a on the left
    (2 P (a + b) flops a row); butterfly: the oracle's log2(P) passes.  auto (the default): kron from
    P = 1024 up, matmul below (measured fastest on this machine: at 2048 rows, forward + backward,
    P = 256 matmul 36 ms, kron 75, butterfly 37-84; P = 1024 matmul 110-196, kron 74-90, butterfly 522)."""
    P = u.shape[-1]
    mode = FWHT_MODE
    if mode == "auto":
        mode = "kron" if P >= 1024 else "matmul"
    if mode == "matmul":
        return torch.matmul(u, hadamard_matrix(P, u.dtype))
    if mode == "kron":
        a = 1 << ((P.bit_length() - 1) // 2)
        b = P // a
        lead = u.shape[:-1]
        y = torch.matmul(u.reshape(-1, a, b), hadamard_matrix(b, u.dtype, scale_of=P))
        return torch.matmul(hadamard_matrix(a, u.dtype, scale_of=1), y).reshape(*lead, P)
    return bt.fwht(u) * float(torch.tensor(1.0 / math.sqrt(P), dtype=torch.float32))


# ----------------------------------------------------------------------------------------------
# model (module tree and parameter names as bitskip_torch's)
# ----------------------------------------------------------------------------------------------


class QuantProj(bt.QuantProj):
    """The oracle's module (so init_weights and the parameter names are the same), executed faster."""

    def __init__(self, in_features, out_features, cfg):
        super().__init__(in_features, out_features, cfg)
        self.w_hat = None  # the ternary weight of this step, set once per step by the model

    def quant_input(self, x):
        if self.hadamard:
            u = F.layer_norm(unbf16(x), (self.in_features,), self.norm.weight, self.norm.bias, self.norm.eps)
            if self.in_eff != self.in_features:
                u = F.pad(u, (0, self.in_eff - self.in_features))
            x = fwht_scaled(u)
        return act_quant(x, self.bits)

    def ste_weight(self):
        return _Ste.apply(self.weight, self.w_hat)

    def forward(self, x):
        y = F.linear(self.quant_input(x), self.ste_weight())
        return relu2(y) if self.relu2 else y


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, hs = cfg.d_model, cfg.head_size
        self.cfg = cfg
        self.q_proj = QuantProj(d, cfg.n_heads * hs, cfg)
        self.k_proj = QuantProj(d, cfg.n_kv_heads * hs, cfg)
        self.v_proj = QuantProj(d, cfg.n_kv_heads * hs, cfg)
        self.o_proj = QuantProj(cfg.n_heads * hs, d, cfg)

    def forward(self, h, rope, mask):
        cfg = self.cfg
        B, T, d = h.shape
        NH, NKV, hs = cfg.n_heads, cfg.n_kv_heads, cfg.head_size
        rep = NH // NKV
        x = F.layer_norm(unbf16(h), (d,), eps=cfg.ln_eps) if (cfg.attn_input_norm and not cfg.hadamard) else h
        if not cfg.hadamard:   # one quantized input, one GEMM for q, k, v
            xq = act_quant(x, self.q_proj.bits)
            w = torch.cat((self.q_proj.ste_weight(), self.k_proj.ste_weight(), self.v_proj.ste_weight()), 0)
            qkv = F.linear(xq, w)
            if self.q_proj.relu2:
                qkv = relu2(qkv)
        else:
            qkv = torch.cat((self.q_proj(x), self.k_proj(x), self.v_proj(x)), -1)
        qkv = qkv.view(B, T, NH + 2 * NKV, hs)
        cs, sn = rope                                   # [T, 1, hs] each: [c, c] and [-s, s]
        qk = qkv[:, :, :NH + NKV]
        half = hs // 2
        qk = qk * cs + torch.cat((qk[..., half:], qk[..., :half]), -1) * sn
        # q: [B, NKV, rep*T, hs] (the rep query heads of one KV head stacked along rows); k, v: [B*NKV, T, hs]
        q = qk[:, :, :NH].reshape(B, T, NKV, rep, hs).permute(0, 2, 3, 1, 4).reshape(B * NKV, rep * T, hs)
        k = qk[:, :, NH:].permute(0, 2, 1, 3).reshape(B * NKV, T, hs)
        v = qkv[:, :, NH + NKV:].permute(0, 2, 1, 3).reshape(B * NKV, T, hs)
        scores = torch.baddbmm(mask, q, k.transpose(1, 2), beta=1.0, alpha=1.0 / math.sqrt(hs))
        probs = torch.softmax(scores, dim=-1)
        probs = dropout(probs, cfg.dropout, self.training)
        out = torch.bmm(probs, v)                       # [B*NKV, rep*T, hs]
        out = out.view(B, NKV, rep, T, hs).permute(0, 3, 1, 2, 4).reshape(B, T, NH * hs)
        return self.o_proj(out)


class FFN(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.up_proj = QuantProj(cfg.d_model, cfg.ffn_dim, cfg)
        self.down_proj = QuantProj(cfg.ffn_dim, cfg.d_model, cfg)
        self.dropout = cfg.dropout

    def forward(self, h):
        m = relu2(self.up_proj(h))      # the oracle's F.relu(up_proj(h)) ** 2 (on top of the projection's own)
        m = dropout(m, self.dropout, self.training)
        return self.down_proj(m)


class Router(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg.d_model
        self.norm = nn.LayerNorm(d, eps=cfg.ln_eps)
        self.fc1 = nn.Linear(d, d // 4)
        self.fc2 = nn.Linear(d // 4, 1)

    def forward(self, h):
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(self.norm(h))))).squeeze(-1)


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.attn = Attention(cfg)
        self.attn_norm = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
        self.ffn = FFN(cfg)
        self.ffn_norm = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
        self.router = Router(cfg)

    def forward(self, h, rope, mask):
        p = self.cfg.dropout
        h = self.attn_norm(unbf16(h + dropout(self.attn(h, rope, mask), p, self.training)))
        return self.ffn_norm(unbf16(h + dropout(self.ffn(h), p, self.training)))


_SCRATCH = {}


def _scratch(name, shape, dtype):
    t = _SCRATCH.get(name)
    if t is None or t.shape != torch.Size(shape) or t.dtype != dtype:
        t = _SCRATCH[name] = torch.empty(shape, dtype=dtype)
    return t


class _HeadLoss(torch.autograd.Function):
    """sum_e weights[e] * CE(hs[e] @ W^T, targets[e]) over head passes e, chunked over rows.

    forward computes each chunk's logits, its loss and at once its gradient (softmax - onehot): dH rows of
    that pass and dW accumulated into one buffer; nothing of size V is kept beyond one chunk.  Returns the
    weighted total and (non-differentiable) the per-pass mean losses."""

    @staticmethod
    def forward(ctx, W, weights, targets, *hs):
        V = W.shape[0]
        rows = max(16, HEAD_CHUNK_ELEMS // V)
        dW = _scratch("head_dW", W.shape, W.dtype).zero_()
        dhs, losses = [], []
        buf = _scratch("head_logits", (rows, V), W.dtype)   # one logits chunk, kept from step to step
        bf16 = PRECISION == "bf16"
        Wop = W.to(torch.bfloat16) if bf16 else W            # the head's operand, converted once per pass
        for e, h in enumerate(hs):
            h2 = h.reshape(-1, h.shape[-1]).to(W.dtype)
            t = targets[e].reshape(-1)
            N = h2.shape[0]
            we = float(weights[e]) / N
            dh = torch.empty_like(h2)
            tot = torch.zeros((), dtype=torch.float64)
            for r0 in range(0, N, rows):
                r1 = min(N, r0 + rows)
                hc, tc = h2[r0:r1], t[r0:r1]
                hop = hc.to(torch.bfloat16) if bf16 else hc
                if bf16:
                    lg = buf[:r1 - r0].copy_(torch.mm(hop, Wop.t()))      # [r, V], float32
                else:
                    lg = torch.mm(hc, W.t(), out=buf[:r1 - r0])            # [r, V]
                mx = lg.amax(dim=1, keepdim=True)
                tgt = lg.gather(1, tc[:, None])
                lg.sub_(mx).exp_()
                s = lg.sum(dim=1, keepdim=True)
                tot += (s.log() + mx - tgt).sum().double()
                lg.div_(s)
                lg.scatter_add_(1, tc[:, None], torch.full_like(tgt, -1.0))  # softmax - onehot
                if we != 0.0:
                    lg.mul_(we)
                    if bf16:
                        g16 = lg.to(torch.bfloat16)
                        dh[r0:r1].copy_(torch.mm(g16, Wop))
                        dW.add_(torch.mm(g16.t(), hop))
                    else:
                        torch.mm(lg, W, out=dh[r0:r1])
                        dW.addmm_(lg.t(), hc)
                else:
                    dh[r0:r1].zero_()
            losses.append(tot / N)
            dhs.append(dh.view(h.shape))
        ctx.save_for_backward(dW, *dhs)
        per = torch.stack(losses).to(W.dtype)
        total = sum(float(weights[e]) * per[e] for e in range(len(hs)))
        ctx.mark_non_differentiable(per)
        return total.reshape(()), per

    @staticmethod
    def backward(ctx, g, _gper):
        dW, *dhs = ctx.saved_tensors
        if g.item() == 1.0:                 # the usual case: no copies (AccumulateGrad adds dW into .grad)
            return (dW, None, None) + tuple(dhs)
        return (dW * g, None, None) + tuple(d * g for d in dhs)


class BitSkipModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.d_model)
        if cfg.learned_positions:
            self.pos_embeddings = nn.Embedding(cfg.ctx, cfg.d_model)
        self.layers = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
        self.final_norm = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        bt.BitSkipModel.init_weights(self)
        self._tables = {}

    quant_projs = bt.BitSkipModel.quant_projs

    def tables(self, T, dtype):
        key = (T, dtype)
        if key not in self._tables:
            cfg = self.cfg
            cos, sin = bt.rope_tables(T, cfg.head_size, cfg.rope_theta)
            cs = torch.cat((cos, cos), -1)[:, None, :].to(dtype)
            sn = torch.cat((-sin, sin), -1)[:, None, :].to(dtype)
            rep = cfg.n_heads // cfg.n_kv_heads
            m = torch.full((T, T), float("-inf"), dtype=dtype).triu_(1)
            self._tables[key] = ((cs, sn), m.repeat(rep, 1).contiguous())
        return self._tables[key]

    def losses(self, tokens, skip_mask=None):
        """tokens [B, T+1]; returns the loss dict (as the oracle's; 'total' differentiable)."""
        cfg = self.cfg
        L = cfg.n_layers
        x, y = tokens[:, :-1], tokens[:, 1:]
        B, T = x.shape
        dtype = self.lm_head.weight.dtype
        projs = self.quant_projs()
        for m in projs:
            m.w_hat = ternary(m.weight)
        rope, mask = self.tables(T, dtype)
        h = self.tok_embeddings(x)
        if cfg.learned_positions:
            h = h + self.pos_embeddings.weight[:T][None]
        hidden, p_exit = [], []
        for l, block in enumerate(self.layers):
            out = block(h, rope, mask)
            if skip_mask is not None and l < L - 1:
                skip = skip_mask[:, l].bool()
                if skip.any():
                    out = torch.where(skip[:, None, None], h, out)
            h = out
            hidden.append(h)
            p_exit.append(block.router(h))

        # head passes: the task head, and with lambda_ee > 0 each exit (the last exit shares the task's pass
        # when it has the same norm and targets, as in the Java engine)
        ee_on = cfg.lambda_ee != 0
        w = [1.0 / (l + 1) if cfg.ee_weights == "inverse" else float(l + 1) for l in range(L)]
        wsum = sum(w)
        ee_y = y if cfg.ee_targets == "shifted" else x
        last_shared = cfg.ee_final_norm and cfg.ee_targets == "shifted"
        fn = lambda t: F.layer_norm(unbf16(t), (cfg.d_model,), self.final_norm.weight, self.final_norm.bias, cfg.ln_eps)
        hs, tg, wt, exit_idx = [fn(h)], [y], [1.0], {}
        if ee_on:
            for l in range(L):
                c = cfg.lambda_ee * w[l] / wsum
                if l == L - 1 and last_shared:
                    wt[0] += c
                    exit_idx[l] = 0
                else:
                    exit_idx[l] = len(hs)
                    hs.append(fn(hidden[l]) if cfg.ee_final_norm else hidden[l])
                    tg.append(ee_y)
                    wt.append(c)
        head_total, per = _HeadLoss.apply(self.lm_head.weight, wt, tg, *hs)
        task = per[0]
        ee = sum((w[l] / wsum) * per[exit_idx[l]] for l in range(L)) if ee_on else torch.tensor(float("nan"))

        p = torch.stack(p_exit)
        survive = torch.ones_like(p[0])
        lbar = torch.zeros_like(p[0])
        for l in range(L):
            lbar = lbar + l * (p[l] * survive)
            survive = survive * (1 - p[l])
        target = L / 2
        route = ((lbar - target) ** 2).mean() if cfg.route_loss == "per_token" else (lbar.mean() - target) ** 2

        quant = _QuantLoss.apply(cfg.quant_loss == "l2", [m.w_hat for m in projs], *[m.weight for m in projs])

        total = head_total
        for lam, term in ((cfg.lambda_q, quant), (cfg.lambda_r, route)):
            if lam != 0:
                total = total + lam * term
        return {"task": task, "ee": ee, "route": route, "quant": quant, "total": total}


# ----------------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------------


class AdamW:
    """torch.optim.AdamW's update (decoupled weight decay, bias corrections, eps outside the sqrt), all in
    place with foreach ops and one persistent scratch tensor per parameter: no allocation per step."""

    def __init__(self, params, lr, betas, eps, weight_decay):
        self.params = [p for p in params]
        self.lr, (self.b1, self.b2), self.eps, self.wd = lr, betas, eps, weight_decay
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.tmp = [torch.empty_like(p) for p in self.params]
        self.t = 0
        for p in self.params:            # gradients exist from the start, so autograd accumulates in place
            if p.grad is None:
                p.grad = torch.zeros_like(p)

    def zero_grad(self, set_to_none=False):
        torch._foreach_zero_([p.grad for p in self.params])

    @torch.no_grad()
    def step(self):
        self.t += 1
        ps, gs = self.params, [p.grad for p in self.params]
        bc1, bc2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        torch._foreach_mul_(ps, 1 - self.lr * self.wd)
        torch._foreach_mul_(self.m, self.b1)
        torch._foreach_add_(self.m, gs, alpha=1 - self.b1)
        torch._foreach_mul_(self.v, self.b2)
        torch._foreach_addcmul_(self.v, gs, gs, 1 - self.b2)
        c2 = math.sqrt(bc2)
        for p, m, v, tmp in zip(ps, self.m, self.v, self.tmp):
            torch.sqrt(v, out=tmp)
            tmp.div_(c2).add_(self.eps)
            p.addcdiv_(m, tmp, value=-self.lr / bc1)


def make_optimizer(model, opt=None):
    o = {**bt.OPTIM_DEFAULTS, **(opt or {})}
    return AdamW(model.parameters(), lr=o["lr"], betas=(o["beta1"], o["beta2"]),
                 eps=o["adam_eps"], weight_decay=o["weight_decay"])


def clip_grad_norm(params, max_norm):
    grads = [p.grad for p in params]
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads, 2.0)), 2.0)
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        torch._foreach_mul_(grads, coef)
    return norm


def train_step(model, optimizer, tokens, skip_mask, grad_clip=1.0):
    optimizer.zero_grad(set_to_none=False)
    if PRECISION == "bf16":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            losses = model.losses(tokens, skip_mask)
    else:
        losses = model.losses(tokens, skip_mask)
    losses["total"].backward()
    params = list(model.parameters())
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    gn = clip_grad_norm(params, grad_clip)
    optimizer.step()
    return {k: v.item() for k, v in losses.items()}, gn.item()


# ----------------------------------------------------------------------------------------------
# FLOPs and the sgemm peak (the one place compare-pytorch.sh takes them from)
# ----------------------------------------------------------------------------------------------


def head_passes(cfg):
    """LM-head passes per training step: 1 without early exit; L (the last exit shares the task's pass when
    it has the same norm and targets, paper profile) or L + 1 (reference profile) with it."""
    if cfg.lambda_ee == 0:
        return 1
    return cfg.n_layers + (0 if (cfg.ee_final_norm and cfg.ee_targets == "shifted") else 1)


def train_flops_per_token(cfg, T):
    """GEMM FLOPs of one training step per token: 3 x the forward's (forward, dX, dW).

    Counted: the six quantized projections per layer (the H-BitLinear weight is [out, P], P = next power of
    two of the input), attention's QK^T and PV over the full T x T square (both sides compute it with
    GEMMs), the router's two Linears, and every LM-head pass (2 d V each).  Not counted: the FWHT (a
    butterfly is O(P log P) per row, not a GEMM), norms, quantizers, softmax, AdamW."""
    d, hs, L, V = cfg.d_model, cfg.head_size, cfg.n_layers, cfg.vocab_size
    NH, NKV, ff = cfg.n_heads, cfg.n_kv_heads, cfg.ffn_dim
    p = (lambda n: bt.next_pow2(n)) if cfg.hadamard else (lambda n: n)
    proj = p(d) * (NH * hs + 2 * NKV * hs + ff) + p(NH * hs) * d + p(ff) * d
    attn = 2 * NH * T * hs
    router = d * (d // 4) + d // 4
    fwd = 2 * L * (proj + attn + router) + 2 * d * V * head_passes(cfg)
    return 3 * fwd


def sgemm_peak(rows, k, n, threads, reps=3):
    """Best-of-reps GFLOP/s of torch.mm([rows, k] x [k, n]) on `threads` threads (float32)."""
    torch.set_num_threads(threads)
    a = torch.randn(rows, k)
    b = torch.randn(n, k)
    out = torch.empty(rows, n)
    torch.mm(a, b.t(), out=out)
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b.t(), out=out)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * rows * k * n / best / 1e9


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------


def cmd_train(args):
    global FWHT_MODE, PRECISION
    FWHT_MODE = args.fwht
    PRECISION = args.precision
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    overrides = {"ctx": args.ctx} if args.ctx else {}
    cfg = make_config(args.preset, args.profile, args.variant, **overrides)
    T = cfg.ctx if args.seq is None else args.seq
    model = BitSkipModel(cfg)
    model.train()
    opt = make_optimizer(model, {"lr": args.lr})
    g = torch.Generator().manual_seed(args.seed)
    batch = bt.token_batches(args.data, cfg.vocab_size, args.batch, T, g)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"config: preset={args.preset} profile={args.profile} variant={args.variant} "
          f"params={nparams} T={T} B={args.batch} threads={args.threads} impl=fast fwht={FWHT_MODE} precision={PRECISION}")

    prof = None
    if args.profile_out:
        from torch.profiler import profile, ProfilerActivity
        prof = profile(activities=[ProfilerActivity.CPU], record_shapes=True)
    timed_tokens, timed_s = 0, 0.0
    for step in range(args.steps):
        toks = batch()
        mask = bt.draw_skip_mask(cfg, args.batch, g)
        if prof is not None and step == args.steps - 1:
            prof.__enter__()
        t0 = time.perf_counter()
        losses, gn = train_step(model, opt, toks, mask)
        dt = time.perf_counter() - t0
        if prof is not None and step == args.steps - 1:
            prof.__exit__(None, None, None)
        if step >= args.warmup:
            timed_tokens += args.batch * T
            timed_s += dt
        if step % args.log_every == 0 or step == args.steps - 1:
            print(f"step {step:5d} loss {losses['total']:.4f} task {losses['task']:.4f} "
                  f"ee {losses['ee']:.4f} route {losses['route']:.4f} quant {losses['quant']:.6f} "
                  f"gnorm {gn:.3f} {dt * 1000:.0f} ms", flush=True)
    tps = timed_tokens / timed_s if timed_s > 0 else float("nan")
    print(f"tokens/s: {tps:.1f} (steps {args.warmup}..{args.steps - 1}, {timed_tokens} tokens in {timed_s:.2f} s)")
    print(f"peak RSS: {bt.peak_rss_mib():.1f} MiB")
    fl = train_flops_per_token(cfg, T)
    print(f"model GFLOP/s: {fl * tps / 1e9:.1f} ({fl / 1e6:.1f} MFLOP per token)")
    if prof is not None:
        with open(args.profile_out, "w") as f:
            f.write(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=40))
            f.write("\n")
            f.write(prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=40))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train on int32 token ids (or random tokens) and report speed")
    f = sub.add_parser("flops", help="print the training GEMM FLOPs per token and the head shape")
    s = sub.add_parser("sgemm", help="measure torch.mm GFLOP/s at one shape")
    for a in (t, f):
        a.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
        a.add_argument("--profile", default="paper", choices=sorted(PROFILES))
        a.add_argument("--variant", default="bitskip", choices=sorted(VARIANTS))
        a.add_argument("--batch", type=int, default=4)
        a.add_argument("--seq", type=int, default=None, help="sequence length (default: ctx)")
        a.add_argument("--ctx", type=int, default=None, help="override the preset's ctx")
    t.add_argument("--steps", type=int, default=20)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--lr", type=float, default=6e-4)
    t.add_argument("--seed", type=int, default=7)
    t.add_argument("--data", default=None, help="binary file of little-endian int32 token ids")
    t.add_argument("--warmup", type=int, default=1, help="steps excluded from the tokens/s figure")
    t.add_argument("--log-every", type=int, default=10)
    t.add_argument("--fwht", default="auto", choices=("auto", "matmul", "kron", "butterfly"))
    t.add_argument("--precision", default="fp32", choices=("fp32", "bf16"),
                   help="bf16: torch.autocast(cpu, bfloat16) for the forward, bf16 operands in the head loss")
    t.add_argument("--profile-out", default=None, help="write a torch.profiler table of the last step here")
    s.add_argument("--rows", type=int, required=True)
    s.add_argument("--k", type=int, required=True)
    s.add_argument("--n", type=int, default=50257)
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)
    if args.cmd == "train":
        cmd_train(args)
    elif args.cmd == "flops":
        cfg = make_config(args.preset, args.profile, args.variant, **({"ctx": args.ctx} if args.ctx else {}))
        T = cfg.ctx if args.seq is None else args.seq
        print(f"flops_per_token: {train_flops_per_token(cfg, T)}")
        print(f"head_shape: {args.batch * T} {cfg.d_model} {cfg.vocab_size}")
        print(f"head_passes: {head_passes(cfg)}")
    elif args.cmd == "sgemm":
        print(f"sgemm GFLOP/s: {sgemm_peak(args.rows, args.k, args.n, args.threads, args.reps):.1f} "
              f"({args.rows}x{args.k} @ {args.k}x{args.n}, {args.threads} threads)")


if __name__ == "__main__":
    main()
