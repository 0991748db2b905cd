// bench/compare/loopback_tcp.c - the machine's single-stream loopback TCP
// ceiling, measured with plain syscalls: a forked receiver recv()s into a
// 1 MiB buffer, the sender send()s a 1 MiB buffer, default socket options,
// for SECONDS (default 2). Prints one JSON line like loopback_tcp.py:
//   {"mb_s": ..., "seconds": ..., "bytes": ...}
// loopback_tcp.py measures the same thing through CPython. Alternated in the
// same minutes the two agree within this box's noise (a single sample swings
// 1.0-2.9 GB/s, README), so run.sh takes the median of one sample of this
// program per round, and shows the Python figure beside it; this one also
// reports the sender's and receiver's CPU per MiB.
//
// SEND_BYTES (default 1 MiB) is how much each send() offers. run.sh also
// measures 262144: libiscsi writes every Data-Out PDU, whatever the target
// declares, as one 256 KiB writev (seen with strace), and on this kernel's
// default congestion control (BBR, which paces) a plain socket pair sending
// 256 KiB at a time moves about 0.6-0.8x what it moves with 1 MiB sends, at
// ~1.6x the sender's CPU per MiB (README, "Why the 1 MiB writes ...").
//
// Build: cc -O2 -o loopback_tcp bench/compare/loopback_tcp.c   (run.sh does)
// Usage: loopback_tcp [SECONDS [SEND_BYTES]]
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { kChunk = 1 << 20 };

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(int who) {
  struct rusage ru;
  getrusage(who, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static void die(const char* what) {
  fprintf(stderr, "loopback_tcp: %s: %s\n", what, strerror(errno));
  exit(2);
}

int main(int argc, char** argv) {
  double secs = 2.0;
  if (argc > 1) {
    char* end;
    secs = strtod(argv[1], &end);
    if (*end != '\0' || !(secs > 0 && secs <= 3600)) {
      fprintf(stderr, "usage: loopback_tcp [SECONDS in (0, 3600] [SEND_BYTES in [4096, 1 MiB]]]\n");
      return 2;
    }
  }
  size_t send_bytes = kChunk;
  if (argc > 2) {
    char* end;
    unsigned long v = strtoul(argv[2], &end, 10);
    if (*end != '\0' || v < 4096 || v > kChunk) {
      fprintf(stderr, "usage: loopback_tcp [SECONDS in (0, 3600] [SEND_BYTES in [4096, 1 MiB]]]\n");
      return 2;
    }
    send_bytes = v;
  }
  int l = socket(AF_INET, SOCK_STREAM, 0);
  if (l < 0) die("socket");
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  if (bind(l, (struct sockaddr*)&sa, sizeof sa) != 0 || listen(l, 1) != 0 ||
      getsockname(l, (struct sockaddr*)&sa, &len) != 0)
    die("listen");
  int pfd[2];
  if (pipe(pfd) != 0) die("pipe");
  char* buf = malloc(kChunk);
  if (!buf) die("malloc");
  memset(buf, 0xa5, kChunk);
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {  // receiver: count bytes until the sender closes
    close(pfd[0]);
    int c = accept(l, NULL, NULL);
    if (c < 0) die("accept");
    unsigned long long total = 0;
    for (;;) {
      ssize_t n = recv(c, buf, kChunk, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) die("recv");
      if (n == 0) break;
      total += (unsigned long long)n;
    }
    if (write(pfd[1], &total, sizeof total) != (ssize_t)sizeof total) die("write");
    _exit(0);
  }
  close(pfd[1]);
  close(l);
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0 || connect(s, (struct sockaddr*)&sa, sizeof sa) != 0) die("connect");
  double c0 = cpu_s(RUSAGE_SELF);
  double t0 = now_s(), end = t0 + secs;
  while (now_s() < end) {
    size_t off = 0;
    while (off < kChunk) {
      size_t want = kChunk - off < send_bytes ? kChunk - off : send_bytes;
      ssize_t n = send(s, buf + off, want, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) die("send");
      off += (size_t)n;
    }
  }
  shutdown(s, SHUT_WR);
  unsigned long long got = 0;
  if (read(pfd[0], &got, sizeof got) != (ssize_t)sizeof got) got = 0;
  double elapsed = now_s() - t0;
  double tx_cpu = cpu_s(RUSAGE_SELF) - c0;
  waitpid(pid, NULL, 0);
  double rx_cpu = cpu_s(RUSAGE_CHILDREN);
  close(s);
  double mib = (double)got / kChunk;
  printf("{\"mb_s\": %.1f, \"seconds\": %.2f, \"bytes\": %llu, \"send_bytes\": %zu, "
         "\"sender_us_per_mib\": %.1f, \"receiver_us_per_mib\": %.1f}\n",
         (double)got / elapsed / 1e6, elapsed, got, send_bytes, mib > 0 ? tx_cpu * 1e6 / mib : 0.0,
         mib > 0 ? rx_cpu * 1e6 / mib : 0.0);
  free(buf);
  return got ? 0 : 1;
}
