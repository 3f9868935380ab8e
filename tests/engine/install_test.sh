#!/usr/bin/env bash
# cmake --install into a scratch prefix, then build examples/chat.c against the
# installed library three ways (pkg-config + shared, pkg-config + static, the
# CMake package) and run it on a synthesized model with a text prompt. The
# installed libfp4rt.a defines no global symbol but the API's (include/fp4rt.h),
# and an application linking its own volk beside it keeps its volk apart
# (tests/engine/volk_consumer.c).
# Env: FP4RT_BUILD (the build directory), FP4RT_TMP (scratch), FP4RT_TEST_VOLK
# (volk.c, when the Vulkan backend is built).
set -u
build=${FP4RT_BUILD:?}
tmp=${FP4RT_TMP:-/tmp}/install-$$
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
check() { if eval "$1"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $2" >&2; fi; }

prefix=$tmp/prefix
check "cmake --install '$build' --prefix '$prefix' >/dev/null" "cmake --install"
pc=$(find "$prefix" -name fp4rt.pc | head -n 1)
check "[ -n '$pc' ]" "fp4rt.pc installed"
libdir=$(dirname "$(dirname "$pc")")
check "[ -f '$prefix/include/fp4rt.h' ] && [ -f '$libdir/libfp4rt.a' ]" "header and static library installed"
check "readelf -d '$libdir/libfp4rt.so' | grep -q 'SONAME.*libfp4rt.so.0'" "versioned SONAME"
# only the public API is exported
check "! nm -D --defined-only '$libdir/libfp4rt.so' | grep -q 'fp4rt_weights_load'" "internal symbols hidden"
check "nm -D --defined-only '$libdir/libfp4rt.so' | grep -q ' fp4rt_generate$'" "public symbols exported"
# the static library: the API's symbols and nothing else (no internal fp4rt_*,
# no volk / vk*), all of them defined
grep -A3 '^FP4RT_API' include/fp4rt.h | tr '\n' ' ' | grep -oE 'fp4rt_[a-z0-9_]+\(' | tr -d '(' | sort -u >"$tmp/api"
nm -g --defined-only "$libdir/libfp4rt.a" 2>/dev/null | awk 'NF == 3 { print $3 }' | sort -u >"$tmp/globals"
check "[ \$(wc -l <'$tmp/api') -ge 20 ]" "API names read from fp4rt.h"
extra=$(comm -13 "$tmp/api" "$tmp/globals" | head -n 5 | tr '\n' ' ')
check "[ -z '$extra' ]" "libfp4rt.a defines only API symbols, not: $extra($(comm -13 "$tmp/api" "$tmp/globals" | wc -l) in all)"
check "[ -z \"\$(comm -23 '$tmp/api' '$tmp/globals')\" ]" "libfp4rt.a defines every API symbol"
export PKG_CONFIG_PATH="$(dirname "$pc")"
check "cc -std=c11 -Wall -Werror examples/chat.c \$(pkg-config --cflags --libs fp4rt) -o '$tmp/chat'" "example via pkg-config"
check "cc -std=c11 examples/chat.c -I'$prefix/include' '$libdir/libfp4rt.a' \$(pkg-config --libs --static fp4rt | sed 's/-lfp4rt//') -o '$tmp/chat-static'" "example linked statically"
check "cmake -S tests/cmake_consumer -B '$tmp/consumer' -DCMAKE_PREFIX_PATH='$prefix' >/dev/null && cmake --build '$tmp/consumer' >/dev/null" "example via the CMake package"

check "'$prefix/bin/fp4rt' synth --config tiny --out '$tmp/tiny' --seed 2 >/dev/null" "synth"
out=$(LD_LIBRARY_PATH="$libdir" "$tmp/chat" "$tmp/tiny" "Hello, who are you?" 2>&1)
check "echo \"\$out\" | grep -Eq '\\[[0-9]+ prompt tokens, [0-9]+ generated\\]'" "example streams an answer: $out"
out2=$("$tmp/chat-static" "$tmp/tiny" "Hello, who are you?" 2>&1)
if [ -n "${FP4RT_TEST_VOLK:-}" ]; then
    volk_inc=$(dirname "$FP4RT_TEST_VOLK")
    check "cc -std=c11 -Wall tests/engine/volk_consumer.c '$FP4RT_TEST_VOLK' -I'$prefix/include' -I'$volk_inc' '$libdir/libfp4rt.a' \$(pkg-config --libs --static fp4rt | sed 's/-lfp4rt//') -ldl -o '$tmp/volk-consumer'" "an application with its own volk links libfp4rt.a"
    check "'$tmp/volk-consumer'" "the application's volk is its own"
fi
check "[ \"\$out\" = \"\$out2\" ]" "static and shared builds agree"
out3=$(LD_LIBRARY_PATH="$libdir" "$tmp/consumer/chat" "$tmp/tiny" "Hello, who are you?" 2>&1)
check "[ \"\$out\" = \"\$out3\" ]" "CMake-package build agrees"

echo "install: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
