// Gate of the gated delta rule, as the CPU (runtime/backend/cpu/cpu_ops.h):
// g = neg_A * softplus(a + dt_bias), softplus with torch's threshold 20, in the
// numerics contract's exp / log (canon.glsl, included by common.glsl).
float gdn_g(float neg_a, float a, float dt_bias) {
    precise float sp = a + dt_bias;
    precise float g = neg_a * csoftplus(sp);
    return g;
}
