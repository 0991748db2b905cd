// tests/server/admin_test.cpp - the admin socket: commands reach their
// callbacks, unknown ones get an error, any text (blank lines, lines that
// start with '.') survives the framing, a live socket is not stolen and a
// stale one is replaced, stop() removes the socket.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

#include "server/admin.hpp"

using namespace sgv::server;

namespace {

std::string sock_path(const char* tag) {
  return "/tmp/sgv_admin_test_" + std::to_string(::getpid()) + "_" + tag + ".sock";
}

}  // namespace

TEST(Admin, HandleWithoutSocket) {
  AdminServer a;
  a.add("version", "v", [] { return std::string("sgv 9\n"); });
  EXPECT_EQ(a.handle("version"), "sgv 9\n");
  EXPECT_EQ(a.handle("  version \r"), "sgv 9\n");
  EXPECT_EQ(a.handle("bogus").rfind("error: unknown command 'bogus'", 0), 0u);
  EXPECT_NE(a.handle("help").find("version\tv"), std::string::npos);
}

TEST(Admin, RequestsOverTheSocket) {
  std::string path = sock_path("req");
  AdminServer a;
  std::atomic<int> calls{0};
  const std::string tricky = "first\n\n.starts with a dot\n.\n..\nlast";
  a.add("stats", "s", [&calls] {
    // Relaxed: the reply travels back over the socket after this, which
    // orders it before the test thread's load.
    calls.fetch_add(1, std::memory_order_relaxed);
    return std::string("commands=3\nbytes=4096\n");
  });
  a.add("tricky", "t", [&tricky] { return tricky; });
  a.add("empty", "e", [] { return std::string(); });
  ASSERT_EQ(a.start(path), 0);
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  std::string reply;
  ASSERT_EQ(admin_request(path, "stats", reply), 0);
  EXPECT_EQ(reply, "commands=3\nbytes=4096\n");
  ASSERT_EQ(admin_request(path, "tricky", reply), 0);
  EXPECT_EQ(reply, tricky + "\n");
  ASSERT_EQ(admin_request(path, "empty", reply), 0);
  EXPECT_EQ(reply, "");
  ASSERT_EQ(admin_request(path, "nope", reply), 0);
  EXPECT_EQ(reply.rfind("error: unknown command 'nope'", 0), 0u);
  EXPECT_EQ(calls.load(std::memory_order_relaxed), 1);

  // A second endpoint must not steal a live socket.
  AdminServer b;
  EXPECT_EQ(b.start(path), -EADDRINUSE);

  a.stop();
  EXPECT_NE(::access(path.c_str(), F_OK), 0);  // unlinked
  EXPECT_NE(admin_request(path, "stats", reply), 0);
}

TEST(Admin, SeveralCommandsOnOneConnection) {
  std::string path = sock_path("multi");
  AdminServer a;
  a.add("one", "", [] { return std::string("1\n"); });
  a.add("two", "", [] { return std::string("2\n"); });
  ASSERT_EQ(a.start(path), 0);
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  const char req[] = "one\n\ntwo\nquit\n";
  ASSERT_EQ(::send(fd, req, sizeof req - 1, 0), static_cast<ssize_t>(sizeof req - 1));
  std::string got;
  char buf[256];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) got.append(buf, static_cast<size_t>(n));
  ::close(fd);
  EXPECT_EQ(got, "1\n.\n2\n.\n");  // then the server closed on "quit"
  a.stop();
}

TEST(Admin, StaleSocketIsReplacedButOtherFilesAreNot) {
  std::string path = sock_path("stale");
  {  // a socket nobody listens on any more, as a killed sgvd leaves it
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    ::close(fd);
  }
  AdminServer a;
  a.add("version", "", [] { return std::string("v\n"); });
  ASSERT_EQ(a.start(path), 0);
  std::string reply;
  ASSERT_EQ(admin_request(path, "version", reply), 0);
  EXPECT_EQ(reply, "v\n");
  a.stop();

  std::string file = sock_path("regular");
  FILE* f = std::fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  AdminServer b;
  EXPECT_EQ(b.start(file), -EEXIST);
  EXPECT_EQ(::access(file.c_str(), F_OK), 0);  // left alone
  ::unlink(file.c_str());
}

TEST(Admin, PathTooLong) {
  AdminServer a;
  EXPECT_EQ(a.start("/tmp/" + std::string(200, 'x')), -ENAMETOOLONG);
  std::string reply;
  EXPECT_EQ(admin_request("", "stats", reply), -ENAMETOOLONG);
}
