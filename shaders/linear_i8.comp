#version 450
// Prefill NVFP4 W4A4 linear on packed 8-bit integer dot products
// (SPV_KHR_integer_dot_product, OpSDot 4x8 packed), for devices without matrix
// units: y[t, n] = post * sum over 16-blocks b of
//     (sum_i 2 w_i * 2 x_i) * sw_b * sx_b / 4,
// w_i / x_i the E2M1 values of the weight / activation codes (2 e2m1 is an
// integer, |.| <= 12), sw_b the weight's E4M3 block scale and sx_b the
// activation's (act_quant.comp modes 3 / 4: codes as signed bytes, then the
// block scales). Each block's sum is an exact integer; the blocks add in FP32
// in k order (not the CPU's 16 chains: NMSE ~1e-14, not bit-identical).
//
// Layout as linear_mm.comp: 256 invocations, a 64 (rows n) x 64 (tokens t)
// output tile, invocation tid a 4 x 4 micro-tile (rows tn + 16 i, tokens
// tt + 16 j). K goes through shared memory 32 at a time (two blocks): the
// first 128 invocations turn one weight block (8 bytes of nibbles) into four
// words of signed bytes plus its scale, the others copy one activation block.
// Rows / tokens past the tile's end and blocks past K are zero (scale 0).
#extension GL_EXT_spirv_intrinsics : require
#include "common.glsl"

#define TILE 64u
layout(local_size_x = 256) in;
layout(set = 0, binding = 0) readonly buffer X { uint xq[]; }; // act_quant modes 3 / 4 rows
layout(set = 0, binding = 0) readonly buffer XF { float xf[]; };
layout(set = 0, binding = 1) readonly buffer W { uint w[]; };
layout(set = 0, binding = 2) readonly buffer S { uint sc[]; };
layout(set = 0, binding = 3) buffer Y { float y[]; };
#include "linear_pc.glsl"
#include "wlayout.glsl"

// OpSDot (4450) on two words of 4 signed bytes (PackedVectorFormat4x8Bit = 0).
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int sdot4x8(uint a, uint b, spirv_literal int packed_format);

shared uint wc[TILE][8];  // [row][2 blocks x 4 words]
shared float wsb[TILE][2];
shared uint xc[TILE][8];  // [token][2 blocks x 4 words]
shared float xsb[TILE][2];

// 2 * e2m1 of a nibble as a signed byte: magnitudes 0 1 2 3 4 6 8 12.
uint twice_e2m1(uint c) {
    uint m = c & 7u;
    uint v = m < 5u ? m : m == 5u ? 6u : m == 6u ? 8u : 12u;
    return (c & 8u) != 0u ? (256u - v) & 0xffu : v;
}

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint n0 = gl_WorkGroupID.x * TILE, t0 = gl_WorkGroupID.y * TILE;
    uint tn = tid % 16u, tt = tid / 16u;
    uint rw = pc.K / 16u * 5u; // words per activation row
    float acc[4][4];
    for (uint i = 0; i < 4u; i++)
        for (uint j = 0; j < 4u; j++) acc[i][j] = 0.0;
    for (uint kb = 0; kb < pc.K; kb += 32u) {
        uint r = (tid % 128u) / 2u, blk = tid % 2u, g = kb / 16u + blk; // row / token r, block g of K
        bool in_k = g * 16u < pc.K;
        if (tid < 128u) {
            uint n = n0 + r;
            bool live = n < pc.N && in_k;
            for (uint q = 0; q < 4u; q++) {
                uint word = 0u;
                if (live) { // codes 4q .. 4q + 3 of the block: 2 bytes (wlayout.glsl)
                    uint b0 = pc.w_off + (n * pc.K + wpos(g * 16u + 4u * q)) / 2u;
                    uint bytes2 = BYTE_AT(w, b0) | (BYTE_AT(w, b0 + 1u) << 8);
                    for (uint j = 0; j < 4u; j++) word |= twice_e2m1((bytes2 >> (4u * j)) & 15u) << (8u * j);
                }
                wc[r][blk * 4u + q] = word;
            }
            wsb[r][blk] = live ? e4m3_to_f32(BYTE_AT(sc, pc.s_off + n * (pc.K / 16u) + g)) : 0.0;
        } else {
            uint t = t0 + r;
            bool live = t < pc.T && in_k;
            uint xb = pc.x_off + t * pc.x_stride;
            for (uint q = 0; q < 4u; q++) xc[r][blk * 4u + q] = live ? xq[xb + g * 4u + q] : 0u;
            xsb[r][blk] = live ? xf[xb + pc.K / 4u + g] : 0.0;
        }
        barrier();
        for (uint b = 0; b < 2u; b++)
            for (uint i = 0; i < 4u; i++) {
                uint rr = tn + 16u * i;
                for (uint j = 0; j < 4u; j++) {
                    uint cc = tt + 16u * j;
                    int d = 0;
                    for (uint q = 0; q < 4u; q++) d += sdot4x8(wc[rr][b * 4u + q], xc[cc][b * 4u + q], 0);
                    precise float sc2 = wsb[rr][b] * xsb[cc][b];
                    precise float p = float(d) * sc2;
                    acc[i][j] += p;
                }
            }
        barrier();
    }
    for (uint i = 0; i < 4u; i++)
        for (uint j = 0; j < 4u; j++) {
            uint n = n0 + tn + 16u * i, t = t0 + tt + 16u * j;
            if (n < pc.N && t < pc.T)
                y[pc.y_off + t * pc.y_stride + n] =
                    acc[i][j] * 0.25 * (pc.post_off != 0u ? xf[pc.post_off + t] : pc.post);
        }
}
