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
