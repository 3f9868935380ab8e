#version 450
// Decode linear (matrix-vector) with the final tree by subgroup shuffles: see
// linear_mv.glsl. Used where the device reports basic, vote and shuffle
// subgroup operations in compute shaders.
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_vote : require
#extension GL_KHR_shader_subgroup_shuffle : require
#define USE_SUBGROUP
#include "linear_mv.glsl"
