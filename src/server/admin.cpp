// server/admin.cpp - the admin socket's thread, its framing, and the client
// call sgvctl uses. Slow path throughout: a human asks a few times a minute.
#include "server/admin.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sgv::server {

namespace {

constexpr size_t kMaxLine = 4096;
constexpr int kClientTimeoutS = 5;  // a stalled client must not wedge the endpoint

int make_addr(const std::string& path, sockaddr_un& a) {
  std::memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof a.sun_path) return -ENAMETOOLONG;
  std::memcpy(a.sun_path, path.data(), path.size());
  return 0;
}

void set_timeouts(int fd) {
  timeval tv{kClientTimeoutS, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

bool write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    s.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string frame(const std::string& body) {
  std::string out;
  out.reserve(body.size() + 8);
  size_t pos = 0;
  while (pos < body.size()) {
    size_t nl = body.find('\n', pos);
    size_t end = nl == std::string::npos ? body.size() : nl;
    if (body[pos] == '.') out += '.';
    out.append(body, pos, end - pos);
    out += '\n';
    pos = end + 1;
  }
  out += ".\n";
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

}  // namespace

AdminServer::~AdminServer() { stop(); }

void AdminServer::add(std::string command, std::string help, Handler h) {
  commands_[std::move(command)] = Command{std::move(help), std::move(h)};
}

std::string AdminServer::handle(std::string_view line) const {
  line = trim(line);
  if (line == "help") {
    std::string r;
    for (const auto& [name, c] : commands_) r += name + "\t" + c.help + "\n";
    return r + "help\tthis list\n";
  }
  auto it = commands_.find(line);
  if (it == commands_.end()) return "error: unknown command '" + std::string(line) + "' (try help)\n";
  return it->second.fn();
}

int AdminServer::start(const std::string& path) {
  if (thread_.joinable()) return -EBUSY;
  sockaddr_un a;
  if (int rc = make_addr(path, a); rc != 0) return rc;
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return -EEXIST;  // never unlink someone's file
    std::string probe;
    int rc = admin_request(path, "version", probe);
    if (rc == 0) return -EADDRINUSE;  // another sgvd answers there
    ::unlink(path.c_str());
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 8) != 0) {
    int e = errno;
    ::close(fd);
    return -e;
  }
  ::chmod(path.c_str(), 0600);  // stats and config are the operator's business
  int wfd = ::eventfd(0, EFD_CLOEXEC);
  if (wfd < 0) {
    int e = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return -e;
  }
  listen_fd_ = fd;
  wake_fd_ = wfd;
  path_ = path;
  thread_ = std::thread([this] { serve(); });
  return 0;
}

void AdminServer::stop() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  ssize_t n = ::write(wake_fd_, &one, sizeof one);
  (void)n;  // eventfd write can't fail short of a full counter
  thread_.join();
  ::close(listen_fd_);
  ::close(wake_fd_);
  listen_fd_ = wake_fd_ = -1;
  ::unlink(path_.c_str());
}

void AdminServer::serve() {
  for (;;) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents) return;
    if (!(p[0].revents & POLLIN)) continue;
    int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    set_timeouts(c);
    serve_client(c);
    ::close(c);
  }
}

void AdminServer::serve_client(int fd) {
  std::string buf;
  char chunk[512];
  for (;;) {
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      if (trim(line).empty()) continue;
      if (trim(line) == "quit") return;
      if (!write_all(fd, frame(handle(line)))) return;
    }
    if (buf.size() > kMaxLine) {
      write_all(fd, frame("error: command line too long\n"));
      return;
    }
    pollfd p[2] = {{fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int pr = ::poll(p, 2, kClientTimeoutS * 1000);
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0 || p[1].revents) return;
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // A last command without '\n' before EOF still gets its answer.
      if (!trim(buf).empty()) write_all(fd, frame(handle(buf)));
      return;
    }
    buf.append(chunk, static_cast<size_t>(n));
  }
}

int admin_request(const std::string& path, std::string_view command, std::string& reply) {
  sockaddr_un a;
  if (int rc = make_addr(path, a); rc != 0) return rc;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  set_timeouts(fd);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    int e = errno;
    ::close(fd);
    return -e;
  }
  std::string req(command);
  req += '\n';
  if (!write_all(fd, req)) {
    int e = errno ? errno : EPIPE;
    ::close(fd);
    return -e;
  }
  // Read until the "." line, then undo the dot-stuffing.
  std::string raw;
  char chunk[4096];
  int rc = -EPROTO;
  for (;;) {
    if (raw == ".\n" || (raw.size() >= 3 && raw.compare(raw.size() - 3, 3, "\n.\n") == 0)) {
      rc = 0;
      break;
    }
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = -errno;
      break;
    }
    if (n == 0) break;
    raw.append(chunk, static_cast<size_t>(n));
  }
  ::close(fd);
  if (rc != 0) return rc;
  raw.resize(raw.size() - 2);  // the final ".\n"
  reply.clear();
  size_t pos = 0;
  while (pos < raw.size()) {
    size_t nl = raw.find('\n', pos);
    size_t end = nl == std::string::npos ? raw.size() : nl;
    size_t from = raw[pos] == '.' ? pos + 1 : pos;
    reply.append(raw, from, end - from);
    reply += '\n';
    pos = end + 1;
  }
  return 0;
}

}  // namespace sgv::server
