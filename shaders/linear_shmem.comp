#version 450
// Decode linear (matrix-vector) reduced through shared memory: see
// linear_mv.glsl. The fallback for devices without subgroup arithmetic.
#include "linear_mv.glsl"
