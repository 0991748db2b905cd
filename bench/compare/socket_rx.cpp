// bench/compare/socket_rx.cpp - what receiving iSCSI headers costs a target
// thread with epoll vs io_uring on this machine (the measurement behind the
// choice written in src/server/reactor.hpp).
//
// A client thread sends bursts of B 48-byte "PDUs" (as an initiator at queue
// depth B sends READ commands) over a loopback TCP pair and waits for a
// 1-byte answer per burst; the server thread receives them as:
//   epoll-readv : epoll_wait, then one readv of 48 bytes per PDU until
//                 EAGAIN (sgvd before the header read-ahead)
//   epoll-peek  : epoll_wait, recv(MSG_PEEK) and one read of the whole run
//                 of headers (sgvd now: payload is never read ahead)
//   uring-recv  : io_uring, one 48-byte recv SQE per PDU, the answer's send
//                 and the next recv in the same io_uring_enter (the
//                 completion model: each PDU's destination must be known
//                 before its recv is posted, so one ring round trip per PDU)
//   uring-batch : io_uring, one recv into a burst-sized buffer per enter
//                 (only valid for header-only traffic: with immediate data
//                 it would read payload into the wrong buffer, i.e. a copy)
// and prints the server thread's CPU time per PDU (CLOCK_THREAD_CPUTIME_ID).
//
// Build and run (not part of the CMake build; needs liburing-dev):
//   g++ -O2 -std=c++20 bench/compare/socket_rx.cpp -o /tmp/socket_rx -luring -lpthread
//   /tmp/socket_rx [bursts=20000] [burst=32]
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace {

constexpr size_t kHdr = 48;

double thread_cpu_s() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

void socket_pair(int* a, int* b) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  if (bind(l, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(l, 1) != 0 ||
      getsockname(l, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    perror("socket_rx: listen");
    exit(2);
  }
  *a = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(*a, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    perror("socket_rx: connect");
    exit(2);
  }
  *b = accept(l, nullptr, nullptr);
  close(l);
  int one = 1;
  setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(*b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void client(int fd, long bursts, unsigned burst) {
  static char buf[kHdr * 1024];
  std::memset(buf, 0x21, sizeof buf);
  for (long i = 0; i < bursts; ++i) {
    if (write(fd, buf, kHdr * burst) != ssize_t(kHdr * burst)) exit(3);
    char ack;
    if (read(fd, &ack, 1) != 1) exit(3);
  }
}

enum class Mode { epoll_readv, epoll_peek, uring_recv, uring_batch };

// Receives bursts*burst headers on fd; returns the thread's CPU seconds.
double server(int fd, Mode mode, long bursts, unsigned burst) {
  static char hdr[kHdr], run[kHdr * 1024];
  long want = bursts * long(burst), got = 0;
  size_t partial = 0;  // bytes of the current header (readv mode)
  double t0 = thread_cpu_s();
  if (mode == Mode::epoll_readv || mode == Mode::epoll_peek) {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    int ep = epoll_create1(0);
    epoll_event ev{};
    ev.events = EPOLLIN;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    long since_ack = 0;
    while (got < want) {
      epoll_event out;
      if (epoll_wait(ep, &out, 1, -1) < 0 && errno != EINTR) exit(4);
      for (;;) {
        ssize_t r;
        if (mode == Mode::epoll_readv) {
          iovec iov{hdr + partial, kHdr - partial};
          r = readv(fd, &iov, 1);
          if (r > 0) {
            partial += size_t(r);
            if (partial == kHdr) {
              partial = 0;
              ++got;
              ++since_ack;
            }
          }
        } else {
          r = recv(fd, run, sizeof run, MSG_PEEK | MSG_DONTWAIT);
          if (r >= ssize_t(kHdr)) {
            size_t whole = size_t(r) / kHdr * kHdr;
            r = read(fd, run, whole);
            got += r / ssize_t(kHdr);
            since_ack += r / ssize_t(kHdr);
          } else if (r > 0) {
            break;  // a partial header: wait for the rest
          }
        }
        if (since_ack >= long(burst)) {
          since_ack -= burst;
          char a = 1;
          if (write(fd, &a, 1) != 1) exit(4);
        }
        if (r <= 0) break;
      }
    }
    close(ep);
  } else {
    io_uring ring;
    if (io_uring_queue_init(64, &ring, 0) != 0) {
      std::fprintf(stderr, "socket_rx: no io_uring here\n");
      exit(2);
    }
    static char ack = 1;
    long since_ack = 0;
    size_t chunk = mode == Mode::uring_recv ? kHdr : kHdr * burst;
    size_t have = 0;  // bytes in the current chunk
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_recv(sqe, fd, run, chunk, 0);
    sqe->user_data = 0;
    while (got < want) {
      io_uring_submit_and_wait(&ring, 1);
      io_uring_cqe* cqe;
      unsigned head, seen = 0;
      bool rearm = false;
      io_uring_for_each_cqe(&ring, head, cqe) {
        ++seen;
        if (cqe->user_data == 1) continue;  // an ack's send
        if (cqe->res <= 0) exit(5);
        have += size_t(cqe->res);
        got += long(have / kHdr);
        since_ack += long(have / kHdr);
        have %= kHdr;
        rearm = true;
      }
      io_uring_cq_advance(&ring, seen);
      if (since_ack >= long(burst)) {
        since_ack -= burst;
        sqe = io_uring_get_sqe(&ring);
        io_uring_prep_send(sqe, fd, &ack, 1, 0);
        sqe->user_data = 1;
      }
      if (rearm && got < want) {
        sqe = io_uring_get_sqe(&ring);
        io_uring_prep_recv(sqe, fd, run + have, chunk - have, 0);
        sqe->user_data = 0;
      }
    }
    io_uring_submit(&ring);
    io_uring_queue_exit(&ring);
  }
  return thread_cpu_s() - t0;
}

}  // namespace

int main(int argc, char** argv) {
  long bursts = argc > 1 ? atol(argv[1]) : 20000;
  unsigned burst = argc > 2 ? unsigned(atoi(argv[2])) : 32;
  if (bursts <= 0 || burst == 0 || burst > 1024) {
    std::fprintf(stderr, "usage: socket_rx [bursts>0] [burst 1..1024]\n");
    return 2;
  }
  const struct {
    const char* name;
    Mode mode;
  } modes[] = {{"epoll-readv", Mode::epoll_readv},
               {"epoll-peek", Mode::epoll_peek},
               {"uring-recv", Mode::uring_recv},
               {"uring-batch", Mode::uring_batch}};
  for (const auto& m : modes) {
    int c, s;
    socket_pair(&c, &s);
    std::thread t(client, c, bursts, burst);
    double cpu = server(s, m.mode, bursts, burst);
    t.join();
    close(c);
    close(s);
    std::printf("%-12s burst %u: %.2f us of server CPU per 48-byte PDU\n", m.name, burst,
                cpu * 1e6 / double(bursts * long(burst)));
  }
  return 0;
}
