// iscsi/chap.hpp - CHAP for the login's security stage (RFC 7143 §12.1.3,
// RFC 1994) as a login.hpp Authenticator: one-way (the initiator proves it
// knows the target's chap_secret) and mutual (the target then answers the
// initiator's challenge with the mutual secret). MD5 (CHAP_A=5) only.
//
// Exchange, one Authenticator per login:
//   I: CHAP_A=<list>            T: CHAP_A=5 CHAP_I=<id> CHAP_C=0x<16+ random bytes>
//   I: CHAP_N CHAP_R [CHAP_I CHAP_C]
//                               T: [CHAP_N CHAP_R]   (mutual only)
// Any deviation ends the login with 02/01 (authentication failure).
#pragma once

#include <array>
#include <span>
#include <cstdint>
#include <string_view>

#include "iscsi/login.hpp"
#include "iscsi/md5.hpp"

namespace sgv::iscsi {

// "0x<hex>" or "0b<base64>" (RFC 7143 §6.1 binary-value) into out; false on
// anything else or when it does not fit. Empty values are refused.
bool decode_binary(std::string_view v, std::span<uint8_t> out, size_t& len);

// MD5(id || secret || challenge), the CHAP response (RFC 1994 §4.1).
Md5::Digest chap_response(uint8_t id, std::string_view secret, std::span<const uint8_t> challenge);

class ChapAuthenticator final : public Authenticator {
 public:
  // Fills the span with unpredictable bytes; false when it cannot.
  using RandomFn = bool (*)(std::span<uint8_t>);
  // dir must outlive it; its chap() says whether (and with what) to ask.
  // random: where CHAP_I and CHAP_C come from, the kernel's getrandom()
  // when null. Only a fuzz harness passes its own, a fixed one, so that its
  // seeds can carry right answers and reach the checks behind them.
  explicit ChapAuthenticator(const TargetDirectory& dir, RandomFn random = nullptr) : dir_(dir), random_(random) {}

  std::string_view method() const override { return "CHAP"; }
  bool required(std::string_view target, std::string_view initiator) const override;
  Step step(const TextPairs& in, TextWriter& out) override;

  static constexpr size_t kChallengeLen = 16;   // bytes we send (RFC 1994: >= 16 recommended)
  static constexpr size_t kMaxChallenge = 1024; // largest initiator challenge taken

 private:
  Step send_challenge(const TextPairs& in, TextWriter& out);
  Step check_response(const TextPairs& in, TextWriter& out);

  const TargetDirectory& dir_;
  RandomFn random_;
  // What required() looked up, for step(): required() is a const query in
  // the Authenticator interface, but it is also the one place the login
  // names the target, so the lookup is kept here.
  mutable ChapCredentials cred_;
  mutable bool have_cred_ = false;
  enum class St : uint8_t { want_a, want_r, done, failed } st_ = St::want_a;
  uint8_t id_ = 0;
  std::array<uint8_t, kChallengeLen> challenge_{};
};

}  // namespace sgv::iscsi
