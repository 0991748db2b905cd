// iscsi/conn_login.cpp - the login phase of a connection (RFC 7143 §6, §13):
// security stage (AuthMethod=None only), operational negotiation of the
// keys sgvd supports, the move to full feature phase (session registered,
// nexus opened, budget created) and login failures with their status class.
//
// Adapter: the team's sans-I/O login module was not available when this was
// written, so this negotiates the RFC 7143 keys directly; key handling is
// table-free but each rule cites the result function the RFC gives it.
#include <algorithm>
#include <charconv>
#include <cstring>
#include <string>
#include <string_view>

#include "iscsi/conn.hpp"
#include "scsi/target.hpp"

namespace sgv::iscsi {

struct ConnLogin {
  std::string text;         // request text accumulated over C-bit PDUs
  bool got_first = false;
  bool tpgt_sent = false;
  bool mrdsl_sent = false;
  uint32_t first_cmd_sn = 0;
  Params p;                 // being negotiated
};

void Conn::LoginDel::operator()(ConnLogin* l) const { delete l; }

namespace {

uint32_t to_u32(std::string_view v, uint32_t dflt) {
  uint32_t x = 0;
  auto r = std::from_chars(v.data(), v.data() + v.size(), x);
  return r.ec == std::errc() && r.ptr == v.data() + v.size() ? x : dflt;
}

bool list_has(std::string_view list, std::string_view item) {
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t c = list.find(',', pos);
    if (c == std::string_view::npos) c = list.size();
    if (list.substr(pos, c - pos) == item) return true;
    pos = c + 1;
  }
  return false;
}

void add_kv(std::string& out, std::string_view k, std::string_view v) {
  out.append(k).push_back('=');
  out.append(v).push_back('\0');
}

}  // namespace

bool Conn::pdu_login() {
  const Bhs& h = *reinterpret_cast<const Bhs*>(reader_.bhs());
  if (full_feature_) {
    reject(RejectReason::protocol_error, reader_.bhs());
    return true;
  }
  if (!login_) login_.reset(new ConnLogin);
  ConnLogin& L = *login_;
  ctr_->add(ctr_->logins);
  if (!L.got_first) {
    L.got_first = true;
    L.first_cmd_sn = h.cmd_sn();
    stat_sn_ = h.exp_stat_sn();
    exp_cmd_sn_ = h.cmd_sn();
    max_cmd_sn_ = h.cmd_sn();
    isid_ = h.isid();
    L.p.max_recv_dsl_target = lim_.max_recv_data_segment_length;
    // Keys the initiator leaves out keep the RFC default only where that
    // default is within what we allow.
    L.p.immediate_data = lim_.immediate_data;
    L.p.max_burst = std::min<uint32_t>(262144, lim_.max_burst_length);
    L.p.first_burst = std::min<uint32_t>(65536, lim_.first_burst_length);
  }
  L.text.append(reinterpret_cast<const char*>(reader_.buffer()), h.data_len());
  if (L.text.size() > 65536) return false;  // unbounded negotiation: drop

  LoginRspFields f;
  f.isid = isid_;
  f.itt = h.itt();
  f.csg = h.csg();
  f.version_max = 0;
  f.version_active = 0;
  auto fail = [&](uint8_t cls, uint8_t detail) {
    f.status_class = cls;
    f.status_detail = detail;
    Bhs r;
    build_login_response(r, f, SeqNums{stat_sn_++, exp_cmd_sn_, exp_cmd_sn_});
    push_ctl(r, nullptr, 0);
    closing_ = true;  // a failed login ends the connection once answered
    return true;
  };
  if (h.version_min() > 0) return fail(2, 5);  // unsupported version
  if (h.cont()) {
    // More text follows: acknowledge with an empty response (§11.13).
    Bhs r;
    build_login_response(r, f, SeqNums{stat_sn_++, exp_cmd_sn_, exp_cmd_sn_});
    push_ctl(r, nullptr, 0);
    return true;
  }
  std::string out;
  std::string_view in(L.text);
  size_t pos = 0;
  while (pos < in.size()) {
    size_t z = in.find('\0', pos);
    if (z == std::string_view::npos) z = in.size();
    std::string_view kv = in.substr(pos, z - pos);
    pos = z + 1;
    if (kv.empty()) continue;
    size_t eq = kv.find('=');
    if (eq == std::string_view::npos) return fail(2, 0);
    std::string_view k = kv.substr(0, eq), v = kv.substr(eq + 1);
    if (k == "InitiatorName") {
      initiator_ = std::string(v);
    } else if (k == "TargetName") {
      target_name_ = std::string(v);
    } else if (k == "SessionType") {
      L.p.discovery = v == "Discovery";
    } else if (k == "InitiatorAlias") {
    } else if (k == "AuthMethod") {
      if (!list_has(v, "None")) return fail(2, 1);  // authentication failure
      add_kv(out, k, "None");
    } else if (k == "HeaderDigest" || k == "DataDigest") {
      bool allow = k == "HeaderDigest" ? lim_.allow_header_digest : lim_.allow_data_digest;
      // First offered value we support (§13.1, list negotiation).
      std::string_view pick = "None";
      size_t p0 = 0;
      while (p0 <= v.size()) {
        size_t c = v.find(',', p0);
        if (c == std::string_view::npos) c = v.size();
        std::string_view it = v.substr(p0, c - p0);
        if (it == "None" || (it == "CRC32C" && allow)) {
          pick = it;
          break;
        }
        p0 = c + 1;
      }
      (k == "HeaderDigest" ? L.p.header_digest : L.p.data_digest) = pick == "CRC32C";
      add_kv(out, k, pick);
    } else if (k == "MaxConnections") {
      add_kv(out, k, "1");  // min(offer, 1)
    } else if (k == "InitialR2T") {
      // OR: Yes wins.
      L.p.initial_r2t = v == "Yes" || lim_.initial_r2t;
      add_kv(out, k, L.p.initial_r2t ? "Yes" : "No");
    } else if (k == "ImmediateData") {
      // AND: No wins.
      L.p.immediate_data = v == "Yes" && lim_.immediate_data;
      add_kv(out, k, L.p.immediate_data ? "Yes" : "No");
    } else if (k == "MaxRecvDataSegmentLength") {
      // Declarative: what we may send them.
      L.p.max_recv_dsl_initiator = std::max<uint32_t>(512, std::min<uint32_t>(to_u32(v, 8192), 16777215));
      if (!L.mrdsl_sent) {
        add_kv(out, k, std::to_string(lim_.max_recv_data_segment_length));
        L.mrdsl_sent = true;
      }
    } else if (k == "MaxBurstLength") {
      L.p.max_burst = std::max<uint32_t>(512, std::min(to_u32(v, 262144), lim_.max_burst_length));
      add_kv(out, k, std::to_string(L.p.max_burst));
    } else if (k == "FirstBurstLength") {
      L.p.first_burst = std::max<uint32_t>(512, std::min(to_u32(v, 65536), lim_.first_burst_length));
      add_kv(out, k, std::to_string(L.p.first_burst));
    } else if (k == "MaxOutstandingR2T") {
      L.p.max_outstanding_r2t = std::max<uint32_t>(
          1, std::min({to_u32(v, 1), lim_.max_outstanding_r2t, uint32_t(kMaxR2tPerCmd)}));
      add_kv(out, k, std::to_string(L.p.max_outstanding_r2t));
    } else if (k == "DefaultTime2Wait" || k == "DefaultTime2Retain") {
      add_kv(out, k, v);  // echoing the offer is a valid result of both max (Wait) and min (Retain)
    } else if (k == "DataPDUInOrder" || k == "DataSequenceInOrder") {
      add_kv(out, k, "Yes");  // OR with our Yes
    } else if (k == "ErrorRecoveryLevel") {
      add_kv(out, k, "0");  // min
    } else if (k == "IFMarker" || k == "OFMarker") {
      add_kv(out, k, "No");  // AND with our No
    } else if (k == "IFMarkInt" || k == "OFMarkInt") {
      add_kv(out, k, "Irrelevant");
    } else {
      add_kv(out, k, "NotUnderstood");
    }
  }
  L.text.clear();
  if (initiator_.empty()) return fail(2, 7);  // missing parameter
  if (h.tsih() != 0) return fail(2, 10);      // no MC/S: no session to join
  if (!L.p.discovery && !target_) {
    if (target_name_.empty()) return fail(2, 7);
    Budget* parent = nullptr;
    target_ = host_->find_target(target_name_, initiator_, &parent);
    if (!target_) return fail(2, 3);  // not found
    budget_ = std::make_unique<Budget>(parent, lim_.session_mem_limit, 0, "session");
  }
  if (!L.p.discovery && !L.tpgt_sent) {
    add_kv(out, "TargetPortalGroupTag", "1");
    std::string alias = host_->target_alias(target_name_);
    if (!alias.empty()) add_kv(out, "TargetAlias", alias);
    L.tpgt_sent = true;
  }
  if (L.p.first_burst > L.p.max_burst) L.p.first_burst = L.p.max_burst;

  bool to_ffp = h.transit() && h.nsg() == Stage::full_feature;
  f.transit = h.transit();
  f.nsg = h.transit() ? h.nsg() : Stage::security;
  if (h.transit() && h.csg() == Stage::security && h.nsg() == Stage::operational) f.nsg = Stage::operational;
  if (to_ffp && !L.mrdsl_sent) {
    add_kv(out, "MaxRecvDataSegmentLength", std::to_string(lim_.max_recv_data_segment_length));
    L.mrdsl_sent = true;
  }
  if (to_ffp) {
    tsih_ = host_->session_up(this, initiator_, isid_, L.p.discovery ? std::string_view() : target_name_);
    registered_ = true;
    f.tsih = tsih_;
  }
  if (out.size() > 8192) return fail(3, 0);
  f.data_len = uint32_t(out.size());
  Bhs r;
  uint32_t max = exp_cmd_sn_ + (lim_.queue_depth ? lim_.queue_depth - 1 : 0);
  build_login_response(r, f, SeqNums{stat_sn_++, exp_cmd_sn_, to_ffp ? max : exp_cmd_sn_});
  // Digests start with the first full-feature PDU, not this response.
  push_ctl(r, out.data(), uint32_t(out.size()));
  if (to_ffp) {
    p_ = L.p;
    full_feature_ = true;
    max_cmd_sn_ = max;
    if (!p_.discovery) nexus_ = target_->open_nexus(initiator_ + ",i,0x" + std::to_string(isid_));
    reader_.set_digests(p_.header_digest, p_.data_digest);
    login_.reset();
  }
  return true;
}

}  // namespace sgv::iscsi
