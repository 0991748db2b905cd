// iscsi/login.cpp - login phase state machine (RFC 7143 §6.3, §11.12-13).
#include "iscsi/login.hpp"

#include <cassert>

namespace sgv::iscsi {
namespace {

bool is_leading_key(std::string_view k) {
  return k == "InitiatorName" || k == "InitiatorAlias" || k == "TargetName" || k == "SessionType";
}

}  // namespace

Login::Login(const TargetLimits& limits, TargetDirectory& dir, Authenticator* auth, size_t text_limit)
    : lim_(limits), dir_(dir), auth_(auth), neg_(limits), acc_(text_limit), rsp_(text_limit) {}

void Login::on_request(const Bhs& req, std::span<const uint8_t> data, Output& out) {
  out.data = {};
  out.action = Action::send;
  if (failed_ || stage_ == Stage::full_feature || req.opcode() != Op::login_req)
    return fail(req, LoginStatus::initiator_error, out);

  if (first_) {
    first_ = false;
    isid_ = req.isid();
    tsih_ = req.tsih();
    cid_ = req.cid();
    stat_sn_ = req.exp_stat_sn();  // the target picks its first StatSN; echoing is simplest
    exp_cmd_sn_ = req.cmd_sn();
    // We speak version 0x00 only (§11.12.4).
    if (req.version_min() > 0) return fail(req, LoginStatus::unsupported_version, out);
    if (req.csg() != Stage::security && req.csg() != Stage::operational)
      return fail(req, LoginStatus::initiator_error, out);
    stage_ = req.csg();
    if (stage_ == Stage::operational) auth_state_ = Auth::none;  // security stage skipped
  } else if (req.isid() != isid_ || req.tsih() != tsih_ || req.cid() != cid_) {
    return fail(req, LoginStatus::initiator_error, out);
  }
  // Login requests are immediate: CmdSN is not advanced by them.
  exp_cmd_sn_ = req.cmd_sn();

  if (req.csg() != stage_) return fail(req, LoginStatus::initiator_error, out);
  if (req.transit()) {
    // T and C together, a stage going backwards or to the reserved value.
    if (req.cont() || uint8_t(req.nsg()) <= uint8_t(req.csg()) || req.nsg() == Stage::reserved)
      return fail(req, LoginStatus::initiator_error, out);
  }

  // The rest of a response longer than one PDU: the initiator pulls it
  // with empty requests.
  if (sent_ > 0 && sent_ < rsp_.size()) {
    if (!data.empty() || req.cont()) return fail(req, LoginStatus::initiator_error, out);
    return respond(req, out);
  }

  switch (acc_.add(data, req.cont())) {
    case TextAccumulator::Result::overflow:
      return fail(req, LoginStatus::initiator_error, out);
    case TextAccumulator::Result::more:
      // Each partial request gets an empty response (C=0, T=0).
      rsp_.clear();
      sent_ = 0;
      transit_ = false;
      return respond(req, out);
    case TextAccumulator::Result::complete:
      break;
  }
  rsp_.clear();
  sent_ = 0;
  transit_ = false;
  // pairs_ views the accumulated bytes: they stay until the next text starts.
  if (parse_text(acc_.data(), pairs_) != TextStatus::ok) return fail(req, LoginStatus::initiator_error, out);

  LoginStatus st = process(pairs_, !leading_done_);
  leading_done_ = true;
  if (st == LoginStatus::success) st = decide_transit(req);
  if (st != LoginStatus::success) return fail(req, st, out);
  respond(req, out);
}

LoginStatus Login::leading_keys(const TextPairs& in) {
  const KeyValue* ini = in.find("InitiatorName");
  if (!ini || ini->value.empty()) return LoginStatus::missing_parameter;
  neg_.session.initiator_name.assign(ini->value);
  if (const KeyValue* a = in.find("InitiatorAlias")) neg_.session.initiator_alias.assign(a->value);

  SessionType type = SessionType::normal;
  if (const KeyValue* t = in.find("SessionType")) {
    if (t->value == "Discovery") type = SessionType::discovery;
    else if (t->value != "Normal") return LoginStatus::session_type_unsupported;
  }
  neg_.set_session_type(type);

  const KeyValue* tgt = in.find("TargetName");
  if (type == SessionType::normal) {
    if (!tgt || tgt->value.empty()) return LoginStatus::missing_parameter;
    if (!dir_.exists(tgt->value)) return LoginStatus::target_not_found;
    if (!dir_.allowed(tgt->value, ini->value)) return LoginStatus::authorization_failure;
    neg_.session.target_name.assign(tgt->value);
  }
  if (tsih_ != 0) {
    // We run one connection per session: a login naming a live session
    // could only add a connection.
    if (!dir_.session_exists(isid_, tsih_)) return LoginStatus::session_does_not_exist;
    return LoginStatus::too_many_connections;
  }
  auth_required_ = auth_ && auth_->required(neg_.session.target_name, neg_.session.initiator_name);
  if (auth_required_ && stage_ != Stage::security) return LoginStatus::auth_failure;
  return LoginStatus::success;
}

LoginStatus Login::security_keys(const TextPairs& in) {
  const KeyValue* am = in.find("AuthMethod");
  if (auth_state_ == Auth::unchosen) {
    if (!am) return LoginStatus::success;  // may come later, or never (None implied)
    std::string_view pick;
    if (auth_required_) {
      if (list_has(am->value, auth_->method())) pick = auth_->method();
    } else if (list_has(am->value, "None")) {
      pick = "None";
    } else if (auth_ && list_has(am->value, auth_->method())) {
      pick = auth_->method();
    }
    if (pick.empty()) {
      auth_state_ = Auth::failed;
      return LoginStatus::auth_failure;
    }
    auth_state_ = pick == "None" ? Auth::none : Auth::method;
    if (!rsp_.add("AuthMethod", pick)) return LoginStatus::target_error;
    bool method_keys = false;
    for (const KeyValue& kv : in) {
      if (!kv.key.starts_with("CHAP_")) continue;
      method_keys = true;
      if (auth_state_ == Auth::none && !rsp_.add(kv.key, "NotUnderstood")) return LoginStatus::target_error;
    }
    // An initiator may start the method's exchange (CHAP_A) in the same
    // request that offers it.
    if (!method_keys || auth_state_ != Auth::method) return LoginStatus::success;
  } else if (am) {
    return LoginStatus::initiator_error;  // AuthMethod negotiated twice
  }
  if (auth_state_ == Auth::method) {
    switch (auth_->step(in, rsp_)) {
      case Authenticator::Step::more: break;
      case Authenticator::Step::done: auth_state_ = Auth::done; break;
      case Authenticator::Step::failed: auth_state_ = Auth::failed; return LoginStatus::auth_failure;
    }
  }
  return LoginStatus::success;
}

LoginStatus Login::process(const TextPairs& in, bool first) {
  if (first) {
    LoginStatus st = leading_keys(in);
    if (st != LoginStatus::success) return st;
  }
  if (first_rsp_) {
    first_rsp_ = false;
    if (neg_.session.type == SessionType::normal) {
      // §13.9: the first response of a normal session names the portal group.
      if (!rsp_.add("TargetPortalGroupTag", uint64_t(lim_.target_portal_group_tag))) return LoginStatus::target_error;
      std::string_view alias = dir_.alias(neg_.session.target_name);
      if (alias.empty()) alias = lim_.target_alias;
      if (!alias.empty() && !rsp_.add("TargetAlias", alias)) return LoginStatus::target_error;
    }
  }
  for (const KeyValue& kv : in) {
    if (is_leading_key(kv.key)) {
      // Leading keys belong to the first request; repeating one with a
      // different value is an initiator error.
      if (!first) {
        const SessionParams& p = neg_.session;
        bool same = kv.key == "SessionType"
                        ? (kv.value == "Discovery") == (p.type == SessionType::discovery)
                        : kv.value == (kv.key == "InitiatorName" ? p.initiator_name
                                       : kv.key == "TargetName" ? p.target_name
                                                                : p.initiator_alias);
        if (!same) return LoginStatus::initiator_error;
      }
      continue;
    }
    if (kv.key == "AuthMethod" || kv.key.starts_with("CHAP_")) {
      if (stage_ != Stage::security) return LoginStatus::initiator_error;
      // CHAP_ keys next to the AuthMethod that picks the method wait for
      // security_keys() to know what was picked.
      bool deferred = auth_state_ == Auth::unchosen && in.find("AuthMethod");
      if (kv.key != "AuthMethod" && auth_state_ != Auth::method && !deferred &&
          !rsp_.add(kv.key, "NotUnderstood"))
        return LoginStatus::target_error;
      continue;  // security_keys() / the authenticator take these
    }
    if (kv.key == "SendTargets") {
      if (!rsp_.add(kv.key, "Irrelevant")) return LoginStatus::target_error;
      continue;
    }
    switch (neg_.offer(kv.key, kv.value, rsp_)) {
      case Negotiator::Outcome::answered: break;
      case Negotiator::Outcome::not_handled: break;
      case Negotiator::Outcome::duplicate: return LoginStatus::initiator_error;
      case Negotiator::Outcome::overflow: return LoginStatus::target_error;
    }
  }
  if (stage_ == Stage::security) {
    LoginStatus st = security_keys(in);
    if (st != LoginStatus::success) return st;
  }
  if (stage_ == Stage::operational && !neg_.declare(rsp_)) return LoginStatus::target_error;
  return LoginStatus::success;
}

LoginStatus Login::decide_transit(const Bhs& req) {
  transit_ = false;
  // Offers we just made need the initiator's answer before we move on.
  if (neg_.take_just_offered()) return LoginStatus::success;
  if (!req.transit()) return LoginStatus::success;
  if (stage_ == Stage::security) {
    switch (auth_state_) {
      case Auth::unchosen:
        if (auth_required_) return LoginStatus::auth_failure;
        auth_state_ = Auth::none;
        break;
      case Auth::method: return LoginStatus::success;  // not finished: stay
      case Auth::failed: return LoginStatus::auth_failure;
      case Auth::none:
      case Auth::done: break;
    }
  }
  Stage nsg = req.nsg();
  // Skipping the operational stage would leave our own offers unsaid.
  if (stage_ == Stage::security && nsg == Stage::full_feature && neg_.needs_offers()) nsg = Stage::operational;
  if (nsg == Stage::full_feature) {
    neg_.finish();
    neg_.session.isid = isid_;
    uint16_t tsih = dir_.create_session(neg_.session);
    if (tsih == 0) return LoginStatus::out_of_resources;
    neg_.session.tsih = tsih;  // tsih_ stays the requests' value until we are in full feature phase
  }
  transit_ = true;
  nsg_ = nsg;
  return LoginStatus::success;
}

void Login::respond(const Bhs& req, Output& out) {
  TextChunk c = next_chunk(rsp_.size(), sent_, kLoginSegmentMax);
  LoginRspFields f;
  f.cont = c.more;
  f.transit = !c.more && transit_;
  f.csg = stage_;
  f.nsg = f.transit ? nsg_ : Stage::security;
  f.isid = isid_;
  f.tsih = f.transit && nsg_ == Stage::full_feature ? neg_.session.tsih : req.tsih();
  f.itt = req.itt();
  f.data_len = uint32_t(c.len);
  SeqNums sn{stat_sn_++, exp_cmd_sn_, max_cmd_sn()};
  build_login_response(out.rsp, f, sn);
  out.data = rsp_.data().subspan(c.offset, c.len);
  sent_ += c.len;
  if (!c.more) {
    if (f.transit) {
      stage_ = nsg_;
      transit_ = false;
      if (stage_ == Stage::full_feature) out.action = Action::send_and_enter_ffp;
    }
  }
}

void Login::fail(const Bhs& req, LoginStatus st, Output& out) {
  failed_ = true;
  status_ = st;
  LoginRspFields f;
  f.csg = req.csg() == Stage::reserved || req.csg() == Stage::full_feature ? stage_ : req.csg();
  f.isid = req.isid();
  f.tsih = req.tsih();
  f.itt = req.itt();
  f.status_class = status_class(st);
  f.status_detail = status_detail(st);
  SeqNums sn{stat_sn_++, exp_cmd_sn_, max_cmd_sn()};
  build_login_response(out.rsp, f, sn);
  out.data = {};
  out.action = Action::send_and_close;
}

}  // namespace sgv::iscsi
