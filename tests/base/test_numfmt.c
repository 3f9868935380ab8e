/* Number formats (runtime/base/numfmt.h), checked exhaustively against references
 * computed here independently: E4M3 and E2M1 values from their bit fields,
 * BF16 / F16 rounding by comparing the two neighbouring representable values
 * in exact double arithmetic. Each loop counts as one check and reports its
 * first mismatch. */
#include "runtime/base/numfmt.h"
#include "tests/test_util.h"

#include <math.h>
#include <stdint.h>

static float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* xorshift64*: test inputs only. */
static uint64_t rng_state = 0x243f6a8885a308d3ULL;
static uint64_t rng(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

/* ---- E4M3 --------------------------------------------------------------- */

/* Reference value of an E4M3FN code (NaN for S.1111.111). */
static double e4m3_ref(int c) {
    int s = c >> 7, e = (c >> 3) & 15, m = c & 7;
    if (e == 15 && m == 7) return NAN;
    double v = e == 0 ? m / 512.0 : (8 + m) * ldexp(1.0, e - 10);
    return s ? -v : v;
}

static void test_e4m3(void) {
    int bad = 0, first = -1;
    for (int c = 0; c < 256; c++) {
        double r = e4m3_ref(c);
        float v = fp4rt_e4m3_to_f32((uint8_t)c);
        int ok = isnan(r) ? isnan(v) : (double)v == r && !!signbit(v) == !!signbit(r);
        if (!ok && !bad++) first = c;
    }
    CHECK_MSG(bad == 0, "%d E4M3 decode mismatches, first code 0x%02x", bad, first);
    CHECK(fp4rt_e4m3_to_f32(0x7e) == 448.0f && fp4rt_e4m3_to_f32(0x01) == 0x1p-9f);
    CHECK(fp4rt_e4m3_to_f32(0x08) == 0x1p-6f && fp4rt_e4m3_to_f32(0x07) == 7 * 0x1p-9f);

    /* encode(decode(c)) == c for every finite code, both encoders. */
    bad = 0;
    for (int c = 0; c < 256; c++) {
        if ((c & 0x7f) == 0x7f) continue;
        float v = fp4rt_e4m3_to_f32((uint8_t)c);
        if ((fp4rt_f32_to_e4m3_sat(v) != c || fp4rt_f32_to_e4m3(v) != c) && !bad++) first = c;
    }
    CHECK_MSG(bad == 0, "%d E4M3 round trips fail, first code 0x%02x", bad, first);

    /* Midpoints between neighbours round to the even code; one ulp either side
     * rounds to the nearer one. Both signs. */
    bad = 0;
    for (int c = 0; c < 0x7e; c++) {
        for (int s = 0; s < 2; s++) {
            float lo = (float)e4m3_ref(c), hi = (float)e4m3_ref(c + 1);
            float mid = (lo + hi) / 2; /* exact: 5 significant bits */
            int even = (c & 1) ? c + 1 : c, sg = s ? 0x80 : 0;
            float sgn = s ? -1.0f : 1.0f;
            int ok = fp4rt_f32_to_e4m3_sat(sgn * mid) == (sg | even) &&
                     fp4rt_f32_to_e4m3(sgn * mid) == (sg | even) &&
                     fp4rt_f32_to_e4m3_sat(sgn * nextafterf(mid, 0)) == (sg | c) &&
                     fp4rt_f32_to_e4m3_sat(sgn * nextafterf(mid, 1000)) == (sg | (c + 1));
            if (!ok && !bad++) first = c;
        }
    }
    CHECK_MSG(bad == 0, "%d E4M3 midpoint failures, first between codes 0x%02x and next", bad,
              first);

    /* Subnormals and zero. */
    CHECK(fp4rt_f32_to_e4m3_sat(0x1p-10f) == 0x00);        /* tie between 0 and 2^-9 -> 0 */
    CHECK(fp4rt_f32_to_e4m3_sat(3 * 0x1p-10f) == 0x02);    /* tie between 1 and 2 -> 2 */
    CHECK(fp4rt_f32_to_e4m3_sat(0x1p-9f * 7.5f) == 0x08);  /* tie 7 / 8 (min normal) -> 8 */
    CHECK(fp4rt_f32_to_e4m3_sat(1e-30f) == 0x00 && fp4rt_f32_to_e4m3_sat(-1e-30f) == 0x80);
    CHECK(fp4rt_f32_to_e4m3_sat(-0.0f) == 0x80 && fp4rt_f32_to_e4m3_sat(0.0f) == 0x00);

    /* Saturation and torch-like overflow. */
    CHECK(fp4rt_f32_to_e4m3_sat(449.0f) == 0x7e && fp4rt_f32_to_e4m3_sat(464.0f) == 0x7e);
    CHECK(fp4rt_f32_to_e4m3_sat(465.0f) == 0x7e && fp4rt_f32_to_e4m3_sat(1e30f) == 0x7e);
    CHECK(fp4rt_f32_to_e4m3_sat(INFINITY) == 0x7e && fp4rt_f32_to_e4m3_sat(-INFINITY) == 0xfe);
    CHECK(fp4rt_f32_to_e4m3_sat(-500.0f) == 0xfe);
    CHECK(fp4rt_f32_to_e4m3(456.0f) == 0x7e);              /* rounds to 448 */
    CHECK(fp4rt_f32_to_e4m3(464.0f) == 0x7e);              /* tie 448 / 480 -> even 448 */
    CHECK(fp4rt_f32_to_e4m3(nextafterf(464.0f, 1000)) == 0x7f); /* would be 480: NaN */
    CHECK(fp4rt_f32_to_e4m3(-480.0f) == 0xff && fp4rt_f32_to_e4m3(1e30f) == 0x7f);
    CHECK((fp4rt_f32_to_e4m3(INFINITY) & 0x7f) == 0x7f);
    CHECK((fp4rt_f32_to_e4m3(NAN) & 0x7f) == 0x7f && (fp4rt_f32_to_e4m3_sat(NAN) & 0x7f) == 0x7f);
    CHECK(isnan(fp4rt_e4m3_to_f32(0x7f)) && isnan(fp4rt_e4m3_to_f32(0xff)));
    CHECK(fp4rt_round_e4m3(300.0f) == 288.0f); /* 288, 320: 300 is nearer 288 */
}

/* ---- E2M1 --------------------------------------------------------------- */

static double e2m1_ref(int c) {
    int s = (c >> 3) & 1, e = (c >> 1) & 3, m = c & 1;
    double v = e == 0 ? m * 0.5 : ldexp(1.0 + m / 2.0, e - 1);
    return s ? -v : v;
}

static void test_e2m1(void) {
    int bad = 0;
    for (int c = 0; c < 16; c++) {
        float v = fp4rt_e2m1_to_f32((uint8_t)c);
        if ((double)v != e2m1_ref(c) || !!signbit(v) != (c >= 8)) bad++;
        if (c != 8 && fp4rt_f32_to_e2m1(v) != c) bad++; /* -0 encodes as +0 */
    }
    CHECK_MSG(bad == 0, "%d E2M1 decode / round-trip failures", bad);
    CHECK(fp4rt_e2m1_to_f32(0x17) == 6.0f); /* only the low nibble counts */

    /* Every midpoint: ties go to the code with mantissa 0 (the even code). */
    bad = 0;
    for (int c = 0; c < 7; c++) {
        for (int s = 0; s < 2; s++) {
            float sgn = s ? -1.0f : 1.0f;
            int sg = s ? 8 : 0;
            float mid = (float)((e2m1_ref(c) + e2m1_ref(c + 1)) / 2);
            int even = (c & 1) ? c + 1 : c;
            if (fp4rt_f32_to_e2m1(sgn * mid) != (sg | even)) bad++;
            if (fp4rt_f32_to_e2m1(sgn * nextafterf(mid, 0)) != (sg | c)) bad++;
            if (fp4rt_f32_to_e2m1(sgn * nextafterf(mid, 10)) != (sg | (c + 1))) bad++;
        }
    }
    CHECK_MSG(bad == 0, "%d E2M1 midpoint failures", bad);
    CHECK(fp4rt_f32_to_e2m1(0.25f) == 0 && fp4rt_f32_to_e2m1(0.75f) == 2);
    CHECK(fp4rt_f32_to_e2m1(1.25f) == 2 && fp4rt_f32_to_e2m1(1.75f) == 4);
    CHECK(fp4rt_f32_to_e2m1(2.5f) == 4 && fp4rt_f32_to_e2m1(3.5f) == 6);
    CHECK(fp4rt_f32_to_e2m1(5.0f) == 6 && fp4rt_f32_to_e2m1(-5.0f) == 14);
    /* Saturation, NaN, and the sign of values that round to zero. */
    CHECK(fp4rt_f32_to_e2m1(6.5f) == 7 && fp4rt_f32_to_e2m1(1e30f) == 7);
    CHECK(fp4rt_f32_to_e2m1(INFINITY) == 7 && fp4rt_f32_to_e2m1(-INFINITY) == 15);
    CHECK(fp4rt_f32_to_e2m1(NAN) == 0);
    CHECK(fp4rt_f32_to_e2m1(-0.1f) == 8 && fp4rt_f32_to_e2m1(0.1f) == 0);
}

/* ---- BF16 --------------------------------------------------------------- */

/* RNE of a non-NaN float to BF16 by comparing the two neighbours in double. */
static uint16_t bf16_ref(float f) {
    uint32_t u = f2u(f), sign = u & 0x80000000u, a = u & 0x7fffffffu;
    uint32_t lo = a & 0xffff0000u;
    if (lo == a) return (uint16_t)((sign | lo) >> 16);
    double vlo = (double)u2f(lo), x = (double)u2f(a);
    int e = (int)(lo >> 23);                              /* biased exponent of lo */
    double ulp = ldexp(1.0, (e ? e : 1) - 127 - 7);       /* spacing of BF16 values there */
    double dlo = x - vlo, dhi = vlo + ulp - x;            /* exact */
    uint32_t hi = lo + 0x10000u;                          /* may carry into inf */
    uint32_t r = dlo < dhi ? lo : dhi < dlo ? hi : (((lo >> 16) & 1) ? hi : lo);
    return (uint16_t)((sign | r) >> 16);
}

static void test_bf16(void) {
    int bad = 0;
    uint32_t first = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = fp4rt_bf16_to_f32((uint16_t)h);
        uint16_t back = fp4rt_f32_to_bf16(f);
        int ok = isnan(f) ? ((back & 0x7f80) == 0x7f80 && (back & 0x7f) && (back >> 15) == (h >> 15))
                          : back == h;
        if (!ok && !bad++) first = h;
    }
    CHECK_MSG(bad == 0, "%d BF16 round trips fail, first 0x%04x", bad, first);

    bad = 0;
    for (int i = 0; i < 2000000; i++) {
        uint32_t u = (uint32_t)rng();
        if (i & 1) u = (u & 0xffff0000u) | 0x8000u; /* exact ties */
        float f = u2f(u);
        if (isnan(f)) continue;
        if (fp4rt_f32_to_bf16(f) != bf16_ref(f) && !bad++) first = u;
    }
    CHECK_MSG(bad == 0, "%d BF16 roundings differ from the reference, first 0x%08x", bad, first);
    CHECK(fp4rt_f32_to_bf16(u2f(0x3f808000u)) == 0x3f80); /* tie, even below */
    CHECK(fp4rt_f32_to_bf16(u2f(0x3f818000u)) == 0x3f82); /* tie, even above */
    CHECK(fp4rt_f32_to_bf16(u2f(0x7f7f8000u)) == 0x7f80); /* tie at max -> inf */
    CHECK(fp4rt_f32_to_bf16(INFINITY) == 0x7f80 && fp4rt_f32_to_bf16(-INFINITY) == 0xff80);
    uint16_t qn = fp4rt_f32_to_bf16(u2f(0x7f800001u)); /* NaN with payload only in low bits */
    CHECK((qn & 0x7f80) == 0x7f80 && (qn & 0x7f) != 0);
}

/* ---- F16 ---------------------------------------------------------------- */

static double f16_ref_value(uint32_t h) { /* non-negative finite codes, 0x7c00 = 65536 */
    uint32_t e = (h >> 10) & 31, m = h & 1023;
    return e == 0 ? m * 0x1p-24 : (1024 + m) * ldexp(1.0, (int)e - 25);
}

/* RNE of a non-NaN float to F16: binary search for the bracketing codes. */
static uint16_t f16_ref(float f) {
    uint16_t sign = signbit(f) ? 0x8000 : 0;
    double x = fabs((double)f);
    if (x >= 65536.0) return sign | 0x7c00;
    uint32_t lo = 0, hi = 0x7c00; /* value(lo) <= x < value(hi) */
    while (hi - lo > 1) {
        uint32_t mid = (lo + hi) / 2;
        if (f16_ref_value(mid) <= x) lo = mid; else hi = mid;
    }
    double dlo = x - f16_ref_value(lo), dhi = f16_ref_value(hi) - x;
    uint32_t r = dlo < dhi ? lo : dhi < dlo ? hi : ((lo & 1) ? hi : lo);
    return sign | (uint16_t)r;
}

static void test_f16(void) {
    int bad = 0;
    uint32_t first = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = fp4rt_f16_to_f32((uint16_t)h);
        uint32_t e = (h >> 10) & 31, m = h & 1023;
        int ok;
        if (e == 31) {
            ok = m ? isnan(f) : isinf(f) && (uint32_t)!!signbit(f) == (h >> 15);
        } else {
            double r = f16_ref_value(h & 0x7fff);
            ok = (double)fabsf(f) == r && (signbit(f) != 0) == (h >> 15) &&
                 fp4rt_f32_to_f16(f) == h;
        }
        if (e == 31 && m && ok) {
            uint16_t back = fp4rt_f32_to_f16(f);
            ok = (back & 0x7c00) == 0x7c00 && (back & 0x3ff);
        }
        if (!ok && !bad++) first = h;
    }
    CHECK_MSG(bad == 0, "%d F16 decode / round-trip failures, first 0x%04x", bad, first);

    bad = 0;
    for (int i = 0; i < 2000000; i++) {
        uint32_t u = (uint32_t)rng();
        /* Concentrate on the F16 range: exponents 2^-26 .. 2^17. */
        u = (u & 0x807fffffu) | ((uint32_t)(101 + (rng() % 44)) << 23);
        if (i % 3 == 0) u = (u & 0xffffe000u) | 0x1000u; /* ties for normal results */
        float f = u2f(u);
        if (fp4rt_f32_to_f16(f) != f16_ref(f) && !bad++) first = u;
    }
    CHECK_MSG(bad == 0, "%d F16 roundings differ from the reference, first 0x%08x", bad, first);

    CHECK(fp4rt_f32_to_f16(0x1p-24f) == 0x0001 && fp4rt_f32_to_f16(0x1p-25f) == 0x0000);
    CHECK(fp4rt_f32_to_f16(3 * 0x1p-25f) == 0x0002 && fp4rt_f32_to_f16(-0x1p-14f) == 0x8400);
    CHECK(fp4rt_f32_to_f16(nextafterf(0x1p-25f, 1)) == 0x0001);
    CHECK(fp4rt_f32_to_f16(65504.0f) == 0x7bff && fp4rt_f32_to_f16(65519.0f) == 0x7bff);
    CHECK(fp4rt_f32_to_f16(65520.0f) == 0x7c00 && fp4rt_f32_to_f16(1e6f) == 0x7c00);
    CHECK(fp4rt_f32_to_f16(-INFINITY) == 0xfc00 && fp4rt_f32_to_f16(1e-30f) == 0x0000);
    uint16_t n = fp4rt_f32_to_f16(NAN);
    CHECK((n & 0x7c00) == 0x7c00 && (n & 0x3ff) != 0);
    CHECK(fp4rt_f16_to_f32(0x3c00) == 1.0f && fp4rt_f16_to_f32(0x0001) == 0x1p-24f);
}

int main(void) {
    fp4rt_numfmt_init();
    test_e4m3();
    test_e2m1();
    test_bf16();
    test_f16();
    return test_summary("numfmt");
}
