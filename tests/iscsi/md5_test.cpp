// tests/iscsi/md5_test.cpp - the RFC 1321 §A.5 test suite, plus split
// updates and lengths around the padding boundary (55/56/64 bytes).
#include "iscsi/md5.hpp"

#include <gtest/gtest.h>

#include <string>

using sgv::iscsi::Md5;

namespace {

std::string hex(const Md5::Digest& d) {
  static const char* k = "0123456789abcdef";
  std::string s;
  for (uint8_t b : d) {
    s += k[b >> 4];
    s += k[b & 15];
  }
  return s;
}

std::string md5(const std::string& s) {
  Md5 m;
  m.update({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
  return hex(m.finish());
}

TEST(Md5, Rfc1321TestSuite) {
  EXPECT_EQ(md5(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(md5("a"), "0cc175b9c0f1b6a831c399e269772661");
  EXPECT_EQ(md5("abc"), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(md5("message digest"), "f96b697d7cb7938d525a2f31aaf161d0");
  EXPECT_EQ(md5("abcdefghijklmnopqrstuvwxyz"), "c3fcd3d76192e4007dfb496cca67e13b");
  EXPECT_EQ(md5("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
            "d174ab98d277d9f5a5611c2c9f419d9f");
  EXPECT_EQ(md5("12345678901234567890123456789012345678901234567890123456789012345678901234567890"),
            "57edf4a22be3c955ac49da2e2107b67a");
}

TEST(Md5, PaddingBoundaries) {
  // Known digests of 'a' x n (n = 55: padding fits one block; 56: it spills
  // into a second; 64: a whole block of message).
  EXPECT_EQ(md5(std::string(55, 'a')), "ef1772b6dff9a122358552954ad0df65");
  EXPECT_EQ(md5(std::string(56, 'a')), "3b0c8ac703f828b04c6c197006d17218");
  EXPECT_EQ(md5(std::string(64, 'a')), "014842d480b571495a4a0363793f7367");
}

TEST(Md5, SplitUpdatesMatchOneShot) {
  const std::string s = "12345678901234567890123456789012345678901234567890123456789012345678901234567890";
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    Md5 m;
    m.update({reinterpret_cast<const uint8_t*>(s.data()), cut});
    m.update({reinterpret_cast<const uint8_t*>(s.data()) + cut, s.size() - cut});
    EXPECT_EQ(hex(m.finish()), "57edf4a22be3c955ac49da2e2107b67a") << cut;
  }
}

}  // namespace
