// The numerics contract's exp and log, the same operation sequence as
// runtime/base/canon_math.h (docs/NUMERICS.md rule 2), each
// operation rounded once and never fused (`precise`), the constants as the same
// float bits: bit-identical to the CPU wherever fp32 add, multiply and divide
// are correctly rounded (lavapipe). Used for silu, sigmoid, softplus, the
// softmax of attention and the decays of the gated delta rule.
#define CM_LN2_HI uintBitsToFloat(0x3f317200u)
#define CM_LN2_LO uintBitsToFloat(0x35bfbe8eu)
#define CM_LOG2E uintBitsToFloat(0x3fb8aa3bu)
#define CM_EXP_MAX uintBitsToFloat(0x42b17217u)
#define CM_INF uintBitsToFloat(0x7f800000u)
#define CM_NAN uintBitsToFloat(0x7fc00000u)

float cexp(float x) {
    if (isnan(x)) return x;
    if (x > CM_EXP_MAX) return CM_INF;
    if (x < -87.0) return 0.0;
    precise float k = roundEven(x * CM_LOG2E);
    precise float r = x - k * CM_LN2_HI;
    r = r - k * CM_LN2_LO;
    precise float p = uintBitsToFloat(0x39500d01u);
    p = p * r + uintBitsToFloat(0x3ab60b61u);
    p = p * r + uintBitsToFloat(0x3c088889u);
    p = p * r + uintBitsToFloat(0x3d2aaaabu);
    p = p * r + uintBitsToFloat(0x3e2aaaabu);
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    int ki = int(k);
    precise float y;
    if (ki > 127) y = p * uintBitsToFloat(254u << 23) * 2.0;
    else y = p * uintBitsToFloat(uint(ki + 127) << 23);
    return y;
}

float clog(float u) {
    if (!(u >= 0.0)) return CM_NAN;
    if (u == 0.0) return -CM_INF;
    if (u == CM_INF) return u;
    int e;
    precise float m = frexp(u, e);
    if (m < uintBitsToFloat(0x3f3504f3u)) {
        m = m + m;
        e -= 1;
    }
    precise float f = m - 1.0;
    precise float s = f / (2.0 + f);
    precise float z = s * s;
    precise float p = uintBitsToFloat(0x3dba2e8cu);
    p = p * z + uintBitsToFloat(0x3de38e39u);
    p = p * z + uintBitsToFloat(0x3e124925u);
    p = p * z + uintBitsToFloat(0x3e4ccccdu);
    p = p * z + uintBitsToFloat(0x3eaaaaabu);
    p = p * z;
    precise float lm = s * p;
    lm = lm + s;
    lm = lm + lm;
    float fe = float(e);
    precise float r = lm + fe * CM_LN2_LO;
    r = r + fe * CM_LN2_HI;
    return r;
}

float clog1p(float y) {
    precise float u = 1.0 + y;
    if (u == 1.0) return y;
    precise float r = clog(u) * (y / (u - 1.0));
    return r;
}

float csigmoid(float x) {
    precise float r = 1.0 / (1.0 + cexp(-x));
    return r;
}

float csilu(float x) {
    precise float r = x / (1.0 + cexp(-x));
    return r;
}

float csoftplus(float x) { return x > 20.0 ? x : clog1p(cexp(x)); }

// The normal CDF and the two GELU forms of runtime/base/canon_math.h
// (fp4rt_cnormcdf, fp4rt_cgelu_erf, fp4rt_cgelu_tanh): the same coefficients
// (bits), operation sequence and branches.
float cnormcdf(float x) {
    if (isnan(x)) return x;
    float ax = abs(x);
    if (ax < 0.75) {
        precise float z = x * x;
        precise float p = uintBitsToFloat(0xb70cb99fu);
        p = p * z + uintBitsToFloat(0x38f0b4c2u);
        p = p * z + uintBitsToFloat(0xba9b99bau);
        p = p * z + uintBitsToFloat(0x3c236806u);
        p = p * z + uintBitsToFloat(0xbd882c1cu);
        p = p * z + uintBitsToFloat(0x3ecc422au);
        p = x * p;
        precise float r = 0.5 + p;
        return r;
    }
    if (ax > 13.5) return x < 0.0 ? 0.0 : 1.0;
    precise float t = 1.0 / (1.0 + ax * 0.5);
    precise float q = uintBitsToFloat(0x3d8cab8cu);
    q = q * t + uintBitsToFloat(0xbe3dfe0du);
    q = q * t + uintBitsToFloat(0x3d7c2a90u);
    q = q * t + uintBitsToFloat(0x3e9829aeu);
    q = q * t + uintBitsToFloat(0xbeb2a23au);
    q = q * t + uintBitsToFloat(0x3cd546a6u);
    q = q * t + uintBitsToFloat(0x3cf7325du);
    q = q * t + uintBitsToFloat(0x3e1be29cu);
    q = q * t + uintBitsToFloat(0x3e4c0f68u);
    q = q * t + uintBitsToFloat(0x3e4c43bfu);
    q = q * t;
    float xh = uintBitsToFloat(floatBitsToUint(ax) & 0xfffff000u);
    precise float xl = ax - xh;
    precise float hi = xh * xh;
    hi = hi * 0.5;
    precise float lo = ax + xh;
    lo = xl * lo;
    lo = lo * 0.5;
    precise float tail = cexp(-hi) * cexp(-lo);
    tail = tail * q;
    precise float r = x < 0.0 ? tail : 1.0 - tail;
    return r;
}

float cgelu_erf(float x) {
    precise float r = x * cnormcdf(x);
    return r;
}

float cgelu_tanh(float x) {
    precise float x3 = x * x;
    x3 = x3 * x;
    precise float inn = uintBitsToFloat(0x3d372713u) * x3;
    inn = x + inn;
    precise float v = uintBitsToFloat(0x3fcc422au) * inn;
    precise float r = x / (1.0 + cexp(-v));
    return r;
}
