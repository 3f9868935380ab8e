/* BPE model of the tokenizer: vocabulary and merge hash maps, the merge loop
 * (a linear scan for short words, a binary heap for long ones; both merge the
 * lowest-ranked adjacent pair, leftmost first, as HF tokenizers' Word::merge_all)
 * and a thread-safe cache of results for short words. */
#include "runtime/base/common.h"
#include "runtime/text/tokenizer_internal.h"

#include <stdlib.h>
#include <string.h>

uint64_t fp4rt_tok_hash(const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ ((uint64_t)n * 0xFF51AFD7ED558CCDull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
        s += 8, n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0x94D049BB133111EBull;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 32);
}

static uint32_t pow2_at_least(size_t n) {
    uint32_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

fp4rt_status fp4rt_idvec_push(fp4rt_idvec *v, const int32_t *ids, size_t n) {
    if (v->n + n > v->cap) {
        size_t c = v->cap ? v->cap : 64;
        while (c < v->n + n) c *= 2;
        int32_t *p = realloc(v->v, c * sizeof *p);
        if (!p) return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "tokenizer: out of memory for %zu ids", c);
        v->v = p, v->cap = c;
    }
    memcpy(v->v + v->n, ids, n * sizeof *ids);
    v->n += n;
    return FP4RT_OK;
}

/* ---- vocabulary map ----------------------------------------------------- */

int32_t fp4rt_tok_vocab_get(const fp4rt_tokenizer *t, const void *bytes, size_t n) {
    uint32_t i = (uint32_t)fp4rt_tok_hash(bytes, n) & t->vmap_mask;
    for (;;) {
        int32_t id = t->vmap[i];
        if (id < 0) return -1;
        if (t->len[id] == n && memcmp(t->blob + t->off[id], bytes, n) == 0) return id;
        i = (i + 1) & t->vmap_mask;
    }
}

fp4rt_status fp4rt_tok_build_vmap(fp4rt_tokenizer *t) {
    size_t n = 0;
    for (uint32_t id = 0; id < t->n_ids; id++)
        if ((t->flags[id] & (FP4RT_TOKF_PRESENT | FP4RT_TOKF_ADDED | FP4RT_TOKF_RAW)) ==
            FP4RT_TOKF_PRESENT)
            n++;
    uint32_t cap = pow2_at_least(2 * n + 1);
    t->vmap = fp4rt_malloc((size_t)cap * sizeof *t->vmap, "tokenizer vocabulary map");
    if (!t->vmap) return FP4RT_OUT_OF_MEMORY;
    memset(t->vmap, 0xFF, (size_t)cap * sizeof *t->vmap);
    t->vmap_mask = cap - 1;
    for (uint32_t id = 0; id < t->n_ids; id++) {
        if ((t->flags[id] & (FP4RT_TOKF_PRESENT | FP4RT_TOKF_ADDED | FP4RT_TOKF_RAW)) !=
            FP4RT_TOKF_PRESENT)
            continue;
        const char *s = t->blob + t->off[id];
        uint32_t i = (uint32_t)fp4rt_tok_hash(s, t->len[id]) & t->vmap_mask;
        while (t->vmap[i] >= 0) i = (i + 1) & t->vmap_mask;
        t->vmap[i] = (int32_t)id;
    }
    /* byte-level BPE: every byte has a token, else some text has no encoding */
    for (int b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        t->byte_id[b] = fp4rt_tok_vocab_get(t, &c, 1);
        if (t->byte_id[b] < 0)
            return fp4rt_fail(FP4RT_FORMAT,
                              "%s: model.vocab has no token for byte 0x%02x (a byte-level BPE needs all 256)",
                              t->path, b);
    }
    return FP4RT_OK;
}

/* ---- merge map ---------------------------------------------------------- */

static inline uint64_t mix64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xFF51AFD7ED558CCDull;
    k ^= k >> 33;
    return k;
}

fp4rt_status fp4rt_tok_merges_init(fp4rt_tokenizer *t, size_t n_merges) {
    uint32_t cap = pow2_at_least(2 * n_merges + 1);
    t->mmap = fp4rt_malloc((size_t)cap * sizeof *t->mmap, "tokenizer merge map");
    if (!t->mmap) return FP4RT_OUT_OF_MEMORY;
    memset(t->mmap, 0xFF, (size_t)cap * sizeof *t->mmap);
    t->mmap_mask = cap - 1;
    return FP4RT_OK;
}

void fp4rt_tok_merge_put(fp4rt_tokenizer *t, int32_t a, int32_t b, uint32_t rank, int32_t id) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    uint32_t i = (uint32_t)mix64(key) & t->mmap_mask;
    while (t->mmap[i].key != UINT64_MAX && t->mmap[i].key != key) i = (i + 1) & t->mmap_mask;
    t->mmap[i].key = key;
    t->mmap[i].rank = rank;
    t->mmap[i].id = id;
}

/* The merge of (a, b), or NULL. */
static inline const fp4rt_tok_merge *merge_get(const fp4rt_tokenizer *t, int32_t a, int32_t b) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    uint32_t i = (uint32_t)mix64(key) & t->mmap_mask;
    for (;;) {
        const fp4rt_tok_merge *m = &t->mmap[i];
        if (m->key == key) return m;
        if (m->key == UINT64_MAX) return NULL;
        i = (i + 1) & t->mmap_mask;
    }
}

/* ---- merge loops -------------------------------------------------------- */

/* Short words: sym[0, n) in place; returns the new count. O(n^2) worst case but
 * branch-light and allocation-free. */
static size_t merge_linear(const fp4rt_tokenizer *t, int32_t *sym, size_t n) {
    uint32_t rank[64];
    int32_t nid[64];
    if (n < 2) return n;
    for (size_t i = 0; i + 1 < n; i++) {
        const fp4rt_tok_merge *m = merge_get(t, sym[i], sym[i + 1]);
        rank[i] = m ? m->rank : UINT32_MAX;
        nid[i] = m ? m->id : -1;
    }
    while (n > 1) {
        size_t best = 0;
        for (size_t i = 1; i + 1 < n; i++)
            if (rank[i] < rank[best]) best = i;
        if (rank[best] == UINT32_MAX) break;
        sym[best] = nid[best];
        memmove(sym + best + 1, sym + best + 2, (n - best - 2) * sizeof *sym);
        memmove(rank + best, rank + best + 1, (n - best - 2) * sizeof *rank);
        memmove(nid + best, nid + best + 1, (n - best - 2) * sizeof *nid);
        n--;
        for (size_t i = best ? best - 1 : 0; i <= best && i + 1 < n; i++) {
            const fp4rt_tok_merge *m = merge_get(t, sym[i], sym[i + 1]);
            rank[i] = m ? m->rank : UINT32_MAX;
            nid[i] = m ? m->id : -1;
        }
    }
    return n;
}

typedef struct heap_item {
    uint32_t rank;
    uint32_t pos; /* index of the left symbol */
    int32_t id;   /* merged id expected when the item was pushed */
} heap_item;

static inline int heap_less(const heap_item *a, const heap_item *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(heap_item *h, size_t *n, heap_item it) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&it, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = it;
}

static heap_item heap_pop(heap_item *h, size_t *n) {
    heap_item top = h[0], last = h[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && heap_less(&h[c + 1], &h[c])) c++;
        if (!heap_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = last;
    return top;
}

/* Long words: linked list of symbols plus a heap of candidate merges; stale heap
 * entries are skipped when popped. Returns the new count or (size_t)-1 on OOM. */
static size_t merge_heap(const fp4rt_tokenizer *t, int32_t *sym, size_t n) {
    if (n < 2) return n;
    /* every merge pushes at most 2 items: heap holds at most 3n */
    int32_t *prev = malloc(n * sizeof *prev), *next = malloc(n * sizeof *next);
    heap_item *heap = malloc(3 * n * sizeof *heap);
    if (!prev || !next || !heap) {
        free(prev), free(next), free(heap);
        fp4rt_fail(FP4RT_OUT_OF_MEMORY, "tokenizer: out of memory in BPE (%zu symbols)", n);
        return (size_t)-1;
    }
    size_t hn = 0;
    for (size_t i = 0; i < n; i++) {
        prev[i] = (int32_t)i - 1;
        next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
        if (i + 1 < n) {
            const fp4rt_tok_merge *m = merge_get(t, sym[i], sym[i + 1]);
            if (m) heap_push(heap, &hn, (heap_item){m->rank, (uint32_t)i, m->id});
        }
    }
    while (hn) {
        heap_item it = heap_pop(heap, &hn);
        int32_t p = (int32_t)it.pos, q = next[p];
        if (sym[p] < 0 || q < 0) continue; /* removed, or now the last symbol */
        const fp4rt_tok_merge *m = merge_get(t, sym[p], sym[q]);
        if (!m || m->id != it.id) continue; /* stale */
        sym[p] = it.id;
        sym[q] = -1;
        next[p] = next[q];
        if (next[q] >= 0) prev[next[q]] = p;
        if (prev[p] >= 0) {
            const fp4rt_tok_merge *ml = merge_get(t, sym[prev[p]], sym[p]);
            if (ml) heap_push(heap, &hn, (heap_item){ml->rank, (uint32_t)prev[p], ml->id});
        }
        if (next[p] >= 0) {
            const fp4rt_tok_merge *mr = merge_get(t, sym[p], sym[next[p]]);
            if (mr) heap_push(heap, &hn, (heap_item){mr->rank, (uint32_t)p, mr->id});
        }
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (sym[i] >= 0) sym[k++] = sym[i];
    free(prev), free(next), free(heap);
    return k;
}

/* ---- cache -------------------------------------------------------------- */

fp4rt_status fp4rt_tok_cache_init(fp4rt_tokenizer *t) {
    t->cache = fp4rt_calloc(FP4RT_TOK_CACHE_SLOTS, sizeof *t->cache, "tokenizer cache");
    if (!t->cache) return FP4RT_OUT_OF_MEMORY;
    for (int i = 0; i < FP4RT_TOK_CACHE_LOCKS; i++) pthread_mutex_init(&t->cache_lock[i], NULL);
    t->cache_ready = 1;
    return FP4RT_OK;
}

void fp4rt_tok_cache_free(fp4rt_tokenizer *t) {
    if (t->cache_ready)
        for (int i = 0; i < FP4RT_TOK_CACHE_LOCKS; i++) pthread_mutex_destroy(&t->cache_lock[i]);
    free(t->cache);
    t->cache = NULL;
    t->cache_ready = 0;
}

/* The cache is logically const: its contents never change a result. */
static int cache_get(const fp4rt_tokenizer *t, uint64_t h, const unsigned char *w, size_t n,
                     int32_t *ids) {
    uint32_t s = (uint32_t)h & (FP4RT_TOK_CACHE_SLOTS - 1);
    pthread_mutex_t *lk = (pthread_mutex_t *)&t->cache_lock[s & (FP4RT_TOK_CACHE_LOCKS - 1)];
    const fp4rt_tok_cache_slot *c = &t->cache[s];
    int k = -1;
    pthread_mutex_lock(lk);
    if (c->hash == h && c->wlen == n && memcmp(c->word, w, n) == 0) {
        k = c->nids;
        memcpy(ids, c->ids, (size_t)k * sizeof *ids);
    }
    pthread_mutex_unlock(lk);
    return k;
}

static void cache_put(const fp4rt_tokenizer *t, uint64_t h, const unsigned char *w, size_t n,
                      const int32_t *ids, size_t k) {
    uint32_t s = (uint32_t)h & (FP4RT_TOK_CACHE_SLOTS - 1);
    pthread_mutex_t *lk = (pthread_mutex_t *)&t->cache_lock[s & (FP4RT_TOK_CACHE_LOCKS - 1)];
    fp4rt_tok_cache_slot *c = (fp4rt_tok_cache_slot *)&t->cache[s];
    pthread_mutex_lock(lk);
    c->hash = h;
    c->wlen = (uint8_t)n;
    c->nids = (uint8_t)k;
    memcpy(c->word, w, n);
    memcpy(c->ids, ids, k * sizeof *ids);
    pthread_mutex_unlock(lk);
}

/* ---- one word ----------------------------------------------------------- */

fp4rt_status fp4rt_tok_bpe_word(const fp4rt_tokenizer *t, const unsigned char *w, size_t n,
                                fp4rt_idvec *out) {
    if (n == 0) return FP4RT_OK;
    if (n == 1 && t->byte_id[w[0]] >= 0) return fp4rt_idvec_push(out, &t->byte_id[w[0]], 1);
    if (t->ignore_merges) {
        int32_t id = fp4rt_tok_vocab_get(t, w, n);
        if (id >= 0) return fp4rt_idvec_push(out, &id, 1);
    }
    int cacheable = n <= FP4RT_TOK_CACHE_WORD && t->cache;
    uint64_t h = 0;
    int32_t small[64];
    if (cacheable) {
        h = fp4rt_tok_hash(w, n);
        int k = cache_get(t, h, w, n, small);
        if (k >= 0) return fp4rt_idvec_push(out, small, (size_t)k);
    }
    int32_t *sym = n <= 64 ? small : malloc(n * sizeof *sym);
    if (!sym) return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "tokenizer: out of memory in BPE");
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_id[w[i]];
        if (id < 0) {
            /* byte without a token: unk_token (fused if asked) or dropped, as HF BPE */
            if (t->unk_id < 0) continue;
            if (t->fuse_unk && m > 0 && sym[m - 1] == t->unk_id) continue;
            id = t->unk_id;
        }
        sym[m++] = id;
    }
    size_t k = (int)m <= t->bpe_linear_max && m <= 64 ? merge_linear(t, sym, m)
                                                      : merge_heap(t, sym, m);
    fp4rt_status st;
    if (k == (size_t)-1) {
        st = FP4RT_OUT_OF_MEMORY;
    } else {
        st = fp4rt_idvec_push(out, sym, k);
        if (st == FP4RT_OK && cacheable && k <= FP4RT_TOK_CACHE_IDS) cache_put(t, h, w, n, sym, k);
    }
    if (sym != small) free(sym);
    return st;
}
