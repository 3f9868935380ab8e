#version 450
// linear_coop.glsl with the fragments emulated by plain arithmetic (COOP_EMU):
// tests run it on devices without matrix units (FP4RT_VK_COOPMAT=emu).
#define COOP_EMU
#include "linear_coop.glsl"
