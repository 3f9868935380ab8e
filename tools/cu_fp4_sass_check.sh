#!/usr/bin/env bash
# Checks which MMA the CUDA W4A4 kernels (cuda/cu_fp4_mma.cu) compile to:
# sm_120a must contain the block-scaled FP4 MMA (SASS OMMA.SF.16864.F32.E2M1.E2M1.UE4M3.4X),
# sm_90a and sm_80 must not (they run the emulation: shuffles, no MMA).
# Usage: tools/cu_fp4_sass_check.sh [OUTDIR]   (needs nvcc and cuobjdump; no GPU)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-$(mktemp -d)}
mkdir -p "$out"
nvcc=${NVCC:-nvcc}
objdump=${CUOBJDUMP:-$(command -v cuobjdump || true)}
if [ -z "$objdump" ]; then echo "skipped: no cuobjdump"; exit 0; fi
fail=0
for arch in 120a 90a 80; do
    "$nvcc" -std=c++17 -O3 -gencode "arch=compute_$arch,code=sm_$arch" -Icuda -Iruntime -Iinclude -I. \
        -c cuda/cu_fp4_mma.cu -o "$out/cu_fp4_mma_sm_$arch.o"
    "$objdump" -sass "$out/cu_fp4_mma_sm_$arch.o" > "$out/cu_fp4_mma_sm_$arch.sass"
    mma=$( (grep -oE '\b[A-Z]*MMA[A-Z0-9._]*' "$out/cu_fp4_mma_sm_$arch.sass" || true) | sort | uniq -c | tr '\n' ' ')
    shfl=$(grep -c 'SHFL.IDX' "$out/cu_fp4_mma_sm_$arch.sass" || true)
    echo "sm_$arch: MMA instructions: ${mma:-none}; SHFL.IDX: $shfl"
    if [ "$arch" = 120a ]; then
        grep -q 'OMMA.SF.16864.F32.E2M1.E2M1.UE4M3.4X' "$out/cu_fp4_mma_sm_$arch.sass" || { echo "FAIL: sm_120a has no FP4 MMA"; fail=1; }
    else
        ! grep -q 'OMMA' "$out/cu_fp4_mma_sm_$arch.sass" || { echo "FAIL: sm_$arch has an OMMA"; fail=1; }
    fi
done
exit $fail
