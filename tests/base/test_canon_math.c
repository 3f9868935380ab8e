/* The numerics contract's functions (runtime/base/canon_math.h) against double
 * precision: exp, log, log1p, sigmoid, silu and softplus over the ranges the
 * runtime uses, sampled (every 1009th float; the whole sweep is in the
 * comment of canon_math.h), with ulp ceilings, their edge cases (NaN, +-inf,
 * the -87 / 88.72 cut-offs, 0) and the sum-of-squares order (fp4rt_csumsq
 * against an explicit 16-chain + tree evaluation). Bit-identity with the GPU
 * twins is checked where the kernels run: test_backend_ops (Vulkan, NMSE 0 on
 * lavapipe), test_cu_emu (the CUDA sources on the host). */
#include "tests/test_util.h"

#include "runtime/base/canon_math.h"

#include <float.h>
#include <stdint.h>

static double ulp_of(double ref) {
    int e;
    frexp(ref, &e);
    double u = ldexp(1.0, e - 24);
    return u < ldexp(1.0, -149) ? ldexp(1.0, -149) : u;
}

/* The n-th float above x (by its bits; across zero it restarts at +0). */
static float next_n(float x, int n) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if (u & 0x80000000u)
        u = (u & 0x7fffffffu) > (uint32_t)n ? u - (uint32_t)n : 0u;
    else
        u += (uint32_t)n;
    memcpy(&x, &u, 4);
    return x;
}

/* The largest error in ulp of f against ref over [lo, hi], every `stride`-th float. */
static double sweep(float (*f)(float), double (*ref)(double), float lo, float hi, int stride, float *worst) {
    double m = 0;
    for (float x = lo; x <= hi; x = next_n(x, stride)) {
        double r = ref((double)x), v = (double)f(x);
        double e = r == 0 ? fabs(v) / ldexp(1.0, -149) : fabs(v - r) / ulp_of(r);
        if (e > m) {
            m = e;
            *worst = x;
        }
    }
    return m;
}

static double d_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static double d_silu(double x) { return x / (1.0 + exp(-x)); }
static double d_softplus(double x) { return x > 20.0 ? x : log1p(exp(x)); }
static double d_normcdf(double x) { return 0.5 * erfc(-x / sqrt(2.0)); }
static double d_gelu_erf(double x) { return x * d_normcdf(x); }
static double d_gelu_tanh(double x) {
    /* 0.5 x (1 + tanh(u)) = x / (1 + e^(-2u)): no cancellation for large negative x */
    return x / (1.0 + exp(-2.0 * sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

/* Measured: normcdf 4.4 ulp, x Phi(x) 5.1 ulp, the tanh form 2.6 ulp on [-1, 1e4] (138 below) */
#define NORMCDF_ULP 6.0
#define GELU_TANH_ULP 6.0

int main(void) {
    /* each function against double over a float sweep, with its ulp limit */
    static const struct {
        const char *name;
        float (*f)(float);
        double (*ref)(double);
        float lo, hi;
        double limit;
    } fns[] = {{"exp", fp4rt_cexp, exp, -87.0f, 88.7f, 1.5},
               {"log", fp4rt_clog, log, 1e-30f, 1e30f, 2.5},
               {"log1p", fp4rt_clog1p, log1p, -0.99f, 1e9f, 4.0},
               {"sigmoid", fp4rt_csigmoid, d_sigmoid, -80.0f, 80.0f, 3.0},
               {"silu", fp4rt_csilu, d_silu, -80.0f, 80.0f, 3.0},
               {"softplus", fp4rt_csoftplus, d_softplus, -80.0f, 80.0f, 4.0},
               {"normcdf", fp4rt_cnormcdf, d_normcdf, -13.0f, 13.0f, NORMCDF_ULP},
               {"gelu-erf", fp4rt_cgelu_erf, d_gelu_erf, -13.0f, 1e4f, NORMCDF_ULP},
               {"gelu-tanh", fp4rt_cgelu_tanh, d_gelu_tanh, -1.0f, 1e4f, GELU_TANH_ULP},
               /* x < -1: e^(-2u) of a large rounded argument 2u (torch's
                * float evaluation has the same conditioning): ~2|2u| ulp */
               {"gelu-tanh-", fp4rt_cgelu_tanh, d_gelu_tanh, -9.0f, -1.0f, 160.0}};
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        float w = 0;
        double e = sweep(fns[i].f, fns[i].ref, fns[i].lo, fns[i].hi, 1009, &w);
        printf("%-8s max %.3f ulp (at %g)\n", fns[i].name, e, w);
        CHECK_MSG(e <= fns[i].limit, "%s: %.3f ulp at %g", fns[i].name, e, w);
    }

    /* edges */
    CHECK(isnan(fp4rt_cexp(NAN)) && isnan(fp4rt_clog(NAN)) && isnan(fp4rt_clog(-1.0f)));
    CHECK(fp4rt_cexp(-INFINITY) == 0.0f && fp4rt_cexp(-87.01f) == 0.0f && fp4rt_cexp(-87.0f) > FLT_MIN);
    CHECK(fp4rt_cexp(INFINITY) == INFINITY && fp4rt_cexp(88.73f) == INFINITY && isfinite(fp4rt_cexp(88.72f)));
    CHECK(fp4rt_cexp(0.0f) == 1.0f && fp4rt_clog(1.0f) == 0.0f && fp4rt_clog(0.0f) == -INFINITY);
    CHECK(fp4rt_clog(INFINITY) == INFINITY && fp4rt_clog1p(0.0f) == 0.0f && fp4rt_clog1p(1e-10f) == 1e-10f);
    /* GELU: below x = -13.2 the true value is under FLT_MIN / 10 and the result is -0 */
    CHECK(fp4rt_cgelu_erf(-13.3f) == 0.0f && fp4rt_cgelu_erf(-1e30f) == 0.0f && fp4rt_cgelu_erf(1e30f) == 1e30f);
    CHECK(isnan(fp4rt_cgelu_erf(NAN)) && isnan(fp4rt_cgelu_tanh(NAN)) && fp4rt_cgelu_erf(INFINITY) == INFINITY);
    CHECK(fp4rt_cgelu_erf(0.0f) == 0.0f && fp4rt_cgelu_tanh(0.0f) == 0.0f && fp4rt_cgelu_tanh(30.0f) == 30.0f);
    CHECK(fp4rt_cnormcdf(-14.0f) == 0.0f && fp4rt_cnormcdf(14.0f) == 1.0f && fp4rt_cnormcdf(0.0f) == 0.5f);
    CHECK(fp4rt_csigmoid(-100.0f) == 0.0f && fp4rt_csigmoid(100.0f) == 1.0f && fp4rt_csoftplus(30.0f) == 30.0f);

    /* the sum of squares: 16 chains in index order, then the fixed tree */
    float x[101];
    for (int i = 0; i < 101; i++) x[i] = (float)((i * 7919) % 1000) / 997.0f - 0.5f;
    float c[16] = {0};
    for (int i = 0; i < 101; i++) c[i % 16] += x[i] * x[i];
    float a[8];
    for (int j = 0; j < 8; j++) a[j] = c[j] + c[j + 8];
    float tree = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
    float got = fp4rt_csumsq(x, 101);
    CHECK_MSG(!memcmp(&got, &tree, 4), "csumsq %.9g vs %.9g", got, tree);
    float seq = 0;
    for (int i = 0; i < 101; i++) seq += x[i] * x[i];
    CHECK_MSG(fabsf(got - seq) <= 1e-5f * seq, "csumsq %.9g far from the sum %.9g", got, seq);
    return test_summary("test_canon_math");
}
