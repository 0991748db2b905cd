// sgv/page_source.hpp - where the SGV cache gets its OS pages from.
//
// A page source hands out *runs*: the largest virtually contiguous block of
// OS pages it can give, up to what was asked. The cache builds a vector from
// as few runs as it can and merges adjacent runs into one segment (clustering).
// Runs are given back exactly as they were handed out, one put per get.
//
// Sources: anonymous mmap (default), hugetlb 2 MiB with fallback to anonymous
// memory when no huge pages are reserved, memfd (every run has fd + offset so
// another process can map the same pages), and caller-supplied hooks.
// Sources are called only on the slow path (cache miss, purge, shrink) and
// must be thread-safe.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "sgv/sgv.h"

namespace sgv {

inline constexpr size_t kPageSize = 4096;
inline constexpr unsigned kPageShift = 12;

// One contiguous run of OS pages. fd is -1 unless the pages are a window of a
// file (memfd) at byte offset `offset`. Same layout as struct sgv_page_run.
using PageRun = ::sgv_page_run;

class PageSource {
 public:
  virtual ~PageSource() = default;
  // Fill *out with one run of 1..max_pages pages (as many as it can give
  // contiguously). Returns 0 or a negative errno (-ENOMEM); on error *out is
  // untouched and nothing is held.
  virtual int get(size_t max_pages, PageRun* out) = 0;
  // Give back a run exactly as get() returned it.
  virtual void put(const PageRun& run) = 0;
  virtual const char* name() const = 0;
};

// Anonymous private mmap; one run per call (the whole request).
std::unique_ptr<PageSource> make_anon_source();
// MAP_HUGETLB 2 MiB pages for runs of >= 512 OS pages; falls back to anonymous
// memory (and counts the fallback) when the kernel has none reserved.
std::unique_ptr<PageSource> make_hugetlb_source();
// Pages from one memfd, each run mmap'ed MAP_SHARED at its own offset; freed
// runs are hole-punched. Returns nullptr (errno set) when memfd_create fails.
std::unique_ptr<PageSource> make_memfd_source(const char* name = "sgv");
// Caller-supplied hooks (C struct), e.g. pages from a registered buffer.
std::unique_ptr<PageSource> make_hook_source(const sgv_page_hooks& hooks);

// Counters a hugetlb source keeps (for tests and stats); null for others.
struct HugetlbCounters {
  uint64_t huge_runs = 0;      // runs served from huge pages
  uint64_t fallback_runs = 0;  // runs that fell back to anonymous memory
};
// Returns false if `src` is not a hugetlb source.
bool hugetlb_counters(const PageSource* src, HugetlbCounters* out);

}  // namespace sgv
