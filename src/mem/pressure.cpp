// pressure.cpp - the pool's maintenance thread: idle purge every
// purge_interval / 4, and the memory-pressure watcher (Linux PSI trigger, or
// cgroup v2 memory.events) that shrinks cached vectors to the low watermark.
// Where neither is usable the pool works without it: watch_pressure returns
// the error and logs it once per process.
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "mem/cache_impl.hpp"

namespace sgv {

namespace {

std::atomic<bool> g_logged{false};  // relaxed exchange: log once per process

void log_once(const char* what, int err) {
  if (!g_logged.exchange(true, std::memory_order_relaxed))
    std::fprintf(stderr, "sgv: memory pressure watcher unavailable (%s: %s); pools shrink only on demand\n", what,
                 std::strerror(-err));
}

// PSI trigger: some stall of 150 ms within any 1 s window. Kernels since
// 6.5 accept only windows that are multiples of 2 s from unprivileged
// processes (EINVAL otherwise), so that is the second try.
int open_psi() {
  static const char* const trigs[] = {"some 150000 1000000", "some 300000 2000000"};
  int e = -ENOENT;
  for (const char* trig : trigs) {
    int fd = open("/proc/pressure/memory", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -errno;
    if (write(fd, trig, std::strlen(trig) + 1) >= 0) return fd;
    e = -errno;
    close(fd);
  }
  return e;
}

int open_cgroup_events() {
  std::ifstream f("/proc/self/cgroup");
  std::string line, path;
  while (std::getline(f, line))
    if (line.rfind("0::", 0) == 0) path = line.substr(3);
  if (path.empty()) return -ENOENT;
  std::string file = "/sys/fs/cgroup" + path + "/memory.events";
  int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  char buf[512];
  [[maybe_unused]] ssize_t n = read(fd, buf, sizeof buf);  // arm the notification
  return fd;
}

}  // namespace

int Pool::watch_pressure() {
  Impl& im = *impl_;
  if (im.pressure_fd.load(std::memory_order_acquire) >= 0) return 0;
  int kind = 1;
  int fd = open_psi();
  if (fd < 0) {
    int psi_err = fd;
    kind = 2;
    fd = open_cgroup_events();
    if (fd < 0) {
      log_once("PSI", psi_err);
      return psi_err;
    }
  }
  im.pressure_kind.store(kind, std::memory_order_relaxed);
  // release: pairs with the acquire load in thread_main.
  im.pressure_fd.store(fd, std::memory_order_release);
  CacheEngine::start_thread(*this);
  return 0;
}

void CacheEngine::start_thread(Pool& p) {
  Pool::Impl& im = *p.impl_;
  std::lock_guard<std::mutex> lk(im.thr_mu);
  if (im.thr.joinable()) return;
  im.stop_efd = eventfd(0, EFD_CLOEXEC);
  if (im.stop_efd < 0) return;  // no maintenance thread: maintain() stays callable
  im.thr = std::thread(thread_main, &p);
}

void CacheEngine::thread_main(Pool* p) {
  Pool::Impl& im = *p->impl_;
  using clock = std::chrono::steady_clock;
  auto next = clock::now() + std::chrono::milliseconds(im.tick_ms);
  for (;;) {
    int pfd = im.pressure_fd.load(std::memory_order_acquire);
    pollfd fds[2] = {{im.stop_efd, POLLIN, 0}, {pfd, POLLPRI, 0}};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next - clock::now()).count();
    int rc = poll(fds, 2, static_cast<int>(std::max<long long>(0, left)));
    if (rc > 0 && fds[0].revents) return;
    if (rc > 0 && (fds[1].revents & (POLLPRI | POLLERR))) {
      if (im.pressure_kind.load(std::memory_order_relaxed) == 2) {
        char buf[512];
        lseek(pfd, 0, SEEK_SET);  // re-arm the kernfs notification
        [[maybe_unused]] ssize_t n = read(pfd, buf, sizeof buf);
      }
      p->on_pressure();
    }
    if (clock::now() >= next) {
      if (p->opts_.purge_interval_ms > 0 || p->waiters_.load(std::memory_order_relaxed)) p->maintain();
      next = clock::now() + std::chrono::milliseconds(im.tick_ms);
    }
  }
}

}  // namespace sgv
