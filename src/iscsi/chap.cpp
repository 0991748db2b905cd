// iscsi/chap.cpp - the CHAP exchange of RFC 7143 §12.1.3 (see chap.hpp).
// Secrets never leave this file except hashed; nothing here logs.
#include "iscsi/chap.hpp"

#include <sys/random.h>

#include <cerrno>

namespace sgv::iscsi {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int b64_digit(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

bool decode_hex(std::string_view h, std::span<uint8_t> out, size_t& len) {
  // §6.1: an odd number of digits has an implied leading zero.
  size_t n = (h.size() + 1) / 2;
  if (h.empty() || n > out.size()) return false;
  size_t i = 0, o = 0;
  if (h.size() % 2) {
    int d = hex_digit(h[i++]);
    if (d < 0) return false;
    out[o++] = uint8_t(d);
  }
  for (; i < h.size(); i += 2) {
    int hi = hex_digit(h[i]), lo = hex_digit(h[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[o++] = uint8_t(hi << 4 | lo);
  }
  len = o;
  return true;
}

bool decode_base64(std::string_view b, std::span<uint8_t> out, size_t& len) {
  // Padded groups of four characters (RFC 4648 §4, as RFC 7143 §6.1 asks).
  if (b.empty() || b.size() % 4) return false;
  size_t o = 0;
  for (size_t i = 0; i < b.size(); i += 4) {
    bool last = i + 4 == b.size();
    int d[4];
    int pad = 0;
    for (size_t j = 0; j < 4; ++j) {
      char c = b[i + j];
      if (c == '=' && last && j >= 2) {
        pad++;
        d[j] = 0;
        continue;
      }
      if (pad) return false;  // data after '='
      d[j] = b64_digit(c);
      if (d[j] < 0) return false;
    }
    uint32_t v = uint32_t(d[0]) << 18 | uint32_t(d[1]) << 12 | uint32_t(d[2]) << 6 | uint32_t(d[3]);
    size_t n = size_t(3 - pad);
    if (o + n > out.size()) return false;
    for (size_t j = 0; j < n; ++j) out[o++] = uint8_t(v >> (16 - 8 * j));
  }
  len = o;
  return true;
}

// CHAP_I: a numerical value 0..255, decimal or 0x hex (§6.1 numerical-value).
bool parse_id(std::string_view v, uint8_t& out) {
  unsigned n = 0;
  if (v.size() > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
    v.remove_prefix(2);
    if (v.size() > 2) return false;
    for (char c : v) {
      int d = hex_digit(c);
      if (d < 0) return false;
      n = n * 16 + unsigned(d);
    }
  } else {
    if (v.empty() || v.size() > 3) return false;
    for (char c : v) {
      if (c < '0' || c > '9') return false;
      n = n * 10 + unsigned(c - '0');
    }
  }
  if (n > 255) return false;
  out = uint8_t(n);
  return true;
}

void append_hex(std::string_view prefix, std::span<const uint8_t> b, char* buf) {
  static const char* k = "0123456789abcdef";
  size_t o = 0;
  for (char c : prefix) buf[o++] = c;
  for (uint8_t x : b) {
    buf[o++] = k[x >> 4];
    buf[o++] = k[x & 15];
  }
}

// Whether a and b are equal, without an early exit an attacker could time.
bool same_bytes(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  if (a.size() != b.size()) return false;
  uint8_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= uint8_t(a[i] ^ b[i]);
  return diff == 0;
}

bool fill_random(std::span<uint8_t> out) {
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = getrandom(out.data() + got, out.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    got += size_t(n);
  }
  return true;
}

}  // namespace

bool decode_binary(std::string_view v, std::span<uint8_t> out, size_t& len) {
  if (v.size() < 3 || v[0] != '0') return false;
  if (v[1] == 'x' || v[1] == 'X') return decode_hex(v.substr(2), out, len);
  if (v[1] == 'b' || v[1] == 'B') return decode_base64(v.substr(2), out, len);
  return false;
}

Md5::Digest chap_response(uint8_t id, std::string_view secret, std::span<const uint8_t> challenge) {
  Md5 m;
  m.update(id);
  m.update({reinterpret_cast<const uint8_t*>(secret.data()), secret.size()});
  m.update(challenge);
  return m.finish();
}

bool ChapAuthenticator::required(std::string_view target, std::string_view /*initiator*/) const {
  have_cred_ = dir_.chap(target, cred_);
  return have_cred_;
}

Authenticator::Step ChapAuthenticator::step(const TextPairs& in, TextWriter& out) {
  Step s = Step::failed;
  if (!have_cred_) {
    s = Step::failed;  // CHAP offered by the initiator, but nothing to check it with
  } else if (st_ == St::want_a) {
    s = send_challenge(in, out);
  } else if (st_ == St::want_r) {
    s = check_response(in, out);
  }
  st_ = s == Step::more ? St::want_r : s == Step::done ? St::done : St::failed;
  return s;
}

Authenticator::Step ChapAuthenticator::send_challenge(const TextPairs& in, TextWriter& out) {
  const KeyValue* a = in.find("CHAP_A");
  if (!a || in.find("CHAP_N") || in.find("CHAP_R")) return Step::failed;
  // §12.1.3: the target answers with one of the proposed algorithms. With
  // MD5 (5) the only one we have, a list without it leaves nothing to
  // negotiate: the login ends as an authentication failure (not
  // CHAP_A=Reject and a wait for an initiator that cannot go on).
  if (!list_has(a->value, "5")) return Step::failed;
  RandomFn random = random_ ? random_ : &fill_random;
  uint8_t id = 0;
  if (!random({&id, 1}) || !random(challenge_)) return Step::failed;
  id_ = id;
  char c[2 + 2 * kChallengeLen];
  append_hex("0x", challenge_, c);
  if (!out.add("CHAP_A", "5") || !out.add("CHAP_I", uint64_t(id_)) ||
      !out.add("CHAP_C", std::string_view(c, sizeof c)))
    return Step::failed;
  return Step::more;
}

Authenticator::Step ChapAuthenticator::check_response(const TextPairs& in, TextWriter& out) {
  const KeyValue* n = in.find("CHAP_N");
  const KeyValue* r = in.find("CHAP_R");
  if (!n || !r || in.find("CHAP_A")) return Step::failed;
  uint8_t got[Md5::Digest{}.size()];
  size_t got_len = 0;
  if (!decode_binary(r->value, got, got_len)) return Step::failed;
  Md5::Digest want = chap_response(id_, cred_.secret, challenge_);
  // Both checks always run: a wrong name costs the same time as a wrong secret.
  bool name_ok = n->value == cred_.user;
  bool resp_ok = same_bytes({got, got_len}, want);
  if (!name_ok || !resp_ok) return Step::failed;

  const KeyValue* ii = in.find("CHAP_I");
  const KeyValue* ic = in.find("CHAP_C");
  if (!ii && !ic) return Step::done;  // one-way
  // Mutual: the initiator challenges us back (§12.1.3).
  if (!ii || !ic || cred_.mutual_secret.empty()) return Step::failed;
  uint8_t iid = 0;
  if (!parse_id(ii->value, iid)) return Step::failed;
  uint8_t ichal[kMaxChallenge];
  size_t ilen = 0;
  if (!decode_binary(ic->value, ichal, ilen)) return Step::failed;
  // A reflected challenge would let the initiator use our own answer as
  // its response (§12.1.3: responders MUST check and close).
  if (same_bytes({ichal, ilen}, challenge_)) return Step::failed;
  Md5::Digest mine = chap_response(iid, cred_.mutual_secret, {ichal, ilen});
  char hex[2 + 2 * mine.size()];
  append_hex("0x", mine, hex);
  if (!out.add("CHAP_N", cred_.mutual_user) || !out.add("CHAP_R", std::string_view(hex, sizeof hex)))
    return Step::failed;
  return Step::done;
}

}  // namespace sgv::iscsi
