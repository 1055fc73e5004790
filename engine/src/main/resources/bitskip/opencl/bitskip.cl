// bitskip OpenCL kernels: one-to-one translations of kernels-java (same names, same order of float
// operations where the reference's result is reproduced bit for bit). Compiled once per device with
//   -cl-fp32-correctly-rounded-divide-sqrt  (so / and sqrt round as Java's)
//   -DRWG=<reduction work-group size>  and  -DUSE_FP64 when the device has cl_khr_fp64.
// Where the reference accumulates in double, USE_FP64 does the same; without fp64 a double-float
// (float2 hi/lo, TwoSum) accumulator stands in. Reductions run in a fixed order (fixed grid), so every
// result is deterministic on a given device.
#pragma OPENCL FP_CONTRACT OFF

#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double acc_t;
inline acc_t acc_zero(void) { return 0.0; }
inline acc_t acc_addf(acc_t s, float x) { return s + (double) x; }
inline acc_t acc_add(acc_t a, acc_t b) { return a + b; }
inline acc_t acc_sqf(float x) { return (double) x * (double) x; }
inline float2 acc_pair(acc_t s) { float hi = (float) s; return (float2)(hi, (float)(s - (double) hi)); }
inline acc_t acc_from_pair(float2 p) { return (double) p.x + (double) p.y; }
inline float acc_div_to_float(acc_t s, int n) { return (float)(s / n); }
inline float exp_ref(float x) { return (float) exp((double) x); }          // (float) Math.exp(x)
inline float rstd_ref(float v) { return (float)(1.0 / sqrt((double) v)); }  // (float)(1.0/Math.sqrt(v))
inline float sigmoid_ref(float x) { return (float)(1.0 / (1.0 + exp(-(double) x))); }
#else
typedef float2 acc_t; // hi + lo
inline acc_t acc_zero(void) { return (float2)(0.0f, 0.0f); }
inline float2 two_sum(float a, float b) {
    float s = a + b;
    float bb = s - a;
    float e = (a - (s - bb)) + (b - bb);
    return (float2)(s, e);
}
inline acc_t acc_add(acc_t a, acc_t b) {
    float2 t = two_sum(a.x, b.x);
    float lo = t.y + a.y + b.y;
    float2 r = two_sum(t.x, lo);
    return r;
}
inline acc_t acc_addf(acc_t s, float x) { return acc_add(s, (float2)(x, 0.0f)); }
inline acc_t acc_sqf(float x) { float p = x * x; return (float2)(p, fma(x, x, -p)); }
inline float2 acc_pair(acc_t s) { return s; }
inline acc_t acc_from_pair(float2 p) { return p; }
inline float acc_div_to_float(acc_t s, int n) { return (s.x + s.y) / (float) n; }
inline float exp_ref(float x) { return exp(x); }
inline float rstd_ref(float v) { return 1.0f / sqrt(v); }
inline float sigmoid_ref(float x) { return 1.0f / (1.0f + exp(-x)); }
#endif

// ---- reductions: partial sums over a fixed grid, then one work-group in a fixed order --------------
// mode 0 |a|   1 a^2   2 (a-b)^2 (float difference first)   3 a   4 (a - t)^2   5 pairs (a[2i], a[2i+1])
inline acc_t reduce_term(int mode, __global const float* a, __global const float* b, int i, float t) {
    switch (mode) {
        case 0: return acc_addf(acc_zero(), fabs(a[i]));
        case 1: return acc_sqf(a[i]);
        case 2: return acc_sqf(a[i] - b[i]);
#ifdef USE_FP64
        case 4: { double d = (double) a[i] - (double) t; return d * d; }
#else
        case 4: return acc_sqf(a[i] - t);
#endif
        case 5: return acc_from_pair((float2)(a[2 * i], a[2 * i + 1]));
        default: return acc_addf(acc_zero(), a[i]);
    }
}

inline acc_t local_tree(__local acc_t* sh, acc_t s) {
    int l = get_local_id(0);
    sh[l] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int w = RWG / 2; w > 0; w >>= 1) {
        if (l < w) {
            sh[l] = acc_add(sh[l], sh[l + w]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    return sh[0];
}

__kernel void reduce_partial(int mode, __global const float* a, __global const float* b, int n, float t,
                             __global float2* partials) {
    __local acc_t sh[RWG];
    acc_t s = acc_zero();
    for (int i = get_global_id(0); i < n; i += get_global_size(0)) {
        s = acc_add(s, reduce_term(mode, a, b, i, t));
    }
    s = local_tree(sh, s);
    if (get_local_id(0) == 0) {
        partials[get_group_id(0)] = acc_pair(s);
    }
}

// post 0: out[slot] = (hi, lo) of the sum   1: out[slot].x = max((float)(sum/n), 1e-6f) (ternary alpha)
//      2: out[slot].x = (float)(sum/n)
__kernel void reduce_final(__global const float2* partials, int nparts, int post, int n,
                           __global float2* out, int slot) {
    __local acc_t sh[RWG];
    acc_t s = acc_zero();
    for (int i = get_local_id(0); i < nparts; i += RWG) {
        s = acc_add(s, acc_from_pair(partials[i]));
    }
    s = local_tree(sh, s);
    if (get_local_id(0) == 0) {
        if (post == 0) {
            out[slot] = acc_pair(s);
        } else {
            float m = acc_div_to_float(s, n);
            if (post == 1 && m < 1e-6f) {
                m = 1e-6f;
            }
            out[slot] = (float2)(m, 0.0f);
        }
    }
}

// ---- GEMM: C(m, n) = [C +] bias(n) + sum_k A(m, k) * B(k, n), strided, in the reference's order -----
#define TS 16
__kernel void gemm(int M, int N, int K,
                   __global const float* A, int offA, int sam, int sak,
                   __global const float* B, int offB, int sbk, int sbn,
                   __global float* Cm, int offC, int ldc,
                   __global const float* bias, int hasBias, int accumulate) {
    __local float As[TS][TS + 1];
    __local float Bs[TS][TS + 1];
    int lm = get_local_id(0), ln = get_local_id(1);
    int m = get_group_id(0) * TS + lm;
    int n = get_group_id(1) * TS + ln;
    float acc = (hasBias && n < N) ? bias[n] : 0.0f;
    for (int k0 = 0; k0 < K; k0 += TS) {
        int ka = k0 + ln;
        As[lm][ln] = (m < M && ka < K) ? A[offA + m * sam + ka * sak] : 0.0f;
        int kb = k0 + lm;
        int nb = get_group_id(1) * TS + ln;
        Bs[lm][ln] = (kb < K && nb < N) ? B[offB + kb * sbk + nb * sbn] : 0.0f;
        barrier(CLK_LOCAL_MEM_FENCE);
        int kmax = min(TS, K - k0);
        for (int kk = 0; kk < kmax; kk++) {
            acc += As[lm][kk] * Bs[kk][ln];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (m < M && n < N) {
        int o = offC + m * ldc + n;
        Cm[o] = accumulate ? Cm[o] + acc : acc;
    }
}

// dbias[o] += sum_n dout[n*OC + o]
__kernel void colsum_acc(__global float* dbias, __global const float* dout, int N, int OC) {
    int o = get_global_id(0);
    if (o >= OC) return;
    float acc = 0.0f;
    for (int n = 0; n < N; n++) acc += dout[n * OC + o];
    dbias[o] += acc;
}

// ---- pointwise ------------------------------------------------------------------------------------
__kernel void relu2_forward(__global float* out, __global const float* inp, int n) {
    int i = get_global_id(0);
    if (i < n) { float r = inp[i] > 0.0f ? inp[i] : 0.0f; out[i] = r * r; }
}
__kernel void relu2_backward(__global float* dinp, __global const float* dout, __global const float* inp, int n) {
    int i = get_global_id(0);
    if (i < n && inp[i] > 0.0f) dinp[i] += dout[i] * 2.0f * inp[i];
}
__kernel void relu_forward(__global float* out, __global const float* inp, int n) {
    int i = get_global_id(0);
    if (i < n) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}
__kernel void relu_backward(__global float* dinp, __global const float* dout, __global const float* out, int n) {
    int i = get_global_id(0);
    if (i < n && out[i] > 0.0f) dinp[i] += dout[i];
}
__kernel void sigmoid_forward(__global float* out, __global const float* inp, int n) {
    int i = get_global_id(0);
    if (i < n) out[i] = sigmoid_ref(inp[i]);
}
__kernel void sigmoid_backward(__global float* dinp, __global const float* dout, __global const float* out, int n) {
    int i = get_global_id(0);
    if (i < n) dinp[i] += dout[i] * out[i] * (1.0f - out[i]);
}
__kernel void add(__global float* out, __global const float* a, __global const float* b, int n) {
    int i = get_global_id(0);
    if (i < n) out[i] = a[i] + b[i];
}
__kernel void scale(__global float* t, int n, float f) {
    int i = get_global_id(0);
    if (i < n) t[i] = t[i] * f;
}
__kernel void squared_error_backward(__global float* dw, __global const float* w, __global const float* wHat,
                                     int n, float s) {
    int i = get_global_id(0);
    if (i < n) dw[i] += s * 2.0f * (w[i] - wHat[i]);
}

// ---- dropout: Dropout.uniform (splitmix64 of seed + counter * golden gamma, top 24 bits) ---------------
inline float dropout_uniform(ulong seed, ulong counter) {
    ulong z = seed + counter * 0x9E3779B97F4A7C15UL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
    z = z ^ (z >> 31);
    return (float)(uint)(z >> 40) / 16777216.0f;
}
__kernel void dropout_mask(__global float* mask, int n, float p, float keep, long seed, long offset) {
    int i = get_global_id(0);
    if (i < n) mask[i] = dropout_uniform((ulong) seed, (ulong)(offset + i)) < p ? 0.0f : keep;
}
__kernel void dropout_forward(__global float* out, __global const float* inp, __global const float* mask, int n) {
    int i = get_global_id(0);
    if (i < n) out[i] = inp[i] * mask[i];
}
__kernel void dropout_backward(__global float* dinp, __global const float* dout, __global const float* mask, int n) {
    int i = get_global_id(0);
    if (i < n) dinp[i] += dout[i] * mask[i];
}

// ---- embedding (scatter-add sequential over rows per column: the reference's order, no races) ------
__kernel void embedding_forward(__global float* out, __global const int* tokens, __global const float* wte,
                                int N, int C) {
    int i = get_global_id(0);
    if (i >= N * C) return;
    int n = i / C, c = i - n * C;
    out[i] = wte[tokens[n] * C + c];
}
__kernel void embedding_backward(__global float* dwte, __global const float* dout, __global const int* tokens,
                                 int N, int C) {
    int c = get_global_id(0);
    if (c >= C) return;
    for (int n = 0; n < N; n++) dwte[tokens[n] * C + c] += dout[n * C + c];
}
__kernel void positions_forward(__global float* out, __global const float* wpe, int B, int T, int C, int pos0) {
    int i = get_global_id(0);
    if (i >= B * T * C) return;
    int c = i % C, t = (i / C) % T;
    out[i] += wpe[(pos0 + t) * C + c];
}
__kernel void positions_backward(__global float* dwpe, __global const float* dout, int B, int T, int C, int pos0) {
    int i = get_global_id(0);
    if (i >= T * C) return;
    int t = i / C, c = i - t * C;
    float acc = 0.0f;
    for (int b = 0; b < B; b++) acc += dout[(b * T + t) * C + c];
    dwpe[(pos0 + t) * C + c] += acc;
}

// ---- layer skipping ----------------------------------------------------------------------------------
__kernel void select_samples(__global float* out, __global const float* computed, __global const float* skipped,
                             __global const int* skip, int B, int rows) {
    int i = get_global_id(0);
    if (i >= B * rows) return;
    out[i] = skip[i / rows] != 0 ? skipped[i] : computed[i];
}
__kernel void select_samples_backward(__global float* dc, __global float* ds, __global const float* d,
                                      __global const int* skip, int B, int rows) {
    int i = get_global_id(0);
    if (i >= B * rows) return;
    if (skip[i / rows] != 0) { dc[i] = 0.0f; ds[i] += d[i]; } else { dc[i] = d[i]; }
}

// ---- LayerNorm: one work-item per row, the reference's order ----------------------------------------
__kernel void layernorm_forward(__global float* out, __global float* mean, __global float* rstd,
                                __global const float* inp, __global const float* weight, __global const float* bias,
                                int hasWeight, int N, int C, float eps) {
    int n = get_global_id(0);
    if (n >= N) return;
    int row = n * C;
    float m = 0.0f;
    for (int c = 0; c < C; c++) m += inp[row + c];
    m = m / C;
    float var = 0.0f;
    for (int c = 0; c < C; c++) { float d = inp[row + c] - m; var += d * d; }
    var = var / C;
    float s = rstd_ref(var + eps);
    for (int c = 0; c < C; c++) {
        float norm = (inp[row + c] - m) * s;
        out[row + c] = hasWeight ? norm * weight[c] + bias[c] : norm;
    }
    mean[n] = m;
    rstd[n] = s;
}
__kernel void layernorm_backward_inp(__global float* dinp, __global const float* dout, __global const float* inp,
                                     __global const float* weight, int hasWeight, __global const float* mean,
                                     __global const float* rstd, int N, int C) {
    int n = get_global_id(0);
    if (n >= N) return;
    int row = n * C;
    float m = mean[n], s = rstd[n];
    float dnormMean = 0.0f, dnormNormMean = 0.0f;
    for (int c = 0; c < C; c++) {
        float norm = (inp[row + c] - m) * s;
        float dnorm = hasWeight ? dout[row + c] * weight[c] : dout[row + c];
        dnormMean += dnorm;
        dnormNormMean += dnorm * norm;
    }
    dnormMean = dnormMean / C;
    dnormNormMean = dnormNormMean / C;
    for (int c = 0; c < C; c++) {
        float norm = (inp[row + c] - m) * s;
        float dnorm = hasWeight ? dout[row + c] * weight[c] : dout[row + c];
        dinp[row + c] += s * (dnorm - dnormMean - norm * dnormNormMean);
    }
}
__kernel void layernorm_backward_params(__global float* dweight, __global float* dbias, __global const float* dout,
                                        __global const float* inp, __global const float* mean,
                                        __global const float* rstd, int N, int C) {
    int c = get_global_id(0);
    if (c >= C) return;
    float dw = dweight[c], db = dbias[c];
    for (int n = 0; n < N; n++) {
        float norm = (inp[n * C + c] - mean[n]) * rstd[n];
        dw += dout[n * C + c] * norm;
        db += dout[n * C + c];
    }
    dweight[c] = dw;
    dbias[c] = db;
}

// ---- quantization ---------------------------------------------------------------------------------
__kernel void ternary_quantize(__global float* wHat, int hasWHat, __global char* codes, int hasCodes,
                               __global const float* w, int n, __global const float2* scalars, int slot) {
    int i = get_global_id(0);
    if (i >= n) return;
    float alpha = scalars[slot].x;
    float thr = 0.5f * alpha;
    float q = 0.0f;
    if (w[i] > thr) q = 1.0f; else if (w[i] < -thr) q = -1.0f;
    if (hasCodes) codes[i] = (char) q;
    if (hasWHat) wHat[i] = alpha * q;
}
__kernel void activation_quantize(__global float* out, __global float* scale, __global const float* inp,
                                  int N, int C, float Q) {
    int n = get_global_id(0);
    if (n >= N) return;
    int row = n * C;
    float s = 0.0f;
    for (int c = 0; c < C; c++) { float a = fabs(inp[row + c]); if (a > s) s = a; }
    if (s < 1e-6f) s = 1e-6f;
    for (int c = 0; c < C; c++) {
        float q = rint((Q * inp[row + c]) / s);
        if (q > Q) q = Q; else if (q < -Q) q = -Q;
        out[row + c] = (s * q) / Q;
    }
    scale[n] = s;
}

// ---- Hadamard -------------------------------------------------------------------------------------
__kernel void pad_forward(__global float* out, __global const float* inp, int N, int C, int P) {
    int i = get_global_id(0);
    if (i >= N * P) return;
    int n = i / P, p = i - n * P;
    out[i] = p < C ? inp[n * C + p] : 0.0f;
}
__kernel void pad_backward(__global float* dinp, __global const float* dout, int N, int C, int P) {
    int i = get_global_id(0);
    if (i >= N * C) return;
    int n = i / C, c = i - n * C;
    dinp[i] += dout[n * P + c];
}
// in place, one work-group per row, the row in local memory (P <= FWHT_LOCAL)
__kernel void fwht_local(__global float* x, int P, float scale, __local float* sh) {
    int row = get_group_id(0) * P;
    int l = get_local_id(0), ls = get_local_size(0);
    for (int p = l; p < P; p += ls) sh[p] = x[row + p];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = 1; h < P; h *= 2) {
        for (int b = l; b < P / 2; b += ls) {
            int j = (b / h) * 2 * h + (b % h);
            float a = sh[j], c = sh[j + h];
            sh[j] = a + c;
            sh[j + h] = a - c;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int p = l; p < P; p += ls) x[row + p] = sh[p] * scale;
}
// in place, one work-item per row (rows too long for local memory)
__kernel void fwht_row(__global float* x, int N, int P, float scale) {
    int n = get_global_id(0);
    if (n >= N) return;
    int row = n * P;
    for (int h = 1; h < P; h *= 2)
        for (int i = 0; i < P; i += 2 * h)
            for (int j = i; j < i + h; j++) {
                float a = x[row + j], b = x[row + j + h];
                x[row + j] = a + b;
                x[row + j + h] = a - b;
            }
    for (int p = 0; p < P; p++) x[row + p] = x[row + p] * scale;
}

// ---- RoPE -----------------------------------------------------------------------------------------
__kernel void rope_forward(__global float* out, __global const float* inp, __global const float* cs,
                           __global const float* sn, int B, int T, int NH, int HS, int pos0) {
    int hs2 = HS / 2;
    int i = get_global_id(0);
    if (i >= B * T * NH * hs2) return;
    int j = i % hs2, bth = i / hs2;
    int t = (bth / NH) % T;
    int base = bth * HS, tab = (pos0 + t) * hs2;
    float c = cs[tab + j], s = sn[tab + j];
    float x1 = inp[base + j], x2 = inp[base + j + hs2];
    out[base + j] = x1 * c - x2 * s;
    out[base + j + hs2] = x2 * c + x1 * s;
}
__kernel void rope_backward(__global float* dinp, __global const float* dout, __global const float* cs,
                            __global const float* sn, int B, int T, int NH, int HS, int pos0) {
    int hs2 = HS / 2;
    int i = get_global_id(0);
    if (i >= B * T * NH * hs2) return;
    int j = i % hs2, bth = i / hs2;
    int t = (bth / NH) % T;
    int base = bth * HS, tab = (pos0 + t) * hs2;
    float c = cs[tab + j], s = sn[tab + j];
    float dy1 = dout[base + j], dy2 = dout[base + j + hs2];
    dinp[base + j] += dy1 * c + dy2 * s;
    dinp[base + j + hs2] += -dy1 * s + dy2 * c;
}

// ---- attention: one work-item per (b, h, t) query row ----------------------------------------------
__kernel void attention_forward(__global float* out, __global float* probs, __global const float* q,
                                __global const float* k, __global const float* v, __global const float* dropMask,
                                int hasMask, int B, int T, int NH, int NKV, int HS, float scale) {
    int r = get_global_id(0);
    if (r >= B * NH * T) return;
    int t = r % T, h = (r / T) % NH, b = r / (T * NH);
    int kvh = h / (NH / NKV);
    int qo = ((b * T + t) * NH + h) * HS;
    int prow = ((b * NH + h) * T + t) * T;
    float mx = -INFINITY;
    for (int s = 0; s <= t; s++) {
        int ko = ((b * T + s) * NKV + kvh) * HS;
        float dot = 0.0f;
        for (int i = 0; i < HS; i++) dot += q[qo + i] * k[ko + i];
        float score = dot * scale;
        probs[prow + s] = score;
        if (score > mx) mx = score;
    }
    float sum = 0.0f;
    for (int s = 0; s <= t; s++) { float e = exp_ref(probs[prow + s] - mx); probs[prow + s] = e; sum += e; }
    float inv = 1.0f / sum;
    for (int s = 0; s <= t; s++) probs[prow + s] = probs[prow + s] * inv;
    for (int s = t + 1; s < T; s++) probs[prow + s] = 0.0f;
    for (int i = 0; i < HS; i++) out[qo + i] = 0.0f;
    for (int s = 0; s <= t; s++) {
        float w = hasMask ? probs[prow + s] * dropMask[prow + s] : probs[prow + s];
        int vo = ((b * T + s) * NKV + kvh) * HS;
        for (int i = 0; i < HS; i++) out[qo + i] += w * v[vo + i];
    }
}
// dscore (B, NH, T, T) and dq; dk and dv follow in attention_backward_kv
__kernel void attention_backward_q(__global float* dq, __global float* dscore, __global const float* dout,
                                   __global const float* q, __global const float* k, __global const float* v,
                                   __global const float* probs, __global const float* dropMask, int hasMask,
                                   int B, int T, int NH, int NKV, int HS, float scale) {
    int r = get_global_id(0);
    if (r >= B * NH * T) return;
    int t = r % T, h = (r / T) % NH, b = r / (T * NH);
    int kvh = h / (NH / NKV);
    int qo = ((b * T + t) * NH + h) * HS;
    int prow = ((b * NH + h) * T + t) * T;
    for (int s = 0; s <= t; s++) {
        int vo = ((b * T + s) * NKV + kvh) * HS;
        float m = hasMask ? dropMask[prow + s] : 1.0f;
        float dot = 0.0f;
        for (int i = 0; i < HS; i++) dot += dout[qo + i] * v[vo + i];
        dscore[prow + s] = dot * m;
    }
    float pdp = 0.0f;
    for (int s = 0; s <= t; s++) pdp += probs[prow + s] * dscore[prow + s];
    for (int s = 0; s <= t; s++) dscore[prow + s] = probs[prow + s] * (dscore[prow + s] - pdp) * scale;
    for (int i = 0; i < HS; i++) {
        float acc = dq[qo + i];
        for (int s = 0; s <= t; s++) {
            int ko = ((b * T + s) * NKV + kvh) * HS;
            acc += dscore[prow + s] * k[ko + i];
        }
        dq[qo + i] = acc;
    }
}
// one work-item per (b, s, kvh, i): sums over the query heads of the group and t >= s, in the reference's order
__kernel void attention_backward_kv(__global float* dk, __global float* dv, __global const float* dscore,
                                    __global const float* dout, __global const float* q,
                                    __global const float* probs, __global const float* dropMask, int hasMask,
                                    int B, int T, int NH, int NKV, int HS) {
    int r = get_global_id(0);
    if (r >= B * T * NKV * HS) return;
    int i = r % HS, kvh = (r / HS) % NKV, s = (r / (HS * NKV)) % T, b = r / (HS * NKV * T);
    int group = NH / NKV;
    float accv = dv[r], acck = dk[r];
    for (int h = kvh * group; h < (kvh + 1) * group; h++) {
        for (int t = s; t < T; t++) {
            int qo = ((b * T + t) * NH + h) * HS;
            int prow = ((b * NH + h) * T + t) * T;
            float m = hasMask ? dropMask[prow + s] : 1.0f;
            float w = probs[prow + s] * m;
            accv += w * dout[qo + i];
            acck += dscore[prow + s] * q[qo + i];
        }
    }
    dv[r] = accv;
    dk[r] = acck;
}

// ---- routing loss -----------------------------------------------------------------------------------
__kernel void routing_lbar(__global float* lbar, __global const float* pExit, int L, int N) {
    int n = get_global_id(0);
    if (n >= N) return;
    float survive = 1.0f, e = 0.0f;
    for (int l = 0; l < L; l++) {
        float p = pExit[l * N + n];
        e += (float) l * (p * survive);
        survive = survive * (1.0f - p);
    }
    lbar[n] = e;
}
__kernel void routing_backward(__global float* dpExit, __global const float* pExit, __global const float* lbar,
                               int L, int N, float target, int batchMean, float gradScale,
                               __global const float2* scalars, int slot) {
    int n = get_global_id(0);
    if (n >= N) return;
    float residual = batchMean ? scalars[slot].x - target : lbar[n] - target;
    float dlbar = gradScale * 2.0f * residual / (float) N;
    float rest = 0.0f;
    for (int l = L - 1; l >= 0; l--) {
        float survive = 1.0f;
        for (int i = 0; i < l; i++) survive = survive * (1.0f - pExit[i * N + n]);
        dpExit[l * N + n] += dlbar * survive * ((float) l - rest);
        float p = pExit[l * N + n];
        rest = (float) l * p + (1.0f - p) * rest;
    }
}

// ---- fused softmax + cross-entropy over a chunk of R rows: one work-group (RWG items) per row ----------
// rowLoss[2*(row0 + r)] = (hi, lo) of the row's loss (0 for ignored rows); dlogits written when hasD.
__kernel void cross_entropy(__global const float* logits, __global float* dlogits, int hasD,
                            __global const int* targets, int row0, int V, float gradScale,
                            __global float2* rowLoss) {
    // no early exit: every work-item reaches every barrier (an ignored row computes and discards)
    __local acc_t sh[RWG];
    __local float shm[RWG];
    int r = get_group_id(0), l = get_local_id(0);
    int row = r * V;
    int target = targets[row0 + r];
    int valid = target >= 0;
    float mx = -INFINITY;
    for (int i = l; i < V; i += RWG) mx = fmax(mx, logits[row + i]);
    shm[l] = mx;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int w = RWG / 2; w > 0; w >>= 1) {
        if (l < w) shm[l] = fmax(shm[l], shm[l + w]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    mx = shm[0];
    acc_t s = acc_zero();
#ifdef USE_FP64
    for (int i = l; i < V; i += RWG) s += exp((double)(logits[row + i] - mx));
    s = local_tree(sh, s);
    double sum = s;
    if (l == 0) {
        double loss = valid ? ((double) mx - (double) logits[row + (valid ? target : 0)]) + log(sum) : 0.0;
        rowLoss[row0 + r] = acc_pair(loss);
    }
    if (hasD) {
        for (int i = l; i < V; i += RWG) {
            float p = (float)(exp((double)(logits[row + i] - mx)) / sum);
            float onehot = i == target ? 1.0f : 0.0f;
            dlogits[row + i] = valid ? (p - onehot) * gradScale : 0.0f;
        }
    }
#else
    for (int i = l; i < V; i += RWG) s = acc_addf(s, exp(logits[row + i] - mx));
    s = local_tree(sh, s);
    float sum = s.x + s.y;
    if (l == 0) {
        float logSum = log(s.x) + log1p(s.y / s.x);
        acc_t loss = acc_addf(acc_addf(acc_zero(), mx - logits[row + (valid ? target : 0)]), logSum);
        rowLoss[row0 + r] = valid ? loss : (float2)(0.0f, 0.0f);
    }
    if (hasD) {
        for (int i = l; i < V; i += RWG) {
            float p = exp(logits[row + i] - mx) / sum;
            float onehot = i == target ? 1.0f : 0.0f;
            dlogits[row + i] = valid ? (p - onehot) * gradScale : 0.0f;
        }
    }
#endif
}

// ---- AdamW (PyTorch single-tensor order; the scalars come from the host in double, as the reference) ----
__kernel void adamw(__global float* param, __global const float* grad, __global float* m, __global float* v, int n,
                    float decay, float w1, float beta2, float oneMinusBeta2, float bc2Sqrt, float negStepSize,
                    float eps) {
    int i = get_global_id(0);
    if (i >= n) return;
    float g = grad[i];
    float p = param[i] * decay;
    float mi = m[i];
    if (w1 < 0.5f) mi = mi + w1 * (g - mi); else mi = g - (g - mi) * (1.0f - w1);
    float vi = v[i] * beta2 + oneMinusBeta2 * g * g;
    float denom = sqrt(vi) / bc2Sqrt + eps;
    p = p + negStepSize * mi / denom;
    m[i] = mi;
    v[i] = vi;
    param[i] = p;
}
