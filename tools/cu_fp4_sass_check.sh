#!/usr/bin/env bash
# Checks which MMA the CUDA W4A4 kernels (cuda/cu_fp4_mma.cu) compile to:
# sm_120a must contain the block-scaled FP4 MMA (SASS OMMA.SF.16864.F32.E2M1.E2M1.UE4M3.4X),
# sm_90a and sm_80 must not (they run the emulation: shuffles, no MMA).
# Usage: tools/cu_fp4_sass_check.sh [OUTDIR]   (needs nvcc; no GPU)
# With cuobjdump the machine code (SASS) is checked; without it (a toolkit that
# ships no cuobjdump) the PTX the same compile emits: sm_120a must hold the
# block-scaled mma (kind::mxf4nvf4.block_scale), the others none. Runs on the
# build machine (ctest test_cu_fp4_sass), not on the lent device.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-$(mktemp -d)}
mkdir -p "$out"
nvcc=${NVCC:-nvcc}
objdump=${CUOBJDUMP:-$(command -v cuobjdump || true)}
fail=0
if [ -z "$objdump" ]; then
    for arch in 120a 90a 80; do
        "$nvcc" -std=c++17 -O3 -arch="sm_$arch" -Iinclude -I. -ptx cuda/cu_fp4_mma.cu -o "$out/cu_fp4_mma_sm_$arch.ptx"
        n=$(grep -c 'kind::mxf4nvf4.block_scale' "$out/cu_fp4_mma_sm_$arch.ptx" || true)
        echo "sm_$arch (PTX, no cuobjdump): block-scaled FP4 mma: $n"
        if [ "$arch" = 120a ]; then
            [ "$n" -gt 0 ] || { echo "FAIL: sm_120a has no block-scaled FP4 mma"; fail=1; }
        else
            [ "$n" -eq 0 ] || { echo "FAIL: sm_$arch has a block-scaled FP4 mma"; fail=1; }
        fi
    done
    exit $fail
fi
for arch in 120a 90a 80; do
    "$nvcc" -std=c++17 -O3 -gencode "arch=compute_$arch,code=sm_$arch" -Iinclude -I. \
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
