// iscsi/conn_login.cpp - the login phase of a connection: Login Requests go
// to the sans-I/O Login state machine (login.hpp: security and operational
// stages, every RFC 7143 key through the Negotiator of params.hpp), its
// responses go on the send queue, and at the move to full feature phase the
// connection takes over what was negotiated (session registered, nexus
// opened, budget created, digests switched on).
#include <algorithm>
#include <cstdio>
#include <string>

#include "iscsi/chap.hpp"
#include "iscsi/conn.hpp"
#include "scsi/target.hpp"

namespace sgv::iscsi {

namespace {

// What the Negotiator may agree to, from the server's limits.
TargetLimits negotiation_limits(const Limits& l) {
  TargetLimits t;
  t.max_recv_data_segment_length = l.max_recv_data_segment_length;
  t.max_burst_length = l.max_burst_length;
  t.first_burst_length = std::min(l.first_burst_length, l.max_burst_length);
  // The R2T table of a command slot bounds it.
  t.max_outstanding_r2t = std::clamp<uint32_t>(l.max_outstanding_r2t, 1, kMaxR2tPerCmd);
  t.initial_r2t = l.initial_r2t;
  t.immediate_data = l.immediate_data;
  t.header_digest_crc32c = l.allow_header_digest;
  t.data_digest_crc32c = l.allow_data_digest;
  t.cmd_window = std::max<uint32_t>(1, l.queue_depth);
  return t;
}

}  // namespace

// Lives from the first Login Request to full feature phase (or close).
// CHAP is always on offer; the directory's chap() decides per target
// whether it is required (and an initiator offering it where no secret is
// configured fails).
struct ConnLogin {
  ConnLogin(const Limits& l, TargetDirectory& dir)
      : limits(negotiation_limits(l)), chap(dir), login(limits, dir, &chap) {}
  TargetLimits limits;
  ChapAuthenticator chap;
  Login login;
};

void Conn::LoginDel::operator()(ConnLogin* l) const { delete l; }

uint16_t HostDirectory::create_session(const SessionParams& p) { return conn_->create_session(p); }

// Called by Login once the session is agreed, before the last response:
// find the target, make the session's budget, then register (reinstating an older
// session with the same InitiatorName + ISID). 0 refuses the login.
uint16_t Conn::create_session(const SessionParams& s) {
  if (s.type == SessionType::normal) {
    target_ = host_->find_target(s.target_name, s.initiator_name);
    if (!target_) return 0;
    // The session's total is a root: each command charges the session's
    // child of its LUN's budget, which charges this total too (charge_budget).
    budget_ = std::make_unique<Budget>(nullptr, lim_.session_mem_limit, 0, "session");
  }
  uint16_t tsih = host_->session_up(this, s.initiator_name, s.isid,
                                    s.type == SessionType::normal ? std::string_view(s.target_name) : std::string_view());
  registered_ = true;
  return tsih;
}

bool Conn::pdu_login() {
  const Bhs& h = *reinterpret_cast<const Bhs*>(reader_.bhs());
  if (full_feature_) {
    reject(RejectReason::protocol_error, reader_.bhs());
    return true;
  }
  if (!login_) login_.reset(new ConnLogin(lim_, dir_));
  ctr_->add(ctr_->logins);
  Login::Output out;
  login_->login.on_request(h, {reader_.buffer(), h.data_len()}, out);
  // Digests start with the first full-feature PDU, not this response.
  push_ctl(out.rsp, out.data.data(), uint32_t(out.data.size()));
  switch (out.action) {
    case Login::Action::send:
      break;
    case Login::Action::send_and_close:
      closing_ = true;  // a failed login ends the connection once answered
      break;
    case Login::Action::send_and_enter_ffp:
      enter_full_feature();
      break;
  }
  return true;
}

void Conn::enter_full_feature() {
  const Login& L = login_->login;
  sess_ = L.session();
  const ConnParams& c = L.conn();
  p_.max_recv_dsl_target = c.max_recv_data_segment_length;
  p_.max_recv_dsl_initiator = c.max_send_data_segment_length;
  p_.max_burst = sess_.max_burst_length;
  p_.first_burst = sess_.first_burst_length;
  p_.max_outstanding_r2t = sess_.max_outstanding_r2t;
  p_.initial_r2t = sess_.initial_r2t;
  p_.immediate_data = sess_.immediate_data;
  p_.header_digest = c.header_digest == Digest::crc32c;
  p_.data_digest = c.data_digest == Digest::crc32c;
  p_.discovery = sess_.type == SessionType::discovery;
  stat_sn_ = L.next_stat_sn();
  exp_cmd_sn_ = L.exp_cmd_sn();
  max_cmd_sn_ = L.max_cmd_sn();
  full_feature_ = true;
  if (!p_.discovery) {
    // The initiator port name (RFC 7143 4.4.1, SPC-4 TransportID): the ISID
    // as 12 hex digits. Persistent reservations know a nexus by it.
    char isid[16];
    std::snprintf(isid, sizeof isid, "%012llx", static_cast<unsigned long long>(sess_.isid & 0xffffffffffffull));
    nexus_ = target_->open_nexus(sess_.initiator_name + ",i,0x" + isid);
  }
  reader_.set_digests(p_.header_digest, p_.data_digest);
  login_.reset();
}

}  // namespace sgv::iscsi
