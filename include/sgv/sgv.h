/* sgv/sgv.h - C API of libsgv: SGV cache pools, budgets, vectors.
 *
 * Usable from C99. Every function returning int returns 0 or a negative
 * errno. A failed allocation holds nothing. See sgv/cache.hpp and
 * sgv/budget.hpp for the semantics behind each call. */
#ifndef SGV_SGV_H
#define SGV_SGV_H

#include <stddef.h>
#include <stdint.h>

#include "sgv/seg.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sgv_pool sgv_pool;
typedef struct sgv_budget sgv_budget;
typedef struct sgv_vec sgv_vec;

/* Allocation flags (SCST equivalents in parentheses). */
#define SGV_NO_CACHE 1u             /* one-shot vector (SGV_POOL_ALLOC_NO_CACHED) */
#define SGV_CACHE_HIT_ONLY 2u       /* never build on a miss (SGV_POOL_NO_ALLOC_ON_CACHE_MISS) */
#define SGV_RETURN_EMPTY_ON_FAIL 4u /* empty vector instead of -ENOMEM (SGV_POOL_RETURN_OBJ_ON_ALLOC_FAIL) */
#define SGV_GET_NEW 8u              /* always build a new cacheable vector (SGV_POOL_ALLOC_GET_NEW) */

/* Clustering. */
#define SGV_CLUSTER_NONE 0
#define SGV_CLUSTER_TAIL 1
#define SGV_CLUSTER_FULL 2

/* Page sources. */
#define SGV_PAGES_ANON 0    /* anonymous mmap (default) */
#define SGV_PAGES_HUGETLB 1 /* 2 MiB huge pages, falls back to anonymous */
#define SGV_PAGES_MEMFD 2   /* memfd: each segment has fd + offset */
#define SGV_PAGES_HOOKS 3   /* caller-supplied hooks below */

/* One contiguous run of OS pages from a page source. */
struct sgv_page_run {
  void *addr;
  size_t pages;    /* 4 KiB OS pages */
  int fd;          /* -1 unless backed by a shareable file */
  uint64_t offset; /* byte offset of addr in fd */
};

/* Caller-supplied page source. get fills *out with 1..max_pages contiguous
 * pages and returns 0 or a negative errno; put receives each run back exactly
 * as handed out. Both may be called from any thread. */
struct sgv_page_hooks {
  int (*get)(void *priv, size_t max_pages, struct sgv_page_run *out);
  void (*put)(void *priv, const struct sgv_page_run *run);
  void *priv;
};

struct sgv_pool_opts {
  const char *name;
  int clustering;            /* 0 none, 1 tail, 2 full */
  long purge_interval_ms;    /* default 60000; < 0 disables idle purge */
  unsigned max_order;        /* default 10 (4 MiB vectors) */
  int page_source;           /* SGV_PAGES_* */
  struct sgv_page_hooks hooks; /* when page_source == SGV_PAGES_HOOKS */
  size_t low_watermark_bytes;  /* pressure shrinks cached memory down to this */
  int watch_pressure;          /* nonzero: start the PSI / memory.events watcher */
  size_t thread_batch_bytes;   /* default 512 KiB (0 = default): vectors move between a
                                  thread's cache and the shared pool in batches of this
                                  many bytes; a thread keeps up to two per order (~15 MiB
                                  per pool at the default, ~60 MiB at 4 MiB) */
};

void sgv_pool_opts_init(struct sgv_pool_opts *opts);

/* Returns NULL on failure (errno set). global may be NULL. */
sgv_pool *sgv_pool_create(const struct sgv_pool_opts *opts, sgv_budget *global);
void sgv_pool_destroy(sgv_pool *pool);

/* parent NULL = root. limit 0 = unlimited. Returns NULL on failure. */
sgv_budget *sgv_budget_create(sgv_budget *parent, size_t limit_bytes, size_t reserve_bytes);
void sgv_budget_destroy(sgv_budget *budget);
size_t sgv_budget_used(const sgv_budget *budget);
size_t sgv_budget_peak(const sgv_budget *budget);

/* -EINVAL for bytes == 0 or unknown flags; -ENOMEM when a budget, the
 * watermark or the page source refuses (nothing held). */
int sgv_alloc(sgv_pool *pool, size_t bytes, unsigned flags, sgv_budget *charge, sgv_vec **out);
/* Drop one holder; the last returns the vector to its pool. */
void sgv_free(sgv_vec *vec);
/* Add a holder (e.g. the kernel during a zero-copy send). */
void sgv_ref(sgv_vec *vec);
const struct sgv_seg *sgv_segs(const sgv_vec *vec, unsigned *count);
size_t sgv_len(const sgv_vec *vec);
/* File backing of segment i: returns the fd (>= 0) and sets *offset, or
 * -ENOENT when the pages are not file-backed, -EINVAL for a bad index. */
int sgv_seg_fd(const sgv_vec *vec, unsigned i, uint64_t *offset);

/* Returns bytes released. */
size_t sgv_pool_shrink(sgv_pool *pool, size_t bytes);
/* key=value lines ("hits=", "misses=", ...) into buf, NUL-terminated.
 * -ENOSPC when buf is too small (output truncated). */
int sgv_pool_dump_stats(sgv_pool *pool, char *buf, size_t len);
/* 0 when the pool's invariants hold, -EFAULT otherwise. */
int sgv_pool_check(sgv_pool *pool);

#ifdef __cplusplus
}
#endif

#endif /* SGV_SGV_H */
