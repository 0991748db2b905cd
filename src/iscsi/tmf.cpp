// iscsi/tmf.cpp - Task Management on a connection: which tasks a function
// affects, aborting them for real (no response for an aborted task, its
// slot and buffer released once its backend I/O completes) and answering
// only after every affected task is gone, then telling the SCSI core so it
// raises the unit attentions SAM requires.
#include <cassert>

#include "iscsi/conn.hpp"
#include "scsi/target.hpp"

namespace sgv::iscsi {

bool Conn::pdu_tmf() {
  const Bhs& h = *reinterpret_cast<const Bhs*>(reader_.bhs());
  if (!full_feature_ || p_.discovery) return false;
  if (!h.immediate() && h.cmd_sn() == exp_cmd_sn_) ++exp_cmd_sn_;
  ctr_->add(ctr_->tmfs);
  Bhs r;
  if (tmf_pending_) {
    // One TMF at a time per connection; initiators serialise them anyway.
    build_tmf_response(r, h.itt(), TmfResponse::rejected, seq(true));
    push_ctl(r, nullptr, 0);
    return true;
  }
  TmfFunc fn = h.tmf_function();
  uint64_t lun = h.lun();
  auto lun_of = [](const Cmd& c) { return c.task.lun; };
  TmfResponse resp = TmfResponse::complete;
  unsigned wait = 0;
  auto kill = [&](Cmd& c) {
    if (c.st == Cmd::St::free || c.st == Cmd::St::aborted) return;
    c.tmf_waiting = true;
    ++wait;
    abort_cmd(&c);
  };
  switch (fn) {
    case TmfFunc::abort_task: {
      Cmd* c = find_itt(h.ref_task_tag());
      if (!c || c->st == Cmd::St::aborted) {
        // Already answered: nothing left to abort, the task does not exist.
        // Only a RefCmdSN not received yet (in the window, below the TMF's
        // own CmdSN) counts as received and aborted (RFC 7143 11.5.1).
        resp = TmfResponse::no_task;
        if (!sn_lt(h.ref_cmd_sn(), exp_cmd_sn_) && sn_lt(h.ref_cmd_sn(), h.cmd_sn())) resp = TmfResponse::complete;
        break;
      }
      kill(*c);
      break;
    }
    case TmfFunc::abort_task_set:
    case TmfFunc::clear_task_set:
    case TmfFunc::lun_reset:
      // SAM: INCORRECT LOGICAL UNIT NUMBER, which RFC 7143 11.6.1 answers
      // as "LUN does not exist" (not "complete": nothing was reset).
      if (!target_->has_lun(lun)) {
        resp = TmfResponse::no_lun;
        break;
      }
      each_cmd([&](Cmd& c) {
        if (lun_of(c) == lun) kill(c);
      });
      break;
    case TmfFunc::target_warm_reset:
      each_cmd(kill);
      break;
    case TmfFunc::task_reassign:
      // Moving a task to another connection is connection recovery, which
      // needs ErrorRecoveryLevel 2; sgvd negotiates 0. RFC 7143 has a
      // response for exactly that (4), more precise than "not supported".
      resp = TmfResponse::reassign_unsupported;
      break;
    case TmfFunc::clear_aca:
    case TmfFunc::target_cold_reset:
    default:
      resp = TmfResponse::not_supported;
      break;
  }
  // kill() may have released some at once; tmf_wait_ counts the rest.
  unsigned left = 0;
  each_cmd([&](const Cmd& c) { left += c.st != Cmd::St::free && c.tmf_waiting; });
  (void)wait;
  tmf_itt_ = h.itt();
  tmf_func_ = uint8_t(fn);
  tmf_lun_ = lun;
  if (resp != TmfResponse::complete || left == 0) {
    tmf_pending_ = true;
    tmf_wait_ = 0;
    if (resp == TmfResponse::complete) {
      slow_tmf_check();
    } else {
      tmf_pending_ = false;
      build_tmf_response(r, h.itt(), resp, seq(true));
      push_ctl(r, nullptr, 0);
    }
    return true;
  }
  tmf_pending_ = true;
  tmf_wait_ = left;
  return true;
}

// Every affected task is gone: tell the core, then answer.
void Conn::slow_tmf_check() {
  if (!tmf_pending_) return;
  tmf_pending_ = false;
  TmfFunc fn = TmfFunc(tmf_func_);
  if (fn == TmfFunc::lun_reset) target_->lun_reset(tmf_lun_);
  if (fn == TmfFunc::target_warm_reset) target_->target_reset();
  if (fd_ < 0) return;
  Bhs r;
  build_tmf_response(r, tmf_itt_, TmfResponse::complete, seq(true));
  push_ctl(r, nullptr, 0);
}

}  // namespace sgv::iscsi
