/* bench/compare/malloc_count.c - LD_PRELOAD shim that counts a process's heap
 * allocations (malloc, calloc, realloc, the aligned family; operator new goes
 * through malloc) so run.sh can report heap allocations per command for every
 * target alike, sgvd included, without any help from the target.
 *
 * The count lives in a shared file mapping, $SGV_MALLOC_COUNT_DIR/malloc-count.PID
 * (8 bytes, native endian), which the harness reads before and after a run.
 * Allocation itself is glibc's (__libc_* entry points, so no dlsym recursion).
 * Cost: one relaxed atomic add per allocation. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t a, size_t b);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t al, size_t n);

/* Counts before the constructor maps the shared file land here and are
 * carried over; relaxed everywhere: a reader wants a total, not an order. */
static _Atomic unsigned long long early;
static _Atomic unsigned long long *counter = &early;

__attribute__((constructor)) static void malloc_count_init(void) {
  const char *dir = getenv("SGV_MALLOC_COUNT_DIR");
  char path[512];
  if (!dir) return;
  snprintf(path, sizeof path, "%s/malloc-count.%d", dir, (int)getpid());
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  if (ftruncate(fd, 8) == 0) {
    void *p = mmap(NULL, 8, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p != MAP_FAILED) {
      _Atomic unsigned long long *c = p;
      atomic_store_explicit(c, atomic_load_explicit(&early, memory_order_relaxed),
                            memory_order_relaxed);
      counter = c;
    }
  }
  close(fd);
}

static inline void count(void) { atomic_fetch_add_explicit(counter, 1, memory_order_relaxed); }

void *malloc(size_t n) { count(); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { count(); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { count(); return __libc_realloc(p, n); }
void *memalign(size_t al, size_t n) { count(); return __libc_memalign(al, n); }
void *aligned_alloc(size_t al, size_t n) { count(); return __libc_memalign(al, n); }
void *valloc(size_t n) { count(); return __libc_memalign((size_t)sysconf(_SC_PAGESIZE), n); }
int posix_memalign(void **out, size_t al, size_t n) {
  count();
  void *p = __libc_memalign(al, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
