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
// mode 0 |a|   1 a^2   2 (a-b)^2 (float difference first): the Reduction enum's order
inline acc_t reduce_term(int mode, __global const float* a, __global const float* b, int i) {
    switch (mode) {
        case 0: return acc_addf(acc_zero(), fabs(a[i]));
        case 1: return acc_sqf(a[i]);
        default: return acc_sqf(a[i] - b[i]);
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

__kernel void reduce_partial(int mode, __global const float* a, __global const float* b, int n,
                             __global float2* partials) {
    __local acc_t sh[RWG];
    acc_t s = acc_zero();
    for (int i = get_global_id(0); i < n; i += get_global_size(0)) {
        s = acc_add(s, reduce_term(mode, a, b, i));
    }
    s = local_tree(sh, s);
    if (get_local_id(0) == 0) {
        partials[get_group_id(0)] = acc_pair(s);
    }
}

// out[0] = (hi, lo) of the sum of the partials
__kernel void reduce_final(__global const float2* partials, int nparts, __global float2* out) {
    __local acc_t sh[RWG];
    acc_t s = acc_zero();
    for (int i = get_local_id(0); i < nparts; i += RWG) {
        s = acc_add(s, acc_from_pair(partials[i]));
    }
    s = local_tree(sh, s);
    if (get_local_id(0) == 0) {
        out[0] = acc_pair(s);
    }
}

// ---- GEMM: acc = bias(n) + sum_k A(m, k) * B(k, n) in k order; C = beta == 0 ? alpha*acc : beta*C + alpha*acc --
#define TS 16
__kernel void gemm(int M, int N, int K,
                   __global const float* A, int offA, int sam, int sak,
                   __global const float* B, int offB, int sbk, int sbn,
                   __global float* Cm, int offC, int ldc,
                   __global const float* bias, int hasBias, float alpha, float beta) {
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
        Cm[o] = beta == 0.0f ? alpha * acc : beta * Cm[o] + alpha * acc;
    }
}

// dst[dOff + j] += sum_i src[i*cols + j]: each column summed from 0 in row order, then added
__kernel void sum_rows(__global float* dst, int dOff, __global const float* src, int rows, int cols) {
    int j = get_global_id(0);
    if (j >= cols) return;
    float acc = 0.0f;
    for (int i = 0; i < rows; i++) acc += src[i * cols + j];
    dst[dOff + j] += acc;
}

// ---- pointwise: the Pointwise enum, by ordinal; each case the reference's expression in its order ---
__kernel void pointwise(int op, __global float* out, int oo, __global const float* a, int ao,
                        __global const float* b, int bo, int n, float s) {
    int i = get_global_id(0);
    if (i >= n) return;
    __global float* o = out + oo + i;
    float x = op == 0 ? 0.0f : a[ao + i];
    switch (op) {
        case 0: *o = s; break;                                                   // FILL
        case 1: *o = x + b[bo + i]; break;                                       // ADD
        case 2: *o = x * s; break;                                               // SCALE
        case 3: *o = x * b[bo + i]; break;                                       // MUL
        case 4: *o = *o + x * b[bo + i]; break;                                  // MUL_ADD
        case 5: *o = x > 0.0f ? x : 0.0f; break;                                 // RELU
        case 6: if (b[bo + i] > 0.0f) *o = *o + x; break;                        // RELU_BACKWARD
        case 7: { float r = x > 0.0f ? x : 0.0f; *o = r * r; } break;           // RELU2
        case 8: { float v = b[bo + i]; if (v > 0.0f) *o = *o + x * 2.0f * v; } break; // RELU2_BACKWARD
        case 9: *o = sigmoid_ref(x); break;                                      // SIGMOID
        case 10: { float p = b[bo + i]; *o = *o + x * p * (1.0f - p); } break;   // SIGMOID_BACKWARD
        case 11: *o = *o + s * 2.0f * (x - b[bo + i]); break;                    // SQUARED_ERROR_BACKWARD
        default: {                                                               // TERNARY (s = alpha)
            float thr = 0.5f * s;
            float q = x > thr ? 1.0f : (x < -thr ? -1.0f : 0.0f);
            *o = s * q;
        }
    }
}

// dst row r (dStride apart) = src row r (sStride apart), cols floats each
__kernel void copy2d(__global float* dst, int dOff, int dStride, __global const float* src, int sOff, int sStride,
                     int rows, int cols) {
    int i = get_global_id(0);
    if (i >= rows * cols) return;
    int r = i / cols, c = i - r * cols;
    dst[dOff + r * dStride + c] = src[sOff + r * sStride + c];
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
// ---- indexed rows (the embedding; the scatter-add sequential over rows per column: the reference's order) --
__kernel void rows_gather(__global float* dense, __global const float* table, __global const int* index, int N, int C,
                          int add) {
    int i = get_global_id(0);
    if (i >= N * C) return;
    int n = i / C, c = i - n * C;
    float v = table[index[n] * C + c];
    dense[i] = add ? dense[i] + v : v;
}
__kernel void rows_scatter_add(__global float* table, __global const float* dense, __global const int* index, int N,
                               int C) {
    int c = get_global_id(0);
    if (c >= C) return;
    for (int n = 0; n < N; n++) table[index[n] * C + c] += dense[n * C + c];
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

// ---- the causal softmax rows of (T, T) blocks: row r keeps (r mod T) + 1 entries ---------------------
// one row, query t: entries 0..t max-shifted, exp'd and normalized, the future ones 0
inline void causal_softmax_row(__global float* x, int row, int t, int T) {
    float mx = -INFINITY;
    for (int s = 0; s <= t; s++) if (x[row + s] > mx) mx = x[row + s];
    float sum = 0.0f;
    for (int s = 0; s <= t; s++) { float e = exp_ref(x[row + s] - mx); x[row + s] = e; sum += e; }
    float inv = 1.0f / sum;
    for (int s = 0; s <= t; s++) x[row + s] = x[row + s] * inv;
    for (int s = t + 1; s < T; s++) x[row + s] = 0.0f;
}
// one row's backward on entries 0..t: d = p * (d - sum(p * d)) * scale
inline void causal_softmax_backward_row(__global float* d, int drow, __global const float* p, int prow, int t,
                                        float scale) {
    float pdp = 0.0f;
    for (int s = 0; s <= t; s++) pdp += p[prow + s] * d[drow + s];
    for (int s = 0; s <= t; s++) d[drow + s] = p[prow + s] * (d[drow + s] - pdp) * scale;
}
__kernel void softmax_rows(__global float* x, int off, int rows, int T) {
    int r = get_global_id(0);
    if (r < rows) causal_softmax_row(x, off + r * T, r % T, T);
}
__kernel void softmax_backward_rows(__global float* d, int dOff, __global const float* p, int pOff, int rows, int T,
                                    float scale) {
    int r = get_global_id(0);
    if (r >= rows) return;
    int t = r % T;
    causal_softmax_backward_row(d, dOff + r * T, p, pOff + r * T, t, scale);
    for (int s = t + 1; s < T; s++) d[dOff + r * T + s] = 0.0f;
}

// ---- attention, fused: one work-item per (b, h, t) query row, in the reference's accumulation order ---
__kernel void attention_forward(__global float* out, __global float* probs, __global const float* q,
                                __global const float* k, __global const float* v, __global const float* dropMask,
                                int hasMask, int B, int T, int NH, int NKV, int HS, float scale) {
    int r = get_global_id(0);
    if (r >= B * NH * T) return;
    int t = r % T, h = (r / T) % NH, b = r / (T * NH);
    int kvh = h / (NH / NKV);
    int qo = ((b * T + t) * NH + h) * HS;
    int prow = ((b * NH + h) * T + t) * T;
    for (int s = 0; s <= t; s++) {
        int ko = ((b * T + s) * NKV + kvh) * HS;
        float dot = 0.0f;
        for (int i = 0; i < HS; i++) dot += q[qo + i] * k[ko + i];
        probs[prow + s] = dot * scale;
    }
    causal_softmax_row(probs, prow, t, T);
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
    causal_softmax_backward_row(dscore, prow, probs, prow, t, scale);
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

// ---- fused softmax + cross-entropy over a chunk of R rows: one work-group (RWG items) per row ----------
// rowLoss[r] = (hi, lo) of the row's loss (0 for ignored rows); dlogits written when hasD (may be logits).
__kernel void cross_entropy(__global const float* logits, __global float* dlogits, int hasD,
                            __global const int* targets, int V, float gradScale,
                            __global float2* rowLoss) {
    // no early exit: every work-item reaches every barrier (an ignored row computes and discards)
    __local acc_t sh[RWG];
    __local float shm[RWG];
    int r = get_group_id(0), l = get_local_id(0);
    int row = r * V;
    int target = targets[r];
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
        rowLoss[r] = acc_pair(loss);
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
        rowLoss[r] = valid ? loss : (float2)(0.0f, 0.0f);
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
