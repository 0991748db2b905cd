// iscsi/conn.cpp - the connection's full feature phase: the SCSI command data
// path (slot, validation, buffer, immediate/unsolicited/solicited data,
// execute, Data-In/response), NOP, Text, Logout, Reject, TMF, and the batched
// send path. Login lives in conn_login.cpp, task management in tmf.cpp.
#include "iscsi/conn.hpp"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <climits>
#include <cstring>
#include <new>

#include "iscsi/crc32c.hpp"
#include "scsi/target.hpp"

namespace sgv::iscsi {

const uint8_t Conn::kPad[4] = {0, 0, 0, 0};

namespace {
constexpr unsigned kReservedSlots = 8;  // immediate commands beyond the window (reserved tags)
constexpr unsigned kPdusPerRead = 64;   // fairness between connections of a reactor
const Bhs& as_bhs(const uint8_t* p) { return *reinterpret_cast<const Bhs*>(p); }
}  // namespace

Conn::Conn(int fd, Host* host, Counters* ctr, std::string peer)
    : fd_(fd),
      host_(host),
      ctr_(ctr),
      peer_(std::move(peer)),
      reader_(std::max<size_t>(8192, host->limits().max_recv_data_segment_length)),
      lim_(host->limits()),
      dir_(host, this) {
  static_assert(scsi::kSenseMax <= kSenseSize, "the slot's sense buffer holds the core's sense");
  TagSetOptions o;
  o.name = "iscsi-conn";
  o.depth = std::max(1u, lim_.queue_depth);
  o.reserved = kReservedSlots;
  o.priv_size = sizeof(Cmd);
  o.inline_segs = 0;  // the Task carries its own inline segments
  o.init_slot = [](Slot* s, void* ctx) {
    Cmd* c = new (s->priv_raw()) Cmd();
    c->slot = s;
    c->idx = uint16_t(s->tag());
    c->conn = static_cast<Conn*>(ctx);
    c->task.sense = s->sense();
  };
  o.exit_slot = [](Slot* s, void*) { s->priv<Cmd>()->~Cmd(); };
  o.ctx = this;
  if (TagSet::create(o, &tags_) < 0) tags_.reset();
  // Control PDUs are small; this keeps steady-state NOPs allocation-free too.
  ctl_fill_.reserve(16384);
  ctl_send_.reserve(16384);
  ctr_->add(ctr_->conns_total);
  ctr_->add(ctr_->conns_open);
}

Conn::~Conn() {
  close();
  assert(idle());
  if (nexus_) target_->close_nexus(nexus_);
  ctr_->add(ctr_->conns_open, uint64_t(-1));
}

// ---------------------------------------------------------------- slots

// Budget: one tag (a bitmap word fetch_or) and the resets below; no heap.
Cmd* Conn::take_slot(bool immediate) {
  if (!tags_) return nullptr;
  // Each class first, then the other one rather than refusing.
  Slot* s = tags_->get(immediate ? kTagReserved : 0);
  if (!s) s = tags_->get(immediate ? 0 : kTagReserved);
  if (!s) return nullptr;
  Cmd* c = s->priv<Cmd>();
  ++active_;
  c->st = Cmd::St::recv;
  c->vec = nullptr;
  c->alloc_len = 0;
  c->received = c->unsol_end = c->unsol_got = c->unsol_data_sn = 0;
  c->r2t_next = c->r2t_sn = 0;
  for (R2tEntry& e : c->r2t) e = R2tEntry{};
  c->in_off = c->in_sn = c->in_len = 0;
  c->in_q = c->rsp_sent = c->in_backend = c->mem_wait = c->tmf_waiting = c->crc_error = false;
  c->in_batch = false;
  c->next_q = nullptr;
  scsi::Task& t = c->task;
  t.dir = scsi::Dir::none;
  t.data_len = 0;
  t.backend_buffer = false;
  t.segs = nullptr;
  t.nsegs = 0;
  t.status = scsi::status::good;
  t.sense_len = 0;
  t.xfer_len = 0;
  t.done = &Conn::task_done;
  t.post_resume = post_resume ? &Conn::task_post_resume : nullptr;
  t.ctx = c;
  // The core may keep per-command state here; a reused slot starts clean.
  std::memset(t.core_scratch, 0, sizeof t.core_scratch);
  t.lun_obj = nullptr;
  t.op_index = 0;
  return c;
}

void Conn::free_slot(Cmd* c) {
  assert(c->st != Cmd::St::free);
  set_awaits_data(c, false);
  c->st = Cmd::St::free;
  --active_;
  tags_->put(c->slot);
}

// Keeps data_holders_ = the commands that hold a buffer and still need
// Data-Out from this connection to get past it (see hdr_scsi_cmd).
// Invariant: mem_blocked_ implies data_holders_ == 0 -- a command becomes a
// holder only when its PDU has been read, which a blocked reader does not do.
void Conn::set_awaits_data(Cmd* c, bool on) {
  assert(!on || !mem_blocked_);
  if (c->awaits_data == on) return;
  c->awaits_data = on;
  if (on) ++data_holders_; else --data_holders_;
}

// Gives back the buffer and slot once nothing refers to them any more.
void Conn::finish_cmd(Cmd* c) {
  if (c->in_backend || c->mem_wait || c->in_batch || c->in_q) return;
  if (c->vec) {
    c->vec->release();
    c->vec = nullptr;
  }
  bool tmf = c->tmf_waiting;
  free_slot(c);
  if (tmf && tmf_wait_ > 0 && --tmf_wait_ == 0) slow_tmf_check();
}

// Largest CmdSN the initiator may send. Never shrinks (commands already
// allowed must be accepted); opens only while slots are free and no
// command waits for memory (backpressure holds the window).
uint32_t Conn::window_max() {
  if (!mem_blocked_ && mem_waiters_ == 0) {
    unsigned used = std::min<unsigned>(active_, lim_.queue_depth);
    uint32_t cand = exp_cmd_sn_ + (lim_.queue_depth - used) - 1;
    if (sn_gt(cand, max_cmd_sn_)) max_cmd_sn_ = cand;
  }
  return max_cmd_sn_;
}

SeqNums Conn::seq(bool advance_stat) {
  SeqNums s{stat_sn_, exp_cmd_sn_, window_max()};
  if (advance_stat) ++stat_sn_;
  return s;
}

// ---------------------------------------------------------------- receive

// Syscalls per PDU (they dominate the target's CPU here: a READ command is
// one 48-byte PDU): at a PDU boundary in full feature phase the socket is
// first peeked, and the run of complete header-only PDUs at its front
// (READs, NOP-Outs, TMFs...) is taken in one read into carry_ and fed to the
// reader from there -- two syscalls for the whole run instead of one readv
// each. A readv that ends a data segment also asks for the next BHS (48
// bytes, never payload) into carry_, so a stream of WRITEs with immediate
// data costs one readv per PDU instead of two. Payload always lands straight
// in the command's segments: carry_ only ever holds header bytes.
bool Conn::on_readable() {
  bool drained = false;  // the last peek saw everything the socket held
  for (unsigned pdus = 0; pdus < kPdusPerRead && want_read() && fd_ >= 0;) {
    struct iovec iov[64];
    unsigned n = reader_.want(iov, 63);
    size_t want_len = 0;
    for (unsigned i = 0; i < n; ++i) want_len += iov[i].iov_len;
    size_t r = 0;
    if (carry_off_ < carry_len_) {
      for (unsigned i = 0; i < n && carry_off_ < carry_len_; ++i) {
        size_t t = std::min<size_t>(iov[i].iov_len, carry_len_ - carry_off_);
        std::memcpy(iov[i].iov_base, carry_ + carry_off_, t);
        carry_off_ += t;
        r += t;
      }
    } else {
      if (drained) return true;
      carry_off_ = carry_len_ = 0;
      if (full_feature_ && reader_.at_boundary()) {
        ssize_t m = ::recv(fd_, carry_, sizeof carry_, MSG_PEEK | MSG_DONTWAIT);
        if (m == 0) return false;
        if (m < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
          if (errno == EINTR) continue;
          return false;
        }
        size_t run = 0, hlen = kBhsLen + (p_.header_digest ? 4 : 0);
        while (run + hlen <= size_t(m) && carry_[run + 4] == 0 && be24(carry_ + run + 5) == 0) run += hlen;
        if (run > 0) {
          ssize_t got = ::read(fd_, carry_, run);  // bytes the peek saw: all there
          if (got <= 0) return got == 0 ? false : (errno == EAGAIN || errno == EINTR);
          carry_len_ = uint32_t(got);
          drained = size_t(got) == size_t(m) && size_t(m) < sizeof carry_;
          continue;
        }
      }
      // In a PDU's body the bytes after want() are the next PDU's BHS.
      const uint8_t* hb = reader_.bhs();
      const uint8_t* p0 = static_cast<const uint8_t*>(iov[0].iov_base);
      bool in_header = p0 >= hb && p0 < hb + kBhsLen + kMaxAhsLen + 4;
      if (!in_header && full_feature_) iov[n++] = {carry_, kBhsLen};
      ssize_t got = ::readv(fd_, iov, int(n));
      if (got == 0) return false;
      if (got < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
        if (errno == EINTR) continue;
        return false;
      }
      r = size_t(got);
      if (r > want_len) {
        carry_len_ = uint32_t(r - want_len);
        r = want_len;
      }
    }
    ctr_->add(ctr_->bytes_in, uint64_t(r));
    Reader::Ev ev = reader_.advance(r);
    if (ev == Reader::Ev::header) {
      if (!on_header()) return false;
      if (mem_blocked_) return true;  // resumes in on_mem_granted
      ev = reader_.advance(0);
    }
    if (ev == Reader::Ev::pdu) {
      ++pdus;
      ctr_->add(ctr_->pdus_in);
      if (!on_pdu()) return false;
    }
  }
  return true;
}

void Conn::reject(RejectReason why, const uint8_t* bhs) {
  Bhs h;
  build_reject(h, why, seq(true));
  push_ctl(h, bhs, kBhsLen);
  ctr_->add(ctr_->rejects);
}

// Header complete: validate every length before anything is allocated and
// decide where the data segment lands.
bool Conn::on_header() {
  const Bhs& h = as_bhs(reader_.bhs());
  rx_cmd_ = nullptr;
  rx_drop_ = false;
  rx_r2t_ = -1;
  last_rx_ms_ = 0;  // tick() restamps: any traffic proves the peer alive
  if (p_.header_digest) {
    uint32_t d = crc32c(reader_.bhs(), kBhsLen + reader_.ahs_len());
    if (d != reader_.header_digest()) {
      // A header we cannot trust gives no length we can trust: drop (§7.8).
      ctr_->add(ctr_->digest_errors);
      return false;
    }
  }
  BhsLimits bl;
  bl.max_recv_data_segment_length = full_feature_ ? p_.max_recv_dsl_target : 8192;
  bl.full_feature = full_feature_;
  RejectReason why = validate_initiator_bhs(h, bl);
  if (why != RejectReason::none) {
    if (!full_feature_ || h.data_len() > bl.max_recv_data_segment_length) {
      // Before login, or a data segment larger than we declared: answer and
      // drop the connection, since the stream cannot be trusted to resync.
      reject(why == RejectReason::none ? RejectReason::protocol_error : why, reader_.bhs());
      closing_ = true;
      return true;  // flush() closes once the Reject is out
    }
    reject(why, reader_.bhs());
    rx_drop_ = true;
    reader_.data_discard();
    return true;
  }
  switch (h.opcode()) {
    case Op::scsi_cmd:
      return hdr_scsi_cmd();
    case Op::data_out:
      return hdr_data_out();
    default:
      if (h.data_len() > 0) {
        reader_.data_to_buffer();
      } else {
        reader_.data_discard();
      }
      return true;
  }
}

bool Conn::on_pdu() {
  const Bhs& h = as_bhs(reader_.bhs());
  if (closing_) return true;  // everything after a fatal reject is ignored
  if (rx_drop_) return true;
  if (p_.data_digest && h.data_len() > 0 && h.opcode() != Op::scsi_cmd &&
      h.opcode() != Op::data_out) {
    if (crc32c(reader_.buffer(), padded(h.data_len())) != reader_.data_digest()) {
      ctr_->add(ctr_->digest_errors);
      reject(RejectReason::data_digest, reader_.bhs());
      return true;
    }
  }
  switch (h.opcode()) {
    case Op::scsi_cmd:
      return pdu_scsi_cmd();
    case Op::data_out:
      return pdu_data_out();
    case Op::nop_out:
      return pdu_nop_out();
    case Op::login_req:
      return pdu_login();
    case Op::text_req:
      return pdu_text();
    case Op::logout_req:
      return pdu_logout();
    case Op::tmf_req:
      return pdu_tmf();
    default:
      reject(RejectReason::cmd_not_supported, reader_.bhs());
      return true;
  }
}

// SCSI Command header. Budget: a slot pop, a CDB copy, the core's table
// lookup and one cache allocation; no syscalls, no heap.
bool Conn::hdr_scsi_cmd() {
  const Bhs& h = as_bhs(reader_.bhs());
  uint32_t dsl = h.data_len();
  bool imm = h.immediate();
  rx_drop_ = true;  // until a command takes the data
  if (!imm && h.cmd_sn() != exp_cmd_sn_) {
    // Outside the window or out of order on a single connection: the
    // initiator broke the window; drop silently (§4.2.2.1).
    ctr_->add(ctr_->dropped_cmdsn);
    reader_.data_discard();
    return true;
  }
  if (!target_) {
    // A discovery session has no LUNs to run it on (RFC 7143 4.3).
    if (!imm) ++exp_cmd_sn_;
    reject(RejectReason::protocol_error, reader_.bhs());
    reader_.data_discard();
    return true;
  }
  if (h.read() && h.write()) {
    if (!imm) ++exp_cmd_sn_;
    reject(RejectReason::cmd_not_supported, reader_.bhs());
    reader_.data_discard();
    return true;
  }
  if (dsl > 0 && (!p_.immediate_data || dsl > p_.first_burst || dsl > h.edtl())) {
    if (!imm) ++exp_cmd_sn_;
    reject(RejectReason::protocol_error, reader_.bhs());
    reader_.data_discard();
    return true;
  }
  Cmd* c = take_slot(imm);
  if (!c) {
    reject(RejectReason::immediate_cmd_reject, reader_.bhs());
    reader_.data_discard();
    return true;
  }
  if (!imm) ++exp_cmd_sn_;
  ctr_->add(ctr_->cmds);
  c->itt = h.itt();
  c->cmd_sn = h.cmd_sn();
  c->edtl = h.edtl();
  scsi::Task& t = c->task;
  std::memcpy(t.cdb, h.cdb(), 16);
  t.cdb_len = 16;
  t.lun = h.lun();
  t.edtl = c->edtl;
  t.xport_read = h.read();
  t.xport_write = h.write();
  t.attr = scsi::TaskAttr(h.task_attr() <= 4 ? h.task_attr() : 0);
  t.nexus = nexus_;
  t.cpu_reads_data = p_.data_digest;  // the Data-In CRC reads every byte
  rx_cmd_ = c;
  if (c->edtl > lim_.max_xfer_bytes) {
    respond_check(c, 0x05, 0x24, 0x00);  // ILLEGAL REQUEST, INVALID FIELD IN CDB
    reader_.data_discard();
    return true;
  }
  if (target_->prepare(t)) {
    c->st = Cmd::St::send;
    enqueue(c);
    reader_.data_discard();
    return true;
  }
  c->xfer = std::min(c->edtl, t.data_len);
  size_t need = 0;
  if (t.dir == scsi::Dir::out) {
    if (c->xfer == 0) {
      // EDTL 0: nothing may be written; GOOD with the whole CDB length as
      // residual overflow (what initiators and libiscsi's tests expect).
      c->st = Cmd::St::send;
      enqueue(c);
      reader_.data_discard();
      return true;
    }
    bool unsolicited = !p_.initial_r2t && !h.final();
    c->unsol_end = unsolicited ? std::min(c->edtl, p_.first_burst) : dsl;
    need = std::max<size_t>(c->xfer, c->unsol_end);
  } else if (t.dir == scsi::Dir::in && !t.backend_buffer) {
    need = c->xfer;
  }
  if (need > 0) {
    // Waiting for memory stops this connection's reader, which is safe only
    // while none of its commands holds a buffer and awaits Data-Out: that
    // data would sit in the socket behind this header, the buffer would
    // never come back and the pool would never grant us (a 33rd write
    // behind 32 solicited ones hangs the session). So with such a holder
    // the command does not wait: if the budgets refuse it at once it is
    // answered TASK SET FULL (SAM: the initiator retries later; the
    // budget's refusal counter records it), its immediate data dropped,
    // its CmdSN consumed like any answered command's.
    // No deadlock remains: a memory holder is either in the backend or
    // sending (both finish without input), or awaits Data-Out on a
    // connection whose reader runs -- a reader blocks only with no such
    // holder, and while blocked it takes in no command that could become
    // one. So every holder frees its buffer without any blocked reader's
    // help, within a session and across sessions sharing LUN and global
    // budgets, and every waiter is eventually granted (or refused).
    bool may_block = data_holders_ == 0;
    int rc = get_buffer(c, need, may_block);
    if (rc == -EINPROGRESS) {
      mem_blocked_ = true;  // reading resumes when the pool grants memory
      rx_drop_ = false;
      return true;
    }
    if (rc < 0) {
      c->task.status = rc == -ENOMEM && !may_block ? scsi::status::task_set_full : scsi::status::busy;
      c->st = Cmd::St::send;
      enqueue(c);
      reader_.data_discard();
      return true;
    }
  }
  rx_drop_ = false;
  if (dsl > 0 && t.dir == scsi::Dir::out) {
    reader_.data_to(c->vec->segs().data(), unsigned(c->vec->nsegs()), 0);
  } else {
    // Data the CDB does not want (a READ flagged as a write): dropped, the
    // command still runs as its CDB says.
    reader_.data_discard();
  }
  return true;
}

namespace {
void waiter_cb(Waiter* w, Vec* v, int status) {
  Cmd* c = static_cast<Cmd*>(w->ctx);
  c->conn->post_grant(c->conn->post_arg, c->conn, c, v, status);
}
}  // namespace

// 0: c->vec holds `bytes`; -EINPROGRESS: queued on the pool's waiter
// (only if `wait` and a reactor delivers grants); other negative errno: no
// memory now (-ENOMEM: a budget or the watermark refused).
int Conn::get_buffer(Cmd* c, size_t bytes, bool wait) {
  Vec* v = nullptr;
  int rc;
  Budget* b = charge_budget(c->task.lun);
  if (post_grant && wait) {
    c->waiter.cb = &waiter_cb;
    c->waiter.ctx = c;
    rc = host_->pool()->alloc_wait(bytes, 0, b, &c->waiter, &v);
  } else {
    rc = host_->pool()->alloc(bytes, 0, b, &v);
  }
  if (rc == -EINPROGRESS) {
    c->mem_wait = true;
    c->st = Cmd::St::wait_mem;
    ++mem_waiters_;
    ctr_->add(ctr_->mem_waits);
    return rc;
  }
  if (rc < 0) return rc;
  c->vec = v;
  c->alloc_len = bytes;
  fit_task_segs(c);
  return 0;
}

// The budget a command's buffer is charged to: the session's child of its
// LUN's budget, which charges the session's total (budget_) as well, so both
// the LUN's and the session's limits hold (global > LUN > session). Made at
// the first command to each LUN: one allocation per LUN per session, never
// per command. A Host without per-LUN budgets charges the session alone.
Budget* Conn::charge_budget(uint64_t lun) {
  for (auto& e : lun_budgets_)
    if (e.first == lun) return e.second.get();
  Budget* parent = host_->lun_budget(target_, lun);
  if (!parent || !budget_) return budget_.get();
  lun_budgets_.emplace_back(lun, std::make_unique<Budget>(parent, 0, 0, "session-lun", budget_.get()));
  return lun_budgets_.back().second.get();
}

// The backend moves exactly the bytes of task.segs, so when the buffer is
// larger than the transfer (unsolicited data past the CDB's length) the
// task sees a trimmed copy of the first segments.
void Conn::fit_task_segs(Cmd* c) {
  SegSpan all = c->vec->segs();
  c->task.segs = all.data();
  c->task.nsegs = unsigned(all.size());
  if (c->alloc_len == c->xfer || c->task.dir != scsi::Dir::out) return;
  size_t left = c->xfer;
  unsigned n = 0;
  for (; n < all.size() && left > 0 && n < scsi::kTaskInlineSegs; ++n) {
    size_t l = std::min(left, all[n].len);
    c->task.inline_segs[n] = Seg{all[n].addr, l};
    left -= l;
  }
  // Beyond the inline segments the task keeps the full list; the core then
  // answers from its own length checks.
  if (left == 0) {
    c->task.segs = c->task.inline_segs;
    c->task.nsegs = n;
  }
}

void Conn::on_mem_granted(Cmd* c, Vec* v, int status) {
  assert(c->mem_wait);
  c->mem_wait = false;
  --mem_waiters_;
  bool current = rx_cmd_ == c && mem_blocked_;
  if (current) mem_blocked_ = false;
  if (status == 0) {
    c->vec = v;
    c->alloc_len = v->len();
    fit_task_segs(c);
  }
  if (closed() || c->st == Cmd::St::aborted) {
    if (current) rx_drop_ = true;
    finish_cmd(c);
    return;
  }
  c->st = Cmd::St::recv;
  if (!current) return;
  const Bhs& h = as_bhs(reader_.bhs());
  if (status < 0) {
    c->task.status = scsi::status::busy;
    c->st = Cmd::St::send;
    enqueue(c);
    rx_drop_ = true;
    reader_.data_discard();
  } else if (h.data_len() > 0 && c->task.dir == scsi::Dir::out) {
    reader_.data_to(c->vec->segs().data(), unsigned(c->vec->nsegs()), 0);
  } else {
    reader_.data_discard();
  }
  if (reader_.advance(0) == Reader::Ev::pdu) {
    if (!on_pdu()) close();
  }
}

bool Conn::pdu_scsi_cmd() {
  Cmd* c = rx_cmd_;
  if (!c || c->st != Cmd::St::recv) return true;
  const Bhs& h = as_bhs(reader_.bhs());
  uint32_t dsl = h.data_len();
  if (p_.data_digest && dsl > 0 && c->task.dir == scsi::Dir::out &&
      data_digest(c->vec->segs(), 0, dsl) != reader_.data_digest()) {
    // No command runs on data we cannot trust (§7.8, ERL 0). The PDU is
    // discarded whole, so the command was never received: its CmdSN stays
    // expected and the initiator's retry with it (§7.2.1) is in the window.
    // Nothing came in between: the data segment follows its own header.
    ctr_->add(ctr_->digest_errors);
    if (!h.immediate() && exp_cmd_sn_ == c->cmd_sn + 1) exp_cmd_sn_ = c->cmd_sn;
    reject(RejectReason::data_digest, reader_.bhs());
    finish_cmd(c);
    return true;
  }
  if (c->task.dir == scsi::Dir::out) {
    c->received = dsl;
    c->unsol_got = dsl;
    c->unsol_data_sn = 0;
    c->r2t_next = std::min(c->unsol_end, c->xfer);
    if (c->unsol_end < dsl) c->unsol_end = dsl;
    ctr_->add(ctr_->writes);
    queue_r2ts(c);
    if (c->unsol_got >= c->unsol_end && c->r2t_next >= c->xfer && !c->in_q) {
      bool live = false;
      for (const R2tEntry& e : c->r2t) live |= e.live;
      if (!live) {
        start_exec(c);
        return true;
      }
    }
    set_awaits_data(c, true);  // until start_exec, respond_check or abort
    return true;
  }
  if (c->task.dir == scsi::Dir::in) ctr_->add(ctr_->reads);
  start_exec(c);
  return true;
}

// Solicits the next bursts, up to MaxOutstandingR2T at a time.
void Conn::queue_r2ts(Cmd* c) {
  unsigned live = 0;
  for (const R2tEntry& e : c->r2t) live += e.live;
  unsigned cap = std::min<unsigned>(p_.max_outstanding_r2t, kMaxR2tPerCmd);
  bool any = false;
  for (unsigned i = 0; i < kMaxR2tPerCmd && live < cap && c->r2t_next < c->xfer; ++i) {
    R2tEntry& e = c->r2t[i];
    if (e.live) continue;
    e.offset = c->r2t_next;
    e.len = std::min(p_.max_burst, c->xfer - c->r2t_next);
    e.got = 0;
    e.next_data_sn = 0;
    e.r2t_sn = c->r2t_sn++;
    e.live = true;
    e.sent = false;
    c->r2t_next += e.len;
    ++live;
    any = true;
  }
  if (any) enqueue(c);
}

Cmd* Conn::find_itt(uint32_t itt) {
  for (unsigned i = 0, n = nslots(); i < n; ++i) {
    Cmd& c = slot_cmd(i);
    if (c.st != Cmd::St::free && c.itt == itt) return &c;
  }
  return nullptr;
}

// Data-Out header: find the command and burst, check DataSN and offsets,
// and land the data at its buffer offset.
bool Conn::hdr_data_out() {
  const Bhs& h = as_bhs(reader_.bhs());
  uint32_t ttt = h.ttt();
  uint32_t dsl = h.data_len();
  rx_drop_ = true;
  Cmd* c = nullptr;
  if (ttt != kReservedTag) {
    uint32_t idx = ttt >> 4, ent = ttt & 15;
    Cmd* t = idx < nslots() && ent < kMaxR2tPerCmd ? &slot_cmd(idx) : nullptr;
    if (t && t->st == Cmd::St::recv && t->itt == h.itt() && t->r2t[ent].live) {
      c = t;
      rx_r2t_ = int(ent);
    }
  } else {
    c = find_itt(h.itt());
    if (c && c->st != Cmd::St::recv) c = nullptr;
  }
  if (!c) {
    // A task aborted meanwhile, or a stale tag: silently discard (§11.7).
    reader_.data_discard();
    return true;
  }
  uint32_t off = h.buffer_offset();
  bool bad;
  if (rx_r2t_ >= 0) {
    R2tEntry& e = c->r2t[rx_r2t_];
    bad = h.data_sn() != e.next_data_sn || off < e.offset || uint64_t(off) + dsl > uint64_t(e.offset) + e.len ||
          dsl > e.len - e.got;
  } else {
    bad = h.data_sn() != c->unsol_data_sn || uint64_t(off) + dsl > c->unsol_end || dsl > c->unsol_end - c->unsol_got;
  }
  if (bad || uint64_t(off) + dsl > c->alloc_len) {
    reject(RejectReason::invalid_pdu_field, reader_.bhs());
    reader_.data_discard();
    return true;
  }
  rx_cmd_ = c;
  rx_drop_ = false;
  if (dsl > 0) {
    reader_.data_to(c->vec->segs().data(), unsigned(c->vec->nsegs()), off);
  } else {
    reader_.data_discard();
  }
  return true;
}

bool Conn::pdu_data_out() {
  Cmd* c = rx_cmd_;
  if (!c || c->st != Cmd::St::recv) return true;
  const Bhs& h = as_bhs(reader_.bhs());
  uint32_t dsl = h.data_len();
  if (p_.data_digest && dsl > 0 &&
      data_digest(c->vec->segs(), h.buffer_offset(), dsl) != reader_.data_digest()) {
    // RFC 7143 7.8: Reject and discard the PDU. ERL 0 cannot ask again with
    // a recovery R2T, so the task ends without running: nothing more is
    // solicited and, once every outstanding burst has ended, it answers
    // CHECK CONDITION "protocol service CRC error".
    ctr_->add(ctr_->digest_errors);
    reject(RejectReason::data_digest, reader_.bhs());
    c->crc_error = true;
    c->r2t_next = c->xfer;
    for (R2tEntry& e : c->r2t)
      if (e.live && !e.sent) e.live = false;
  }
  c->received += dsl;
  if (rx_r2t_ >= 0) {
    R2tEntry& e = c->r2t[rx_r2t_];
    e.got += dsl;
    ++e.next_data_sn;
    if (e.got == e.len) {
      e.live = false;
      queue_r2ts(c);
    }
  } else {
    c->unsol_got += dsl;
    ++c->unsol_data_sn;
    if (h.final()) c->unsol_end = c->unsol_got;
  }
  if (c->unsol_got >= c->unsol_end && c->r2t_next >= c->xfer) {
    bool live = false;
    for (const R2tEntry& e : c->r2t) live |= e.live;
    if (!live) {
      if (c->crc_error)
        respond_check(c, 0x0b, 0x47, 0x05);  // ABORTED COMMAND, PROTOCOL SERVICE CRC ERROR (11.4.7.2)
      else
        start_exec(c);
    }
  }
  return true;
}

void Conn::start_exec(Cmd* c) {
  set_awaits_data(c, false);
  c->st = Cmd::St::exec;
  c->in_backend = true;
  ++inflight_;
  target_->execute(c->task);
}

// A parked task is still in the backend (in_backend, inflight_): a closed
// connection stays a zombie until it completes.
void Conn::task_post_resume(scsi::Task* t) {
  Cmd* c = static_cast<Cmd*>(t->ctx);
  c->conn->post_resume(c->conn->post_arg, c->conn, c);
}

void Conn::on_resume(Cmd* c) { target_->resume(c->task); }

void Conn::task_done(scsi::Task* t) {
  Cmd* c = static_cast<Cmd*>(t->ctx);
  Conn* self = c->conn;
  c->in_backend = false;
  --self->inflight_;
  if (self->closed() || c->st == Cmd::St::aborted) {
    self->finish_cmd(c);
    return;
  }
  self->complete_cmd(c);
}

void Conn::complete_cmd(Cmd* c) {
  c->st = Cmd::St::send;
  c->in_off = c->in_sn = 0;
  c->in_len = 0;
  if (c->task.dir == scsi::Dir::in && c->task.status == scsi::status::good)
    c->in_len = std::min(c->task.xfer_len, c->xfer);
  enqueue(c);
}

void Conn::respond_check(Cmd* c, uint8_t key, uint8_t asc, uint8_t ascq) {
  uint8_t* s = c->task.sense;
  std::memset(s, 0, 18);
  s[0] = 0x70;
  s[2] = key;
  s[7] = 10;
  s[12] = asc;
  s[13] = ascq;
  c->task.sense_len = 18;
  c->task.status = scsi::status::check_condition;
  set_awaits_data(c, false);
  c->in_len = 0;
  c->st = Cmd::St::send;
  enqueue(c);
}

// ---------------------------------------------------------------- other PDUs

bool Conn::pdu_nop_out() {
  const Bhs& h = as_bhs(reader_.bhs());
  if (!full_feature_) return false;
  if (!h.immediate() && h.cmd_sn() == exp_cmd_sn_) ++exp_cmd_sn_;
  ctr_->add(ctr_->nops);
  if (h.itt() == kReservedTag) {
    // The answer to our ping (or a bare ExpStatSN update).
    if (ping_out_ && h.ttt() == ping_ttt_) ping_out_ = false;
    return true;
  }
  Bhs r;
  uint32_t dsl = h.data_len();
  build_nop_in(r, h.lun(), h.itt(), kReservedTag, seq(true), dsl);
  push_ctl(r, dsl ? reader_.buffer() : nullptr, dsl);
  return true;
}

// Text Requests (SendTargets) go through the TextExchange: requests
// continued with the C bit are gathered, answers longer than the initiator's
// MaxRecvDataSegmentLength go out in pieces it pulls with our TTT.
bool Conn::pdu_text() {
  const Bhs& h = as_bhs(reader_.bhs());
  if (!full_feature_) return false;
  if (!h.immediate() && h.cmd_sn() == exp_cmd_sn_) ++exp_cmd_sn_;
  if (!text_) text_ = std::make_unique<TextExchange>(dir_, sess_);
  TextExchange::Output out;
  text_->on_request(h, {reader_.buffer(), h.data_len()}, seq(true), p_.max_recv_dsl_initiator, out);
  if (out.reject) {
    push_ctl(out.rsp, reader_.bhs(), kBhsLen);
    ctr_->add(ctr_->rejects);
  } else {
    push_ctl(out.rsp, out.data.data(), uint32_t(out.data.size()));
  }
  return true;
}

bool Conn::pdu_logout() {
  const Bhs& h = as_bhs(reader_.bhs());
  if (!full_feature_) return false;
  if (!h.immediate() && h.cmd_sn() == exp_cmd_sn_) ++exp_cmd_sn_;
  ctr_->add(ctr_->logouts);
  Bhs r;
  LogoutResponse resp = LogoutResponse::success;
  if (h.logout_reason() == LogoutReason::remove_for_recovery) resp = LogoutResponse::recovery_unsupported;
  build_logout_response(r, h.itt(), resp, seq(true), 0, 0);
  push_ctl(r, nullptr, 0);
  closing_ = true;
  return true;
}

// ---------------------------------------------------------------- send

void Conn::enqueue(Cmd* c) {
  if (c->in_q) return;
  c->in_q = true;
  c->next_q = nullptr;
  if (q_tail_) q_tail_->next_q = c; else q_head_ = c;
  q_tail_ = c;
}

void Conn::push_ctl(const Bhs& h, const void* data, uint32_t len) {
  size_t at = ctl_fill_.size();
  ctl_fill_.insert(ctl_fill_.end(), h.b, h.b + kBhsLen);
  if (p_.header_digest) {
    uint8_t d[4];
    put_digest(d, crc32c(h.b, kBhsLen));
    ctl_fill_.insert(ctl_fill_.end(), d, d + 4);
  }
  if (len) {
    const uint8_t* p = static_cast<const uint8_t*>(data);
    ctl_fill_.insert(ctl_fill_.end(), p, p + len);
    ctl_fill_.insert(ctl_fill_.end(), kPad, kPad + pad_len(len));
    if (p_.data_digest) {
      uint8_t d[4];
      put_digest(d, crc32c(ctl_fill_.data() + at + kBhsLen + (p_.header_digest ? 4 : 0), padded(len)));
      ctl_fill_.insert(ctl_fill_.end(), d, d + 4);
    }
  }
  ctr_->add(ctr_->pdus_out);
}

// Builds the next writev batch: control PDUs first, then commands in FIFO
// order (R2Ts, Data-In PDUs over the command's own segments, responses).
// Budget: per PDU one 48-byte header build (+ CRC when negotiated) and the
// iovecs of its data window; no copies of payload.
void Conn::build_batch() {
  batch_n_ = batch_i_ = 0;
  batch_ndone_ = 0;
  unsigned nh = 0;
  if (!ctl_fill_.empty()) {
    ctl_send_.clear();
    ctl_send_.swap(ctl_fill_);
    batch_iov_[batch_n_++] = {ctl_send_.data(), ctl_send_.size()};
  }
  auto hdr = [&](const Bhs& h) -> uint8_t* {
    uint8_t* b = hdrs_[nh].b;
    std::memcpy(b, h.b, kBhsLen);
    size_t n = kBhsLen;
    if (p_.header_digest) {
      put_digest(b + n, crc32c(b, kBhsLen));
      n += 4;
    }
    batch_iov_[batch_n_++] = {b, n};
    ctr_->add(ctr_->pdus_out);
    return b;
  };
  while (q_head_ && nh < kBatchHdr && batch_n_ + 8 <= kBatchIov) {
    Cmd* c = q_head_;
    bool stop = false;
    if (c->st == Cmd::St::aborted || c->st == Cmd::St::free) {
      // Nothing more goes out for an aborted task.
    } else {
      for (unsigned i = 0; i < kMaxR2tPerCmd && nh < kBatchHdr && batch_n_ + 2 <= kBatchIov; ++i) {
        R2tEntry& e = c->r2t[i];
        if (!e.live || e.sent) continue;
        Bhs h;
        build_r2t(h, c->task.lun, c->itt, (uint32_t(c->idx) << 4) | i, e.r2t_sn, e.offset, e.len, seq(false));
        hdr(h);
        ++nh;
        e.sent = true;
        c->in_batch = true;
        ctr_->add(ctr_->r2ts);
      }
      for (const R2tEntry& e : c->r2t) stop |= e.live && !e.sent;
      if (!stop && c->st == Cmd::St::send) {
        const scsi::Task& t = c->task;
        SegSpan segs(t.segs, t.nsegs);
        // Residuals compare EDTL with what the CDB asks for, except when the
        // command produced less than it could send (short INQUIRY data).
        uint32_t actual = (t.dir == scsi::Dir::in && t.status == scsi::status::good && t.xfer_len < c->xfer)
                              ? t.xfer_len : t.data_len;
        Residual res = Residual::of(c->edtl, actual);
        bool status_in_data = t.sense_len == 0;
        while (c->in_off < c->in_len) {
          uint32_t len = std::min(p_.max_recv_dsl_initiator, c->in_len - c->in_off);
          uint32_t burst_left = p_.max_burst - (c->in_off % p_.max_burst);
          len = std::min(len, burst_left);
          // Count the iovecs this window needs before committing to it.
          size_t off = c->in_off;
          unsigned si = 0;
          while (si < segs.size() && off >= segs[si].len) off -= segs[si++].len;
          unsigned need = 0;
          for (size_t left = len, o = off, k = si; left > 0 && k < segs.size(); ++k, o = 0) {
            left -= std::min(left, segs[k].len - o);
            ++need;
          }
          if (nh >= kBatchHdr || batch_n_ + need + 3 > kBatchIov) {
            stop = true;
            break;
          }
          bool last = c->in_off + len == c->in_len;
          DataInFields f;
          f.lun = t.lun;
          f.itt = c->itt;
          f.data_sn = c->in_sn;
          f.offset = c->in_off;
          f.len = len;
          f.final = last || len == burst_left;
          f.with_status = last && status_in_data;
          f.status = t.status;
          f.res = res;
          Bhs h;
          build_data_in(h, f, seq(f.with_status));
          hdr(h);
          ++nh;
          uint32_t crc = kCrc32cInit;
          for (size_t left = len, o = off, k = si; left > 0; ++k, o = 0) {
            size_t l = std::min(left, segs[k].len - o);
            batch_iov_[batch_n_++] = {static_cast<uint8_t*>(segs[k].addr) + o, l};
            if (p_.data_digest) crc = crc32c_update(crc, static_cast<uint8_t*>(segs[k].addr) + o, l);
            left -= l;
          }
          if (pad_len(len)) {
            batch_iov_[batch_n_++] = {const_cast<uint8_t*>(kPad), pad_len(len)};
            if (p_.data_digest) crc = crc32c_update(crc, kPad, pad_len(len));
          }
          if (p_.data_digest) {
            put_digest(reinterpret_cast<uint8_t*>(&ddig_[nh - 1]), crc32c_final(crc));
            batch_iov_[batch_n_++] = {&ddig_[nh - 1], 4};
          }
          c->in_batch = true;
          c->in_off += len;
          ++c->in_sn;
          ctr_->add(ctr_->bytes_out, len);
          if (last && f.with_status) c->rsp_sent = true;
        }
        if (!stop && !c->rsp_sent) {
          if (nh >= kBatchHdr || batch_n_ + 4 > kBatchIov) {
            stop = true;
          } else {
            Bhs h;
            uint32_t dl = t.sense_len ? 2u + t.sense_len : 0;
            build_scsi_response(h, c->itt, ScsiResponse::completed, t.status, seq(true), c->in_sn, res, dl);
            uint8_t* b = hdr(h);
            if (dl) {
              // Sense goes right behind the header in the same buffer.
              uint8_t* d = b + batch_iov_[batch_n_ - 1].iov_len;
              put_sense_length(d, t.sense_len);
              std::memcpy(d + 2, t.sense, t.sense_len);
              std::memset(d + dl, 0, pad_len(dl));
              size_t n = padded(dl);
              if (p_.data_digest) {
                put_digest(d + n, crc32c(d, n));
                n += 4;
              }
              batch_iov_[batch_n_ - 1].iov_len += n;
            }
            ++nh;
            c->in_batch = true;
            c->rsp_sent = true;
          }
        }
      }
      if (!stop && c->st != Cmd::St::send) {
        // R2Ts out; the command waits for Data-Out off the queue.
      } else if (!stop && !c->rsp_sent) {
        stop = true;
      }
    }
    if (stop) break;
    q_head_ = c->next_q;
    if (!q_head_) q_tail_ = nullptr;
    c->in_q = false;
    c->next_q = nullptr;
    if (c->in_batch) {
      batch_done_[batch_ndone_++] = c;
    } else if (c->st == Cmd::St::aborted || c->rsp_sent) {
      finish_cmd(c);
    }
  }
}

bool Conn::flush() {
  if (fd_ < 0) return false;
  for (;;) {
    if (batch_i_ == batch_n_) {
      // The last batch is out: its commands are done with their buffers.
      for (unsigned i = 0; i < batch_ndone_; ++i) {
        Cmd* c = batch_done_[i];
        c->in_batch = false;
        if (c->st == Cmd::St::aborted || c->rsp_sent) finish_cmd(c);
      }
      batch_ndone_ = 0;
      batch_n_ = batch_i_ = 0;
      build_batch();
      if (batch_n_ == 0) return !closing_;
    }
    struct msghdr m = {};
    m.msg_iov = batch_iov_ + batch_i_;
    m.msg_iovlen = std::min<size_t>(batch_n_ - batch_i_, IOV_MAX);
    ssize_t r = ::sendmsg(fd_, &m, MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      if (errno == EINTR) continue;
      return false;
    }
    size_t n = size_t(r);
    while (n > 0) {
      struct iovec& v = batch_iov_[batch_i_];
      size_t t = std::min(n, v.iov_len);
      v.iov_base = static_cast<uint8_t*>(v.iov_base) + t;
      v.iov_len -= t;
      n -= t;
      if (v.iov_len == 0) ++batch_i_;
    }
    while (batch_i_ < batch_n_ && batch_iov_[batch_i_].iov_len == 0) ++batch_i_;
  }
}

bool Conn::tick(uint64_t now_ms) {
  if (fd_ < 0 || !full_feature_ || p_.discovery) return true;
  if (last_rx_ms_ == 0) last_rx_ms_ = now_ms;
  if (ping_out_) {
    if (lim_.nop_timeout_s && now_ms - ping_sent_ms_ >= uint64_t(lim_.nop_timeout_s) * 1000) {
      if (last_rx_ms_ <= ping_sent_ms_) return false;  // silent since the ping
      ping_out_ = false;
    }
    return true;
  }
  if (lim_.nop_interval_s && now_ms - last_rx_ms_ >= uint64_t(lim_.nop_interval_s) * 1000) {
    Bhs r;
    ping_ttt_ = 0x80000000u | (next_ttt_++ & 0x7fffffffu);
    build_nop_in(r, 0, kReservedTag, ping_ttt_, seq(false), 0);
    push_ctl(r, nullptr, 0);
    ping_out_ = true;
    ping_sent_ms_ = now_ms;
  }
  return true;
}

void Conn::abort_cmd(Cmd* c) {
  if (c->st == Cmd::St::free || c->st == Cmd::St::aborted) return;
  c->st = Cmd::St::aborted;
  set_awaits_data(c, false);  // its buffer goes once the send side lets go
  ctr_->add(ctr_->aborted);
  if (c->mem_wait && host_->pool()->cancel(&c->waiter)) {
    c->mem_wait = false;
    --mem_waiters_;
    if (rx_cmd_ == c && mem_blocked_) {
      mem_blocked_ = false;
      rx_drop_ = true;
      reader_.data_discard();
    }
  }
  if (c->in_q) {
    // Unlink; build_batch would skip it anyway, but the slot can go now.
    Cmd** pp = &q_head_;
    Cmd* prev = nullptr;
    while (*pp && *pp != c) {
      prev = *pp;
      pp = &(*pp)->next_q;
    }
    if (*pp) {
      *pp = c->next_q;
      if (q_tail_ == c) q_tail_ = prev;
      c->in_q = false;
      c->next_q = nullptr;
    }
  }
  finish_cmd(c);
}

void Conn::close() {
  if (fd_ < 0) return;
  ::close(fd_);
  fd_ = -1;
  closing_ = true;
  for (unsigned i = 0; i < batch_ndone_; ++i) batch_done_[i]->in_batch = false;
  batch_ndone_ = 0;
  batch_n_ = batch_i_ = 0;
  each_cmd([this](Cmd& c) {
    if (c.st == Cmd::St::free) return;
    c.in_batch = false;
    abort_cmd(&c);
  });
  q_head_ = q_tail_ = nullptr;
  if (registered_) {
    host_->session_down(this);
    registered_ = false;
  }
}

}  // namespace sgv::iscsi
