/* Text helpers of the tokenizer: UTF-8 decoding with U+FFFD replacement, the
 * GPT-2 ByteLevel byte <-> character table, NFC with a quick check, and the
 * character classes used by added-token matching. */
#include "runtime/base/common.h"
#include "runtime/text/tokenizer_internal.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ---- UTF-8 ------------------------------------------------------------ */

size_t fp4rt_utf8_next(const unsigned char *s, size_t n, uint32_t *cp, size_t *bad,
                       int *incomplete) {
    unsigned char b = s[0];
    *incomplete = 0;
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    uint32_t c;
    if (b >= 0xC2 && b <= 0xDF) {
        need = 1, c = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
        need = 2, c = b & 0x0F;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F; /* no surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 3, c = b & 0x07;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else {
        *bad = 1;
        return 0;
    }
    size_t i = 1;
    for (; i <= need; i++) {
        if (i >= n) {
            *bad = i;
            *incomplete = 1;
            return 0;
        }
        unsigned char x = s[i];
        unsigned char l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (x < l || x > h) {
            *bad = i;
            return 0;
        }
        c = (c << 6) | (x & 0x3F);
    }
    *cp = c;
    return need + 1;
}

int fp4rt_utf8_valid(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        /* ASCII fast path, 8 bytes at a time */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        size_t bad;
        int inc;
        size_t l = fp4rt_utf8_next(p + i, n - i, &cp, &bad, &inc);
        if (!l) return 0;
        i += l;
    }
    return 1;
}

size_t fp4rt_utf8_put(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

char *fp4rt_utf8_sanitize(const char *s, size_t n, size_t *out_len) {
    /* each bad byte becomes at most 3 bytes */
    if (n > (SIZE_MAX - 1) / 3) {
        fp4rt_fail(FP4RT_OUT_OF_MEMORY, "tokenizer: text of %zu bytes too large", n);
        return NULL;
    }
    char *out = fp4rt_malloc(3 * n + 1, "sanitized text");
    if (!out) return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0;
    while (i < n) {
        uint32_t cp;
        size_t bad;
        int inc;
        size_t l = fp4rt_utf8_next(p + i, n - i, &cp, &bad, &inc);
        if (l) {
            memcpy(out + o, p + i, l);
            o += l, i += l;
        } else {
            o += fp4rt_utf8_put(0xFFFD, out + o);
            i += bad;
        }
    }
    out[o] = 0;
    *out_len = o;
    return out;
}

/* ---- ByteLevel table (GPT-2 bytes_to_unicode) -------------------------- */

static uint32_t g_byte_char[256];
static int16_t g_char_byte[0x144]; /* every table character is below U+0144 */
static pthread_once_t g_bl_once = PTHREAD_ONCE_INIT;

static void bytelevel_init(void) {
    uint32_t extra = 0;
    for (int c = 0; c < 0x144; c++) g_char_byte[c] = -1;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        g_byte_char[b] = printable ? (uint32_t)b : 256 + extra++;
        g_char_byte[g_byte_char[b]] = (int16_t)b;
    }
}

uint32_t fp4rt_bytelevel_char(unsigned char b) {
    pthread_once(&g_bl_once, bytelevel_init);
    return g_byte_char[b];
}

int fp4rt_bytelevel_byte(uint32_t cp) {
    pthread_once(&g_bl_once, bytelevel_init);
    return cp < 0x144 ? g_char_byte[cp] : -1;
}

/* ---- NFC ---------------------------------------------------------------- */

/* Bitmap of code points that may change under NFC or combine with what precedes
 * them: non-zero combining class, a canonical decomposition (Hangul syllables
 * excepted: they are NFC and only compose with a following jamo, which is in the
 * set), or a non-initial part of some canonical decomposition (the possible
 * second halves of a composition, e.g. U+0CD5 or the Hangul V/T jamo). A
 * code point outside the set is a starter with NFC_QC=Yes: the text can be cut
 * in front of it, so a run of such characters is copied unchanged. */
static uint8_t *g_nfc_unsafe;
static pthread_once_t g_nfc_once = PTHREAD_ONCE_INIT;

#define NFC_SET(cp) (g_nfc_unsafe[(cp) >> 3] |= (uint8_t)(1u << ((cp)&7)))

static void nfc_init(void) {
    g_nfc_unsafe = calloc(0x110000 / 8, 1);
    if (!g_nfc_unsafe) return;
    for (uint32_t cp = 0x300; cp < 0x110000; cp++) { /* below U+0300 all are stable starters */
        if (cp >= 0xD800 && cp < 0xE000) continue;
        const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)cp);
        if (p->category == UTF8PROC_CATEGORY_CN) continue;
        if (p->combining_class) NFC_SET(cp);
        if (cp >= 0xAC00 && cp <= 0xD7A3) continue;
        if (p->decomp_seqindex != UINT16_MAX && p->decomp_type == 0) {
            NFC_SET(cp);
            utf8proc_int32_t d[8];
            int last = 0;
            utf8proc_ssize_t k = utf8proc_decompose_char((utf8proc_int32_t)cp, d, 8,
                                                         UTF8PROC_DECOMPOSE, &last);
            for (utf8proc_ssize_t j = 1; j < k && j < 8; j++) NFC_SET((uint32_t)d[j]);
        }
    }
    for (uint32_t cp = 0x1161; cp <= 0x1175; cp++) NFC_SET(cp); /* Hangul V jamo */
    for (uint32_t cp = 0x11A8; cp <= 0x11C2; cp++) NFC_SET(cp); /* Hangul T jamo */
}

static int nfc_unsafe(uint32_t cp) {
    return cp >= 0x300 && ((g_nfc_unsafe[cp >> 3] >> (cp & 7)) & 1);
}

/* out buffer helper: appends to a malloc'ed buffer sized for the worst case */
static fp4rt_status buf_append(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 64;
        while (c < *len + n + 1) c *= 2;
        char *b = realloc(*buf, c);
        if (!b) return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "tokenizer: out of memory in NFC");
        *buf = b, *cap = c;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = 0;
    return FP4RT_OK;
}

fp4rt_status fp4rt_nfc(const char *s, size_t n, char **out, size_t *out_len) {
    *out = NULL;
    *out_len = n;
    pthread_once(&g_nfc_once, nfc_init);
    if (!g_nfc_unsafe) return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "tokenizer: NFC table");
    const unsigned char *p = (const unsigned char *)s;
    char *buf = NULL;
    size_t blen = 0, bcap = 0, copied = 0, prev_start = 0, i = 0;
    fp4rt_status st = FP4RT_OK;
    while (i < n) {
        if (p[i] < 0xCC) { /* lead bytes below 0xCC encode code points below U+0300 */
            prev_start = i;
            i += p[i] < 0x80 ? 1 : p[i] >= 0xC0 ? 2 : 1;
            continue;
        }
        uint32_t cp;
        size_t bad;
        int inc;
        size_t l = fp4rt_utf8_next(p + i, n - i, &cp, &bad, &inc);
        if (!l) { /* not reached: the text was sanitized */
            prev_start = i;
            i += bad;
            continue;
        }
        if (!nfc_unsafe(cp)) {
            prev_start = i;
            i += l;
            continue;
        }
        /* segment: the starter before the run (if any) and the run of unsafe characters */
        size_t seg = i > 0 ? prev_start : 0, j = i + l;
        while (j < n) {
            size_t l2 = fp4rt_utf8_next(p + j, n - j, &cp, &bad, &inc);
            if (!l2) break;
            if (!nfc_unsafe(cp)) break;
            j += l2;
        }
        if (seg > copied) st = buf_append(&buf, &blen, &bcap, s + copied, seg - copied);
        if (st != FP4RT_OK) break;
        utf8proc_uint8_t *norm = NULL;
        utf8proc_ssize_t nl = utf8proc_map(p + seg, (utf8proc_ssize_t)(j - seg), &norm,
                                           UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        if (nl < 0) {
            free(norm);
            st = fp4rt_fail(FP4RT_INTERNAL, "tokenizer: NFC failed: %s", utf8proc_errmsg(nl));
            break;
        }
        st = buf_append(&buf, &blen, &bcap, (const char *)norm, (size_t)nl);
        free(norm);
        if (st != FP4RT_OK) break;
        copied = j;
        i = j;
    }
    if (st != FP4RT_OK) {
        free(buf);
        return st;
    }
    if (!buf) return FP4RT_OK; /* already NFC */
    if (copied < n) st = buf_append(&buf, &blen, &bcap, s + copied, n - copied);
    if (st != FP4RT_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    *out_len = blen;
    return FP4RT_OK;
}

/* ---- character classes -------------------------------------------------- */

int fp4rt_uc_is_space(uint32_t cp) {
    if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
    switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000:
        return 1;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

int fp4rt_uc_is_word(uint32_t cp) {
    if (cp < 0x80)
        return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
               cp == '_';
    if (cp == 0x200C || cp == 0x200D) return 1; /* Join_Control */
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_ND) || c == UTF8PROC_CATEGORY_NL ||
           c == UTF8PROC_CATEGORY_PC;
}
