// Gate of the gated delta rule, as the CPU (runtime/cpu_ops.h):
// g = neg_A * softplus(a + dt_bias), softplus with torch's threshold 20.
float gdn_log1p(float y) {
    float u = 1.0 + y;
    return u == 1.0 ? y : log(u) * (y / (u - 1.0));
}

float gdn_g(float neg_a, float a, float dt_bias) {
    float sp = a + dt_bias;
    sp = sp > 20.0 ? sp : gdn_log1p(exp(sp));
    return neg_a * sp;
}
