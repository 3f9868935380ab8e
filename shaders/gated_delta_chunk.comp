#version 450
// Gated delta rule, chunked form (prefill, T > 1), mirroring fp4rt_gdn_chunked in
// runtime/backend/cpu/cpu_gdn.c: chunks of GDN_CHUNK (64, FP4RT_GDN_CHUNK) tokens, the same
// operation order per state column. Workgroup (h, cb) owns value head h and state
// columns e = cb * CB .. cb * CB + CB - 1 (the chunked form couples tokens, never
// columns; gamma and A depend on k, beta, g only and are recomputed per column
// block). Per chunk of c tokens (docs/MODEL.md 2.4):
//   gamma_r = sum_{s<=r} g_s;  A[r][s] = beta_r (k_r . k_s) cexp(gamma_r - gamma_s), s < r
//   U_r = beta_r (v_r - cexp(gamma_r) k_r S) - sum_{s<r} A[r][s] U_s   (forward substitution)
//   o_r = (q_r cexp(gamma_r)) S + sum_{s<=r} (q_r . k_s) cexp(gamma_r - gamma_s) U_s
//   S <- cexp(gamma_last) S + sum_s (k_s cexp(gamma_last - gamma_s))^T U_s
// Every sum and product in the CPU's order, `precise` (never fused), with the
// numerics contract's exp (canon.glsl): bit-identical to the CPU where fp32
// add, multiply and divide are correctly rounded.
// Shared memory: A [64][64] (reused for the q.k matrix), U [64][CB], gamma, beta,
// decays: about 25 KiB. FP32 state S [dk][dv] per value head stays on the GPU.
#include "common.glsl"
#include "gdn.glsl"
layout(local_size_x = WG) in;
layout(set = 0, binding = 0) buffer A_ { float arena[]; };
layout(set = 0, binding = 1) buffer St { float S[]; };
layout(set = 0, binding = 2) readonly buffer Dt { float dt_bias[]; };
layout(set = 0, binding = 3) readonly buffer Na { float neg_a[]; };
layout(push_constant) uniform PC {
    uint T, dk, dv, ratio;
    uint key_dim, x_off, z_off, a_off;
    uint y_off, stride, dt_off, na_off;
    uint s_off; // window skews in floats
} pc;

#define CH 64u // = FP4RT_GDN_CHUNK
#define CB 32u
#define RH (CH * CB / WG) // rows per invocation in the U and output phases
shared float Am[CH * CH], U[CH * CB], gam[CH], bet[CH], dec[CH];

void main() {
    uint h = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x, cb0 = gl_WorkGroupID.y * CB;
    uint kh = h / pc.ratio, dk = pc.dk, dv = pc.dv;
    uint ncol = min(CB, dv - cb0);
    uint sb = pc.s_off + h * dk * dv + cb0;
    uint qb = pc.x_off + kh * dk, kb = pc.x_off + pc.key_dim + kh * dk;
    uint vb = pc.x_off + 2u * pc.key_dim + h * dv + cb0, yb = pc.y_off + h * dv + cb0;
    float na = neg_a[pc.na_off + h], dtb = dt_bias[pc.dt_off + h];
    for (uint t0 = 0; t0 < pc.T; t0 += CH) {
        uint c = min(CH, pc.T - t0);
        // beta, g and the in-chunk cumulative log decay (summed in order, as the CPU)
        if (tid < c) {
            uint r = (t0 + tid) * pc.stride;
            bet[tid] = sigmoid(arena[pc.z_off + r + h]);
            gam[tid] = gdn_g(na, arena[pc.a_off + r + h], dtb);
        }
        barrier();
        if (tid == 0u) {
            float acc = 0.0;
            for (uint r = 0; r < c; r++) gam[r] = acc += gam[r];
        }
        barrier();
        // A (strictly lower) and U before the substitution
        for (uint it = tid; it < c * c; it += WG) {
            uint r = it / c, s = it % c;
            if (s >= r) continue;
            uint kr = kb + (t0 + r) * pc.stride, ks = kb + (t0 + s) * pc.stride;
            precise float d = 0.0;
            for (uint i = 0; i < dk; i++) d += arena[kr + i] * arena[ks + i];
            Am[r * CH + s] = bet[r] * d * cexp(gam[r] - gam[s]);
        }
        // U before the substitution: invocation (e, half) owns column e, rows
        // half * 32 .. + 31, reading each S[i][e] once (sums in i order, as the CPU)
        {
            uint e = tid % CB, r0 = (tid / CB) * RH;
            precise float m[RH];
            for (uint rr = 0; rr < RH; rr++) m[rr] = 0.0;
            if (e < ncol && r0 < c)
                for (uint i = 0; i < dk; i++) {
                    float sv = S[sb + i * dv + e];
                    for (uint rr = 0; rr < RH; rr++)
                        if (r0 + rr < c) m[rr] += arena[kb + (t0 + r0 + rr) * pc.stride + i] * sv;
                }
            for (uint rr = 0; rr < RH; rr++) {
                uint r = r0 + rr;
                if (e < ncol && r < c) {
                    precise float u = bet[r] * (arena[vb + (t0 + r) * pc.stride + e] - cexp(gam[r]) * m[rr]);
                    U[r * CB + e] = u;
                }
            }
        }
        barrier();
        // forward substitution, one invocation per column (columns are independent)
        if (tid < ncol)
            for (uint r = 1; r < c; r++) {
                precise float u = U[r * CB + tid];
                for (uint s = 0; s < r; s++) u -= Am[r * CH + s] * U[s * CB + tid];
                U[r * CB + tid] = u;
            }
        barrier();
        // the decayed q.k matrix (lower, diagonal included) replaces A
        for (uint it = tid; it < c * c; it += WG) {
            uint r = it / c, s = it % c;
            if (s > r) continue;
            uint qr = qb + (t0 + r) * pc.stride, ks = kb + (t0 + s) * pc.stride;
            precise float d = 0.0;
            for (uint i = 0; i < dk; i++) d += arena[qr + i] * arena[ks + i];
            Am[r * CH + s] = d * cexp(gam[r] - gam[s]);
        }
        barrier();
        // outputs with the incoming state, the same ownership as U
        {
            uint e = tid % CB, r0 = (tid / CB) * RH;
            precise float o[RH];
            float eg[RH];
            for (uint rr = 0; rr < RH; rr++) {
                o[rr] = 0.0;
                eg[rr] = r0 + rr < c ? cexp(gam[r0 + rr]) : 0.0;
            }
            if (e < ncol && r0 < c)
                for (uint i = 0; i < dk; i++) {
                    float sv = S[sb + i * dv + e];
                    for (uint rr = 0; rr < RH; rr++)
                        if (r0 + rr < c) o[rr] += (arena[qb + (t0 + r0 + rr) * pc.stride + i] * eg[rr]) * sv;
                }
            for (uint rr = 0; rr < RH; rr++) {
                uint r = r0 + rr;
                if (e < ncol && r < c) {
                    precise float v = o[rr];
                    for (uint j = 0; j <= r; j++) v += Am[r * CH + j] * U[j * CB + e];
                    arena[yb + (t0 + r) * pc.stride + e] = v;
                }
            }
        }
        barrier();
        // state update (dec[j] = exp(gamma_last - gamma_j), as the CPU's d)
        float last = gam[c - 1u], el = cexp(last);
        if (tid < c) dec[tid] = cexp(last - gam[tid]);
        barrier();
        for (uint it = tid; it < dk * CB; it += WG) {
            uint i = it / CB, e = it % CB;
            if (e >= ncol) continue;
            precise float s = S[sb + i * dv + e] * el;
            for (uint j = 0; j < c; j++) s += (arena[kb + (t0 + j) * pc.stride + i] * dec[j]) * U[j * CB + e];
            S[sb + i * dv + e] = s;
        }
        barrier();
    }
}
