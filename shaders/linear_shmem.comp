#version 450
// Decode linear (matrix-vector), final tree through shared memory: see
// linear_mv.glsl. The fallback for devices without subgroup shuffles.
#include "linear_mv.glsl"
