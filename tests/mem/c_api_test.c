/* c_api_test.c - the C API of libsgv exercised from C99 against sgv/sgv.h
 * alone: every call, a budget refusal, trim, shrink and the stats dump.
 * Judged by exit status. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sgv/sgv.h"

#define CHECK(c)                                                  \
  do {                                                            \
    if (!(c)) {                                                   \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
      exit(1);                                                    \
    }                                                             \
  } while (0)

/* Caller-supplied pages: one page per call from a static arena. */
static char arena[16 * 4096] __attribute__((aligned(4096)));
static int hook_gets, hook_puts;
static int hook_get(void *priv, size_t max_pages, struct sgv_page_run *out) {
  int *next = (int *)priv;
  (void)max_pages;
  if (*next >= 16) return -ENOMEM;
  out->addr = arena + (size_t)(*next)++ * 4096;
  out->pages = 1;
  out->fd = -1;
  out->offset = 0;
  ++hook_gets;
  return 0;
}
static void hook_put(void *priv, const struct sgv_page_run *run) {
  (void)priv;
  (void)run;
  ++hook_puts;
}

static size_t seg_total(const sgv_vec *v) {
  unsigned n = 0, i;
  const struct sgv_seg *s = sgv_segs(v, &n);
  size_t t = 0;
  for (i = 0; i < n; ++i) t += s[i].len;
  return t;
}

int main(void) {
  struct sgv_pool_opts o;
  sgv_budget *global, *sess;
  sgv_pool *pool, *mpool;
  sgv_vec *v = NULL, *w = NULL;
  char buf[16384];
  unsigned n = 0;
  uint64_t off = 0;

  sgv_pool_opts_init(&o);
  CHECK(o.max_order == 10 && o.purge_interval_ms == 60000 && o.clustering == 0);
  CHECK(o.thread_batch_bytes == 512u * 1024);
  o.name = "c-test";
  o.purge_interval_ms = -1;

  global = sgv_budget_create(NULL, 64u << 20, 0);
  sess = sgv_budget_create(global, 8 * 4096, 0);
  CHECK(global && sess);
  pool = sgv_pool_create(&o, global);
  CHECK(pool != NULL);

  CHECK(sgv_alloc(pool, 5000, 0, sess, &v) == 0);
  CHECK(sgv_len(v) == 5000);
  CHECK(seg_total(v) == 5000);
  CHECK(sgv_segs(v, &n) != NULL && n >= 1);
  memset(sgv_segs(v, &n)[0].addr, 7, 4096);
  CHECK(sgv_budget_used(sess) == 2 * 4096);
  CHECK(sgv_seg_fd(v, 0, &off) == -ENOENT);
  CHECK(sgv_seg_fd(v, 99, &off) == -EINVAL);

  CHECK(sgv_alloc(pool, 7 * 4096, 0, sess, &w) == -ENOMEM); /* 2 + 8 > 8 pages */
  CHECK(sgv_budget_used(sess) == 2 * 4096);
  CHECK(sgv_alloc(pool, 0, 0, NULL, &w) == -EINVAL);

  sgv_ref(v);
  sgv_free(v); /* one holder left */
  CHECK(sgv_budget_used(sess) == 2 * 4096);
  sgv_free(v);
  CHECK(sgv_budget_used(sess) == 0);
  CHECK(sgv_budget_peak(sess) == 2 * 4096);

  CHECK(sgv_alloc(pool, 8192, SGV_CACHE_HIT_ONLY, NULL, &w) == 0); /* the cached one */
  sgv_free(w);
  CHECK(sgv_alloc(pool, 4096, SGV_NO_CACHE, NULL, &w) == 0);
  sgv_free(w);
  CHECK(sgv_alloc(pool, 4096, SGV_GET_NEW, NULL, &w) == 0);
  sgv_free(w);
  CHECK(sgv_alloc(pool, 64 * 4096, SGV_RETURN_EMPTY_ON_FAIL, sess, &w) == 0);
  CHECK(sgv_len(w) == 0);
  sgv_free(w);

  CHECK(sgv_pool_check(pool) == 0);
  CHECK(sgv_pool_dump_stats(pool, buf, sizeof buf) == 0);
  CHECK(strstr(buf, "hits=") != NULL && strstr(buf, "misses=") != NULL);
  CHECK(strstr(buf, "name=c-test\n") != NULL);
  CHECK(sgv_pool_dump_stats(pool, buf, 8) == -ENOSPC && strlen(buf) == 7);
  CHECK(sgv_pool_shrink(pool, (size_t)-1) == 3 * 4096); /* order 1 + order 0 */
  CHECK(sgv_budget_used(global) == 0);
  sgv_pool_destroy(pool);

  /* memfd pages expose fd + offset. */
  sgv_pool_opts_init(&o);
  o.page_source = SGV_PAGES_MEMFD;
  o.purge_interval_ms = -1;
  mpool = sgv_pool_create(&o, NULL);
  CHECK(mpool != NULL);
  CHECK(sgv_alloc(mpool, 4096, 0, NULL, &v) == 0);
  CHECK(sgv_seg_fd(v, 0, &off) >= 0);
  sgv_free(v);
  sgv_pool_destroy(mpool);

  /* Hooks with private data, tail clustering: 4 single pages, 1 segment. */
  {
    int next = 0;
    sgv_pool *hpool;
    sgv_pool_opts_init(&o);
    o.page_source = SGV_PAGES_HOOKS;
    o.hooks.get = hook_get;
    o.hooks.put = hook_put;
    o.hooks.priv = &next;
    o.clustering = SGV_CLUSTER_TAIL;
    o.purge_interval_ms = -1;
    hpool = sgv_pool_create(&o, NULL);
    CHECK(hpool != NULL);
    CHECK(sgv_alloc(hpool, 4 * 4096, 0, NULL, &v) == 0);
    CHECK(hook_gets == 4);
    CHECK(sgv_segs(v, &n)[0].addr == arena && n == 1);
    sgv_free(v);
    sgv_pool_destroy(hpool);
    CHECK(hook_puts == 4);
  }

  /* Hugetlb falls back to ordinary pages where none are reserved. */
  sgv_pool_opts_init(&o);
  o.page_source = SGV_PAGES_HUGETLB;
  o.purge_interval_ms = -1;
  mpool = sgv_pool_create(&o, NULL);
  CHECK(mpool != NULL);
  CHECK(sgv_alloc(mpool, 4u << 20, 0, NULL, &v) == 0);
  CHECK(seg_total(v) == 4u << 20);
  memset(sgv_segs(v, &n)[0].addr, 1, 4096);
  sgv_free(v);
  sgv_pool_destroy(mpool);

  o.clustering = 7;
  CHECK(sgv_pool_create(&o, NULL) == NULL && errno == EINVAL);

  sgv_budget_destroy(sess);
  sgv_budget_destroy(global);
  puts("c_api_test: ok");
  return 0;
}
