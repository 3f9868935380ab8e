#version 450
// Decode linear (matrix-vector) with subgroup reductions: see linear_mv.glsl.
// Used where the device reports subgroup arithmetic in compute shaders.
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#define USE_SUBGROUP
#include "linear_mv.glsl"
