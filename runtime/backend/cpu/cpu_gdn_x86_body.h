/* The vector GDN kernels of one instruction set, included by cpu_gdn_x86.c once
 * per set with these macros defined: TGT (target attribute), VF (vector type),
 * W (lanes), NV (vectors per column group), RB (rows per block), GW = W * NV,
 * SFX(name) (the set's suffix), LD / ST (unaligned), SET1, ZERO, MUL, ADD, SUB,
 * SILU (fp4rt_csilu per lane), MULX (a scalar times a vector through float64,
 * the float multiply's bits: cpu_gdn_x86.c), ANYSUB (any of W floats
 * subnormal). Every vector operation is one lane-wise IEEE
 * multiply, add or subtract, so each lane runs exactly the scalar chain of one
 * output column of cpu_gdn.c (contract: cpu_gdn_x86.c). */

/* 1 where one of rows x[0 .. rows) (ldx apart) of n floats is subnormal. */
TGT static int SFX(rows_sub)(const float *x, size_t ldx, int rows, int n) {
    int any = 0;
    for (int r = 0; r < rows && !any; r++) {
        const float *xr = x + (size_t)r * ldx;
        int j = 0;
        for (; j + W <= n; j += W)
            any |= ANYSUB(xr + j);
        for (; j < n; j++)
            any |= subnormal(xr[j]);
    }
    return any;
}

/* acc[rr][v] += x * b[v], x = X[rr * ldx] for the RB rows: the float product, or
 * (careful, and one of the RB factors subnormal) all through float64 (MULX: the
 * same bits without the microcode assist an FP32 multiply takes on a subnormal
 * operand). No branch inside the unrolled loops: the accumulators stay in
 * registers. */
#define ROWS_MAC(careful)                                                                          \
    {                                                                                              \
        int slow = 0;                                                                              \
        if (careful)                                                                               \
            for (int rr = 0; rr < RB; rr++)                                                        \
                slow |= subnormal(xj[(size_t)rr * ldx]);                                           \
        if (slow) {                                                                                \
            for (int rr = 0; rr < RB; rr++)                                                        \
                for (int v = 0; v < NV; v++)                                                       \
                    acc[rr][v] = ADD(acc[rr][v], MULX(xj[(size_t)rr * ldx], bv[v]));               \
        } else {                                                                                   \
            for (int rr = 0; rr < RB; rr++) {                                                      \
                VF x = SET1(xj[(size_t)rr * ldx]);                                                 \
                for (int v = 0; v < NV; v++)                                                       \
                    acc[rr][v] = ADD(acc[rr][v], MUL(x, bv[v]));                                   \
            }                                                                                      \
        }                                                                                          \
    }

/* Y[r][e] for r < R (multiple of RB) and e < nw (multiple of GW): a start value
 * (MM_ZERO: +0; MM_SCALE: Y[r][e] * scale) plus X[r][j] * B[j][e]
 * for j = 0 .. n - 1, each product then sum rounded in that order. lower: only
 * the column groups holding a column <= the row block's last row. The column
 * group is the outer loop so its B slab ([n][GW]) stays in L1 across row blocks.
 * fl: R / RB bytes of workspace (row blocks with a subnormal X take the careful
 * products). */
TGT static void SFX(mm)(int R, int nw, int n, const float *X, size_t ldx, const float *B,
                        size_t ldb, float *Y, size_t ldy, int mode, float scale, int lower,
                        unsigned char *fl) {
    VF sc = SET1(scale);
    for (int r0 = 0; r0 < R; r0 += RB)
        fl[r0 / RB] = (unsigned char)SFX(rows_sub)(X + (size_t)r0 * ldx, ldx, RB, n);
    for (int e0 = 0; e0 < nw; e0 += GW)
        for (int r0 = 0; r0 < R; r0 += RB) {
            if (lower && e0 > r0 + RB - 1) continue;
            VF acc[RB][NV];
            for (int rr = 0; rr < RB; rr++)
                for (int v = 0; v < NV; v++) {
                    const float *y = Y + (size_t)(r0 + rr) * ldy + e0 + v * W;
                    acc[rr][v] = mode == MM_ZERO ? ZERO() : MUL(LD(y), sc);
                }
            for (int j = 0; j < n; j++) {
                const float *b = B + (size_t)j * ldb + e0, *xj = X + (size_t)r0 * ldx + j;
                VF bv[NV];
                for (int v = 0; v < NV; v++)
                    bv[v] = LD(b + v * W);
                if (fl[r0 / RB]) {
                    ROWS_MAC(1)
                } else {
                    ROWS_MAC(0)
                }
            }
            for (int rr = 0; rr < RB; rr++)
                for (int v = 0; v < NV; v++)
                    ST(Y + (size_t)(r0 + rr) * ldy + e0 + v * W, acc[rr][v]);
        }
}

/* Y[r][e] += X[r][s] * B[s][e] for s = 0 .. r in order (lower triangle, diagonal
 * included), r < R (multiple of RB), e < nw (multiple of GW); X rows hold R
 * columns. fl: as mm's. */
TGT static void SFX(tri)(int R, int nw, const float *X, size_t ldx, const float *B, size_t ldb,
                         float *Y, size_t ldy, unsigned char *fl) {
    for (int r0 = 0; r0 < R; r0 += RB)
        fl[r0 / RB] = (unsigned char)SFX(rows_sub)(X + (size_t)r0 * ldx, ldx, RB, R);
    for (int e0 = 0; e0 < nw; e0 += GW)
        for (int r0 = 0; r0 < R; r0 += RB) {
            VF acc[RB][NV];
            for (int rr = 0; rr < RB; rr++)
                for (int v = 0; v < NV; v++)
                    acc[rr][v] = LD(Y + (size_t)(r0 + rr) * ldy + e0 + v * W);
            for (int s = 0; s <= r0; s++) { /* every row of the block */
                const float *b = B + (size_t)s * ldb + e0, *xj = X + (size_t)r0 * ldx + s;
                VF bv[NV];
                for (int v = 0; v < NV; v++)
                    bv[v] = LD(b + v * W);
                if (fl[r0 / RB]) {
                    ROWS_MAC(1)
                } else {
                    ROWS_MAC(0)
                }
            }
            for (int rr = 1; rr < RB; rr++) /* row r0 + rr goes on to s = r0 + rr */
                for (int s = r0 + 1; s <= r0 + rr; s++) {
                    float xs = X[(size_t)(r0 + rr) * ldx + s];
                    for (int v = 0; v < NV; v++) {
                        VF b = LD(B + (size_t)s * ldb + e0 + v * W);
                        acc[rr][v] =
                            ADD(acc[rr][v], subnormal(xs) ? MULX(xs, b) : MUL(SET1(xs), b));
                    }
                }
            for (int rr = 0; rr < RB; rr++)
                for (int v = 0; v < NV; v++)
                    ST(Y + (size_t)(r0 + rr) * ldy + e0 + v * W, acc[rr][v]);
        }
}

/* Forward substitution: for r = 1 .. c - 1 in order, U[r][e] -= A[r][s] * U[s][e]
 * for s = 0 .. r - 1 in order, e < nw (multiple of GW). */
TGT static void SFX(fsub)(int c, int nw, const float *A, size_t lda, float *U, size_t ldu) {
    for (int r = 1; r < c; r++)
        for (int e0 = 0; e0 < nw; e0 += GW) {
            float *ur = U + (size_t)r * ldu + e0;
            VF acc[NV];
            for (int v = 0; v < NV; v++)
                acc[v] = LD(ur + v * W);
            for (int s = 0; s < r; s++) {
                float as = A[(size_t)r * lda + s];
                if (subnormal(as)) /* the same bits, no assist */
                    for (int v = 0; v < NV; v++)
                        acc[v] = SUB(acc[v], MULX(as, LD(U + (size_t)s * ldu + e0 + v * W)));
                else
                    for (int v = 0; v < NV; v++)
                        acc[v] = SUB(acc[v], MUL(SET1(as), LD(U + (size_t)s * ldu + e0 + v * W)));
            }
            for (int v = 0; v < NV; v++)
                ST(ur + v * W, acc[v]);
        }
}

/* One chunk of c tokens: the steps of gdn_chunk in cpu_gdn.c, each output
 * element by the same chain. S: [dkp][dvp] (zero padding). c <= the layout's chunk. */
TGT static void SFX(chunk)(const gdn_lay *L, int c, int dk, int dv, const float *q, const float *k,
                           size_t qk_stride, const float *v, size_t v_stride, const float *beta,
                           const float *g, size_t bg_stride, float *S, float *o, size_t o_stride) {
    /* this chunk's rows and columns rounded up (the layout holds the full chunk's) */
    const int cp = (int)up((size_t)c, RB), cw = (int)up((size_t)c, GW), dkp = L->dkp, dvp = L->dvp;
    float *gamma = L->gamma, *eg = L->eg, *dd = L->dd;
    float *Qc = L->Qc, *Kc = Qc + (size_t)cp * dk, *Qe = Kc + (size_t)cp * dk;
    float *QK = L->dots, *A = QK + (size_t)cp * cw, *U = L->uo, *O = U + (size_t)cp * dvp;
    float acc = 0;
    for (int r = 0; r < c; r++)
        gamma[r] = acc += g[r * bg_stride];
    for (int r = c; r < cw; r++)
        gamma[r] = 0;
    for (int r = 0; r < cp; r++) {
        eg[r] = r < c ? fp4rt_cexp(gamma[r]) : 0;
        float *qr = Qc + (size_t)r * dk, *kr = Kc + (size_t)r * dk, *qe = Qe + (size_t)r * dk;
        if (r < c) {
            memcpy(qr, q + r * qk_stride, (size_t)dk * sizeof(float));
            memcpy(kr, k + r * qk_stride, (size_t)dk * sizeof(float));
        } else {
            memset(qr, 0, (size_t)dk * sizeof(float));
            memset(kr, 0, (size_t)dk * sizeof(float));
        }
        for (int i = 0; i < dk; i++)
            qe[i] = qr[i] * eg[r];
    }
    for (int i = 0; i < dk; i++)
        for (int s = 0; s < cw; s++)
            L->KT[(size_t)i * cw + s] = s < cp ? Kc[(size_t)s * dk + i] : 0;
    /* the decays exp(gamma_r - gamma_s), s <= r, in column groups of W */
    for (int r = 0; r < c; r++)
        for (int s0 = 0; s0 <= r; s0 += W)
            ST(L->dm + (size_t)r * cw + s0, CEXP(SUB(SET1(gamma[r]), LD(gamma + s0))));
    /* the q.k and k.k dot products (lower part), then A and the decayed q.k */
    SFX(mm)(cp, cw, dk, Qc, dk, L->KT, cw, QK, cw, MM_ZERO, 0, 1, L->fl);
    SFX(mm)(cp, cw, dk, Kc, dk, L->KT, cw, A, cw, MM_ZERO, 0, 1, L->fl);
    for (int r = 0; r < cp; r++) {
        float *ar = A + (size_t)r * cw, *qkr = QK + (size_t)r * cw;
        const float *dr = L->dm + (size_t)r * cw;
        float br = r < c ? beta[r * bg_stride] : 0;
        for (int s = 0; s < cw; s++) {
            ar[s] = r < c && s < r ? br * ar[s] * dr[s] : 0;
            qkr[s] = r < c && s <= r ? qkr[s] * dr[s] : 0;
        }
    }
    /* k_r S and (q_r exp gamma_r) S in one pass over S: U and O start */
    SFX(mm)(2 * cp, dvp, dk, Kc, dk, S, dvp, U, dvp, MM_ZERO, 0, 0, L->fl);
    for (int r = 0; r < cp; r++) {
        float *ur = U + (size_t)r * dvp;
        if (r >= c) {
            memset(ur, 0, (size_t)dvp * sizeof(float));
            continue;
        }
        float br = beta[r * bg_stride], egr = eg[r];
        const float *vr = v + r * v_stride;
        for (int e = 0; e < dv; e++)
            ur[e] = br * (vr[e] - egr * ur[e]);
        for (int e = dv; e < dvp; e++)
            ur[e] = 0;
    }
    SFX(fsub)(c, dvp, A, cw, U, dvp);
    SFX(tri)(cp, dvp, QK, cw, U, dvp, O, dvp, L->fl);
    for (int r = 0; r < c; r++)
        memcpy(o + r * o_stride, O + (size_t)r * dvp, (size_t)dv * sizeof(float));
    /* state update: S <- exp(gamma_last) S + sum_s (k_s exp(gamma_last - gamma_s))^T U_s */
    float last = gamma[c - 1];
    for (int s = 0; s < c; s++)
        dd[s] = fp4rt_cexp(last - gamma[s]);
    for (int i = 0; i < dkp; i++)
        for (int s = 0; s < c; s++)
            L->KdT[(size_t)i * cw + s] = i < dk ? Kc[(size_t)s * dk + i] * dd[s] : 0;
    SFX(mm)(dkp, dvp, c, L->KdT, cw, U, dvp, S, dvp, MM_SCALE, fp4rt_cexp(last), 0, L->fl);
}

TGT static void SFX(chunked)(int T, int chunk, int dk, int dv, const float *q, const float *k,
                             size_t qk_stride, const float *v, size_t v_stride, const float *beta,
                             const float *g, size_t bg_stride, float *S, float *o, size_t o_stride,
                             float *ws) {
    gdn_lay L = gdn_layout(chunk, dk, dv, GW, RB, ws);
    float *Sw = L.sp ? L.sp : S;
    if (L.sp)
        for (int i = 0; i < L.dkp; i++)
            for (int e = 0; e < L.dvp; e++)
                L.sp[(size_t)i * L.dvp + e] = i < dk && e < dv ? S[(size_t)i * dv + e] : 0;
    for (int t0 = 0; t0 < T; t0 += chunk) {
        int c = FP4RT_MIN(chunk, T - t0);
        SFX(chunk)
        (&L, c, dk, dv, q + t0 * qk_stride, k + t0 * qk_stride, qk_stride, v + t0 * v_stride,
         v_stride, beta + t0 * bg_stride, g + t0 * bg_stride, bg_stride, Sw, o + t0 * o_stride,
         o_stride);
    }
    if (L.sp)
        for (int i = 0; i < dk; i++)
            memcpy(S + (size_t)i * dv, L.sp + (size_t)i * L.dvp, (size_t)dv * sizeof(float));
}

/* The recurrent (decode) gated delta rule of cpu_gdn.c's fp4rt_gdn_recurrent, T
 * tokens, dv a multiple of GW: every step of its chains is a lane-wise
 * multiply, add or subtract of one column e, and the columns are independent,
 * so a block of GW columns runs all its rows (of dk) in two passes instead of
 * four over the state: (1) S *= decay and m += k_i S_i (the decayed row, as
 * the scalar code's second loop reads it), (2) S += k_i u and o += q_i S_i
 * (the updated row, as its last loop reads it); the rows' order, and so every
 * chain's, is the scalar one. The block's dk x GW state stays in L1 between
 * the passes: the state is read from memory once and written once per token. */
TGT static void SFX(recurrent)(int T, int dk, int dv, const float *q, const float *k, size_t qk_stride,
                               const float *v, size_t v_stride, const float *beta, const float *g,
                               size_t bg_stride, float *S, float *o, size_t o_stride) {
    for (int t = 0; t < T; t++) {
        const float *qt = q + t * qk_stride, *kt = k + t * qk_stride, *vt = v + t * v_stride;
        VF decay = SET1(fp4rt_cexp(g[t * bg_stride])), b = SET1(beta[t * bg_stride]);
        float *ot = o + t * o_stride;
        for (int e0 = 0; e0 < dv; e0 += GW) {
            VF u[NV], acc[NV];
            for (int w = 0; w < NV; w++)
                u[w] = ZERO(), acc[w] = ZERO();
            for (int i = 0; i < dk; i++) {
                float *Si = S + (size_t)i * dv + e0;
                VF ki = SET1(kt[i]);
                for (int w = 0; w < NV; w++) {
                    VF sv = MUL(LD(Si + w * W), decay);
                    ST(Si + w * W, sv);
                    u[w] = ADD(u[w], MUL(ki, sv));
                }
            }
            for (int w = 0; w < NV; w++)
                u[w] = MUL(b, SUB(LD(vt + e0 + w * W), u[w]));
            for (int i = 0; i < dk; i++) {
                float *Si = S + (size_t)i * dv + e0;
                VF ki = SET1(kt[i]), qi = SET1(qt[i]);
                for (int w = 0; w < NV; w++) {
                    VF sv = ADD(LD(Si + w * W), MUL(ki, u[w]));
                    ST(Si + w * W, sv);
                    acc[w] = ADD(acc[w], MUL(qi, sv));
                }
            }
            for (int w = 0; w < NV; w++)
                ST(ot + e0 + w * W, acc[w]);
        }
    }
}

/* Causal conv1d + SiLU for the channels [c0, c0 + n), n a multiple of W: cpu_gdn.c
 * conv1d's chain per channel (acc = +0, then w[i] * in[t + i] for i < K in
 * order, in[p] the state for p < K - 1, else input row p - (K - 1)). Rows run
 * in order, each across the channels (x and y are row-major: sequential
 * access); y may be x (in place): the window's last K - 1 inputs live in a
 * ring, entry p in slot p mod (K - 1). ws: the weights transposed [K][n], then
 * the ring [K - 1][n]. */
TGT static inline __attribute__((always_inline)) void
SFX(conv_rows)(int T, int K, const float *x, size_t xs, const float *w, float *state, float *y,
               size_t ys, long c0, long n, float *ws) {
    float *wT = ws, *ring = ws + (size_t)K * n;
    const int H = K - 1; /* window entries kept */
    for (long j = 0; j < n; j++) {
        for (int i = 0; i < K; i++)
            wT[i * n + j] = w[(c0 + j) * K + i];
        for (int i = 0; i < H; i++)
            ring[i * n + j] = state[(c0 + j) * H + i];
    }
    for (int t = 0; t < T; t++) {
        float *slot[CONV_KMAX]; /* entries t .. t + K - 2 */
        for (int i = 0; i < H; i++)
            slot[i] = ring + (size_t)((t + i) % H) * n;
        const float *xt = x + (size_t)t * xs + c0;
        float *yt = y + (size_t)t * ys + c0;
        for (long j = 0; j < n; j += W) {
            VF cur = LD(xt + j), a = ZERO();
            for (int i = 0; i < H; i++)
                a = ADD(a, MUL(LD(wT + i * n + j), LD(slot[i] + j)));
            a = ADD(a, MUL(LD(wT + (size_t)H * n + j), cur));
            if (H > 0) ST(slot[0] + j, cur); /* entry t + K - 1 takes entry t's slot */
            ST(yt + j, SILU(a));
        }
    }
    for (int i = 0; i < H; i++) { /* the new state: entries T .. T + K - 2 */
        const float *r = ring + (size_t)((T + i) % H) * n;
        for (long j = 0; j < n; j++)
            state[(c0 + j) * H + i] = r[j];
    }
}

TGT static long SFX(conv)(int T, int K, const float *x, size_t xs, const float *w, float *state,
                          float *y, size_t ys, long c0, long c1, float *ws) {
    long n = (c1 - c0) / W * W;
    if (n <= 0) return 0;
    if (K == 4) /* Qwen3.5's kernel: constant loop bounds */
        SFX(conv_rows)(T, 4, x, xs, w, state, y, ys, c0, n, ws);
    else
        SFX(conv_rows)(T, K, x, xs, w, state, y, ys, c0, n, ws);
    return n;
}

#undef ROWS_MAC
