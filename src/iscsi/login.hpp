// iscsi/login.hpp - the iSCSI login phase as a sans-I/O state machine
// (RFC 7143 §6, §11.12, §11.13): Login Request (BHS + data) in, Login
// Response (BHS + data) out, and at the end the negotiated SessionParams /
// ConnParams the full feature phase runs with.
//
// Stages: security (AuthMethod; None built in, CHAP or others through the
// Authenticator interface), operational (Negotiator), full feature. The
// server's data structures stay behind TargetDirectory: the login code only
// asks it questions. Slow path: one Login per connection, buffers sized once.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "iscsi/params.hpp"
#include "iscsi/pdu.hpp"
#include "iscsi/text.hpp"

namespace sgv::iscsi {

// A target portal as SendTargets reports it: "192.0.2.1:3260" or
// "[2001:db8::1]:3260", with its portal group tag.
struct Portal {
  std::string_view address;
  uint16_t tpgt = 1;
};
struct TargetEntry {
  std::string_view name;
  std::span<const Portal> portals;
};

// CHAP secrets of one target (or of discovery). user/secret: what the
// initiator must answer with; mutual_user/mutual_secret: what the target
// answers an initiator's own challenge with (empty: mutual CHAP refused).
struct ChapCredentials {
  std::string_view user, secret;
  std::string_view mutual_user, mutual_secret;
};

// The server's answers to the login and discovery code. Called on the
// connection's thread during login/Text only.
class TargetDirectory {
 public:
  virtual ~TargetDirectory() = default;
  virtual bool exists(std::string_view target) const = 0;
  // ACL: may this initiator log in to (or discover) this target?
  virtual bool allowed(std::string_view target, std::string_view initiator) const = 0;
  virtual std::string_view alias(std::string_view /*target*/) const { return {}; }
  // Discovery listing, by index (0 .. count()-1).
  virtual size_t count() const = 0;
  virtual TargetEntry entry(size_t i) const = 0;
  // Logins naming an existing session (TSIH != 0).
  virtual bool session_exists(uint64_t /*isid*/, uint16_t /*tsih*/) const { return false; }
  // Called once at the transition to full feature phase; returns the new
  // session's TSIH (non-zero), or 0 when out of resources. Session
  // reinstatement (same initiator name + ISID) is the directory's business.
  virtual uint16_t create_session(const SessionParams& p) = 0;
  // CHAP credentials for a login to `target` ("" for a discovery session):
  // true fills `out` and makes CHAP mandatory; false: no CHAP (None).
  virtual bool chap(std::string_view /*target*/, ChapCredentials& /*out*/) const { return false; }
};

// An authentication method for the security stage (e.g. CHAP).
class Authenticator {
 public:
  virtual ~Authenticator() = default;
  virtual std::string_view method() const = 0;  // its AuthMethod value, e.g. "CHAP"
  // Must this initiator authenticate to this target (target "" for
  // discovery)? false: None is accepted. Called once per login, after the
  // leading keys; the authenticator may keep what it looked up for step().
  virtual bool required(std::string_view target, std::string_view initiator) const = 0;
  enum class Step : uint8_t { more, done, failed };
  // One security-stage exchange once the method is chosen: the request's
  // pairs in (AuthMethod and leading keys included; ignore what is not
  // yours), response pairs out.
  virtual Step step(const TextPairs& in, TextWriter& out) = 0;
};

class Login {
 public:
  // limits, dir and auth (nullable: AuthMethod=None only) must outlive it.
  Login(const TargetLimits& limits, TargetDirectory& dir, Authenticator* auth = nullptr,
        size_t text_limit = kDefaultTextLimit);

  enum class Action : uint8_t {
    send,             // send the response, wait for the next Login Request
    send_and_close,   // send the (failure) response, then close the connection
    send_and_enter_ffp,  // send, then switch to full feature phase
  };
  struct Output {
    Bhs rsp;
    std::span<const uint8_t> data;  // valid until the next on_request()
    Action action = Action::send;
  };

  // One Login Request. data is its data segment (unpadded).
  void on_request(const Bhs& req, std::span<const uint8_t> data, Output& out);

  bool failed() const { return failed_; }
  bool in_full_feature() const { return stage_ == Stage::full_feature; }
  LoginStatus status() const { return status_; }

  // Valid once in full feature phase.
  const SessionParams& session() const { return neg_.session; }
  const ConnParams& conn() const { return neg_.conn; }
  uint16_t cid() const { return cid_; }
  // Sequence numbers to continue with: StatSN of the first full feature
  // response, the ExpCmdSN and MaxCmdSN last announced.
  uint32_t next_stat_sn() const { return stat_sn_; }
  uint32_t exp_cmd_sn() const { return exp_cmd_sn_; }
  uint32_t max_cmd_sn() const { return exp_cmd_sn_ + lim_.cmd_window - 1; }

  // Login PDUs carry at most this much data (RFC 7143 §6.1: 8192 until
  // MaxRecvDataSegmentLength takes effect in full feature phase).
  static constexpr uint32_t kLoginSegmentMax = 8192;

 private:
  void fail(const Bhs& req, LoginStatus st, Output& out);
  void respond(const Bhs& req, Output& out);
  LoginStatus process(const TextPairs& in, bool first);
  LoginStatus leading_keys(const TextPairs& in);
  LoginStatus security_keys(const TextPairs& in);
  LoginStatus decide_transit(const Bhs& req);

  const TargetLimits& lim_;
  TargetDirectory& dir_;
  Authenticator* auth_;
  Negotiator neg_;
  TextAccumulator acc_;
  TextWriter rsp_;
  TextPairs pairs_;

  bool first_ = true;
  bool leading_done_ = false;  // the first complete text (with the leading keys) was processed
  bool failed_ = false;
  Stage stage_ = Stage::security;
  LoginStatus status_ = LoginStatus::success;
  uint64_t isid_ = 0;
  uint16_t tsih_ = 0;
  uint16_t cid_ = 0;
  uint32_t stat_sn_ = 0;
  uint32_t exp_cmd_sn_ = 0;

  // Security stage.
  enum class Auth : uint8_t { unchosen, none, method, done, failed } auth_state_ = Auth::unchosen;
  bool auth_required_ = false;

  // The decision for the response being sent (possibly over several PDUs).
  size_t sent_ = 0;     // bytes of rsp_ already sent (C=1 responses)
  bool transit_ = false;
  Stage nsg_ = Stage::security;
  bool first_rsp_ = true;  // TargetPortalGroupTag goes in the first response
};

}  // namespace sgv::iscsi
