// touch_alias.cpp - why the 256 KiB and 1 MiB single-thread cycle rows do
// not rank allocators on this machine.
//
// The cycle's touch writes one byte at the start of every 4 KiB page, so all
// of its stores have page offset 0. The next cycle's first loads (a free
// list, a vector header, a span map) issue while many of those stores are
// still queued. This program runs the touch alone, preceded by exactly one
// load of the buffer's address from a "header", and moves only that header's
// page offset. Nothing else changes: same buffer, same pages, same loop.
//
//   bench_touch_alias [kib]      (default 256; try 1024)
//
// On the 2-core AMD EPYC VM the libsgv targets were measured on, 256 KiB:
// header at page offset 0 or 8 -> ~500 ns per cycle, at 64..4032 -> ~660 ns.
// So which subject "wins" cycle/256K/1t and cycle/1M/1t depends on where its
// bookkeeping happens to sit relative to page offset 0 (bench/README.md has
// the same sgv binary at 445-462 ns with its vector headers from tcmalloc
// and 652-676 ns from glibc), not on what the allocator does.
#include <sys/mman.h>
#include <time.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>

namespace {

double thread_ns() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e9 + static_cast<double>(t.tv_nsec);
}

// One load of the buffer's address from *hdr, then the cycle's touch.
[[gnu::noinline]] double cycle_ns(char** hdr, size_t n) {
  constexpr int kWarm = 1000, kIters = 20000;
  double t0 = 0;
  for (int i = 0; i < kWarm + kIters; ++i) {
    if (i == kWarm) t0 = thread_ns();
    auto* b = static_cast<volatile uint8_t*>(static_cast<void*>(*static_cast<char* volatile*>(hdr)));
    for (size_t off = 0; off < n; off += 4096) b[off] = 1;
  }
  return (thread_ns() - t0) / kIters;
}

}  // namespace

int main(int argc, char** argv) {
  size_t kib = argc > 1 ? std::strtoul(argv[1], nullptr, 0) : 256;
  if (kib < 4 || kib > (1u << 20)) {
    std::fprintf(stderr, "usage: %s [kib 4..1048576]\n", argv[0]);
    return 2;
  }
  size_t n = kib << 10;
  auto* buf = static_cast<char*>(
      mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0));
  auto* page = static_cast<char*>(
      mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0));
  if (buf == MAP_FAILED || page == MAP_FAILED) {
    std::perror("mmap");
    return 1;
  }
  std::printf("touch of %zu KiB (one byte per 4 KiB page), one header load before it:\n", kib);
  for (size_t off : {size_t{0}, size_t{8}, size_t{64}, size_t{256}, size_t{1008}, size_t{2048}, size_t{4032}}) {
    auto** hdr = reinterpret_cast<char**>(page + off);
    *hdr = buf;
    std::printf("  header at page offset %4zu: %6.0f ns per cycle\n", off, cycle_ns(hdr, n));
  }
  return 0;
}
