#!/usr/bin/env bash
# The CUDA linear kernels on the GPU of the machine it runs on, in one call of a
# few minutes: builds the host test and test_cu_linear_gpu for the card with nvcc
# directly (the device image lacks the project's other build dependencies), runs
# the host test, the parity test against the CPU math, then the timings on the
# qwen3.6-27b shapes, and checks the SASS. Logs under $OUT (default
# ./cu-linear-out); the bench table is printed last.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/cu-linear-out}
B=$OUT/bin
mkdir -p "$B"
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,clocks.max.mem --format=csv >"$OUT/gpu.txt" 2>&1
INC="-Iinclude -I."
gcc -O2 -Iinclude -I. -c runtime/base/numfmt.c -o "$B/numfmt.o" || exit 1
nvcc -std=c++17 -O3 -arch=native $INC tests/cuda/test_cu_linear_host.cu "$B/numfmt.o" -o "$B/host" >"$OUT/build.log" 2>&1 || {
    tail -n 30 "$OUT/build.log"; exit 1; }
nvcc -std=c++17 -O3 -arch=native -Xptxas -v $INC -DFP4RT_HAVE_CUBLAS tests/cuda/test_cu_linear_gpu.cu cuda/cu_linear.cu \
    "$B/numfmt.o" -lcublas -o "$B/gpu" >>"$OUT/build.log" 2>&1 ||
    nvcc -std=c++17 -O3 -arch=native $INC tests/cuda/test_cu_linear_gpu.cu cuda/cu_linear.cu "$B/numfmt.o" -o "$B/gpu" \
        >>"$OUT/build.log" 2>&1 || { tail -n 30 "$OUT/build.log"; exit 1; }
cuobjdump -sass "$B/gpu" >"$OUT/sass.txt" 2>&1 || true
echo "SASS: $(grep -c 'LDG.E.NA.128' "$OUT/sass.txt") LDG.E.NA.128, $(grep -c HMMA "$OUT/sass.txt") HMMA, $(grep -c -E 'LDL|STL' "$OUT/sass.txt") LDL/STL"
"$B/host" 2>&1 | tee "$OUT/host.log" | tail -n 1
rc=0
"$B/gpu" >"$OUT/parity.log" 2>&1 || rc=$?
tail -n 15 "$OUT/parity.log"
"$B/gpu" bench 2>&1 | tee "$OUT/bench.log"
cat "$OUT/gpu.txt"
exit $rc
