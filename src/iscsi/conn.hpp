// iscsi/conn.hpp - one iSCSI connection (and, with MaxConnections=1, its
// session): login, full feature phase, the command data path and the send
// queue. Driven by its reactor thread only: on_readable() when the socket
// has bytes, flush() when it can take more, tick() once a second.
//
// Command state lives in the connection's sgv::TagSet (libsgv's command
// slots, one allocation from the shared slot pool): each slot's private area
// holds a Cmd (the scsi::Task and the transport state), its sense buffer is
// the slot's. Commands in the CmdSN window take normal tags, immediate
// commands (outside the window) the reserved ones; nothing is allocated per
// command in steady state. Buffers come from the
// SGV pool charged to the session budget; when the budget refuses, the
// connection stops reading the socket (TCP pushes back on the initiator)
// and stops opening the CmdSN window until the pool's waiter grants memory
// -- unless one of its commands holds a buffer while it waits for Data-Out,
// which would then sit unread behind the blocked header: the new command
// is answered TASK SET FULL instead (see hdr_scsi_cmd).
//
// Lifetime: after close() the socket is gone but the object lives until
// idle() (no backend I/O in flight): tasks in the backend complete into a
// dead connection and only then give back their slot and vector.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "iscsi/discovery.hpp"
#include "iscsi/login.hpp"
#include "iscsi/pdu.hpp"
#include "iscsi/reader.hpp"
#include "iscsi/session.hpp"
#include "scsi/task.hpp"
#include "sgv/cache.hpp"
#include "sgv/slots.hpp"

namespace sgv::iscsi {

class Conn;
struct ConnLogin;

// The Host as login's and discovery's TargetDirectory; the session a login
// creates belongs to the connection.
class HostDirectory final : public TargetDirectory {
 public:
  HostDirectory(Host* host, Conn* conn) : host_(host), conn_(conn) {}
  bool exists(std::string_view t) const override { return host_->target_exists(t); }
  bool allowed(std::string_view t, std::string_view ini) const override { return host_->target_allowed(t, ini); }
  std::string_view alias(std::string_view t) const override { return host_->target_alias(t); }
  size_t count() const override { return host_->target_count(); }
  TargetEntry entry(size_t i) const override { return host_->target_entry(i); }
  bool chap(std::string_view t, ChapCredentials& out) const override { return host_->target_chap(t, out); }
  uint16_t create_session(const SessionParams& p) override;

 private:
  Host* host_;
  Conn* conn_;
};

constexpr unsigned kMaxR2tPerCmd = 8;  // caps MaxOutstandingR2T

struct R2tEntry {
  uint32_t offset = 0, len = 0, got = 0;
  uint32_t next_data_sn = 0;
  uint32_t r2t_sn = 0;
  bool live = false, sent = false;
};

// A command: the private area of one TagSet slot (built once per slot by
// the tag set's init_slot). The core's done() finds it through task.ctx.
struct Cmd {
  scsi::Task task;  // task.sense is the slot's sense buffer
  Slot* slot = nullptr;
  enum class St : uint8_t { free, recv, wait_mem, exec, send, aborted } st = St::free;
  Conn* conn = nullptr;
  uint16_t idx = 0;           // the slot's tag (R2T TTTs carry it)
  uint32_t itt = 0, cmd_sn = 0, edtl = 0;
  uint32_t xfer = 0;          // bytes to move: min(edtl, data_len)
  Vec* vec = nullptr;         // data buffer (nullptr: none or backend's own)
  size_t alloc_len = 0;       // bytes of vec
  // Write: data arrival.
  uint32_t received = 0;      // bytes landed (immediate + unsolicited + solicited)
  uint32_t unsol_end = 0;     // unsolicited data covers [0, unsol_end)
  uint32_t unsol_got = 0;
  uint32_t unsol_data_sn = 0;
  uint32_t r2t_next = 0;      // next offset to solicit
  uint32_t r2t_sn = 0;
  R2tEntry r2t[kMaxR2tPerCmd];
  // Read / response: send progress.
  uint32_t in_off = 0, in_sn = 0, in_len = 0;
  bool in_q = false;          // on the send queue
  bool in_batch = false;      // the batch being written points into it
  bool rsp_sent = false;
  bool in_backend = false;    // execute() called, done() not yet
  bool mem_wait = false;      // queued on the pool's waiter
  bool tmf_waiting = false;   // a TMF waits for this task to finish
  bool crc_error = false;     // a Data-Out failed its data digest: never executes
  bool awaits_data = false;   // holds vec until Data-Out comes (counted in data_holders_)
  Cmd* next_q = nullptr;      // send queue link
  Waiter waiter;              // pool waiter (backpressure)
};

class Conn {
 public:
  Conn(int fd, Host* host, Counters* ctr, std::string peer = {});
  ~Conn();  // defined where ConnLogin is complete
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  int fd() const { return fd_; }
  // Reads and handles what the socket holds (bounded per call for fairness).
  // false: the connection must be closed.
  bool on_readable();
  // Sends what is queued; false: the connection must be closed.
  bool flush();
  bool want_write() const { return batch_n_ > batch_i_ || q_head_ || !ctl_fill_.empty(); }
  // False while reading is paused (waiting for memory, or closing).
  bool want_read() const { return !closing_ && !mem_blocked_; }
  // Header bytes already read from the socket wait in carry_: call
  // on_readable() again even if the socket shows nothing new.
  bool rx_buffered() const { return carry_off_ < carry_len_; }
  // Once a second: NOP-In pings and their timeout. false: close.
  bool tick(uint64_t now_ms);
  // Memory granted by the pool's waiter (delivered on this reactor thread).
  void on_mem_granted(Cmd* c, Vec* v, int status);
  // Drops the connection: closes the socket, aborts every task; tasks in
  // the backend finish later. Safe to call twice.
  void close();
  bool closed() const { return fd_ < 0; }
  // No backend I/O and no memory waiter outstanding: may be deleted.
  bool idle() const { return inflight_ == 0 && mem_waiters_ == 0; }
  // Asked to finish after its response queue drains (logout).
  bool closing() const { return closing_; }
  bool logged_in() const { return full_feature_; }

  // Cross-thread hook for pool waiter grants: set by the reactor; called from
  // any thread with (arg, conn, cmd, vec, status); must hand them to this
  // connection's reactor which then calls on_mem_granted().
  void (*post_grant)(void* arg, Conn* c, Cmd* cmd, Vec* v, int status) = nullptr;
  void* post_arg = nullptr;
  // Same for a task the SCSI core parked (scsi::Task::post_resume): called
  // from any thread; the reactor then calls on_resume() on this one. Unset
  // (no reactor, one thread): the core's resume runs inline.
  void (*post_resume)(void* arg, Conn* c, Cmd* cmd) = nullptr;
  void on_resume(Cmd* c);

  // For tests: the negotiated parameters.
  const Params& params() const { return p_; }

 private:
  friend struct ConnLogin;
  friend class HostDirectory;
  // --- receive side
  bool on_header();
  bool on_pdu();
  bool hdr_scsi_cmd();
  bool hdr_data_out();
  bool pdu_scsi_cmd();
  bool pdu_data_out();
  bool pdu_nop_out();
  bool pdu_login();
  bool pdu_text();
  bool pdu_logout();
  bool pdu_tmf();
  // --- login (conn_login.cpp): the Login state machine drives it
  uint16_t create_session(const SessionParams& s);
  void enter_full_feature();
  // --- command flow
  Cmd* take_slot(bool immediate);
  void free_slot(Cmd* c);
  int get_buffer(Cmd* c, size_t bytes, bool wait);
  void set_awaits_data(Cmd* c, bool on);
  Budget* charge_budget(uint64_t lun);
  void fit_task_segs(Cmd* c);
  void start_exec(Cmd* c);
  static void task_done(scsi::Task* t);
  static void task_post_resume(scsi::Task* t);
  void complete_cmd(Cmd* c);
  void queue_r2ts(Cmd* c);
  void respond_check(Cmd* c, uint8_t key, uint8_t asc, uint8_t ascq);
  void finish_cmd(Cmd* c);
  Cmd* find_itt(uint32_t itt);
  void abort_cmd(Cmd* c);
  // --- send side
  void enqueue(Cmd* c);
  void push_ctl(const Bhs& h, const void* data, uint32_t len);
  void reject(RejectReason why, const uint8_t* bhs);
  SeqNums seq(bool advance_stat);
  void build_batch();
  uint32_t window_max();
  [[gnu::noinline]] void slow_tmf_check();

  int fd_;
  Host* host_;
  Counters* ctr_;
  std::string peer_;
  Reader reader_;
  Params p_;
  const Limits lim_;
  bool full_feature_ = false;
  bool closing_ = false;       // logout answered or fatal reject queued: close when sent
  bool mem_blocked_ = false;   // a command waits for memory: socket reads paused
  unsigned inflight_ = 0;      // commands in the backend
  unsigned mem_waiters_ = 0;   // commands queued on the pool's waiter
  unsigned data_holders_ = 0;  // commands holding a buffer while awaiting Data-Out
  // Session state (single connection per session): what login agreed.
  SessionParams sess_;
  HostDirectory dir_;
  scsi::Target* target_ = nullptr;
  scsi::Nexus* nexus_ = nullptr;
  std::unique_ptr<Budget> budget_;  // the session's total (a root when the Host has LUN budgets)
  // Per LUN: the session's child of that LUN's budget (also charging budget_).
  std::vector<std::pair<uint64_t, std::unique_ptr<Budget>>> lun_budgets_;
  uint32_t exp_cmd_sn_ = 0, max_cmd_sn_ = 0, stat_sn_ = 0;
  bool registered_ = false;
  // Login state.
  struct LoginDel {
    void operator()(ConnLogin* l) const;
  };
  std::unique_ptr<ConnLogin, LoginDel> login_;
  // Full-feature Text (SendTargets), made at the first Text Request.
  std::unique_ptr<TextExchange> text_;
  // Command slots: queue_depth normal tags for windowed commands, reserved
  // tags for immediate ones. nullptr only if the tag set could not be made
  // (every command then answers as if the slots were exhausted).
  std::unique_ptr<TagSet> tags_;
  unsigned active_ = 0;        // slots taken (the window's view; exact on this thread)
  unsigned nslots() const { return tags_ ? tags_->total() : 0; }
  Cmd& slot_cmd(unsigned tag) const { return *tags_->slot(tag)->priv<Cmd>(); }
  template <class F>
  void each_cmd(F f) const {
    for (unsigned i = 0, n = nslots(); i < n; ++i) f(slot_cmd(i));
  }
  // Receive context of the PDU in progress.
  Cmd* rx_cmd_ = nullptr;
  int rx_r2t_ = -1;            // r2t entry a Data-Out belongs to; -1 unsolicited
  bool rx_drop_ = false;       // PDU being discarded
  // Send queue of commands with something to send, FIFO.
  Cmd* q_head_ = nullptr;
  Cmd* q_tail_ = nullptr;
  // Control PDUs (NOP-In, Reject, Text, Login, Logout, TMF responses) are
  // serialised whole into ctl_fill_; a batch takes them over by swap so
  // their bytes stay put while a partial writev resumes.
  std::vector<uint8_t> ctl_fill_, ctl_send_;
  // The batch being written: iovecs, the headers they point at, and the
  // commands whose last byte is in it (finished when it is all sent).
  static constexpr unsigned kBatchIov = 256;
  static constexpr unsigned kBatchHdr = 32;
  struct HdrBuf {
    uint8_t b[kBhsLen + 4 + 2 + scsi::kSenseMax + 2 + 4 + 4];
  };
  struct iovec batch_iov_[kBatchIov];
  unsigned batch_n_ = 0, batch_i_ = 0;
  HdrBuf hdrs_[kBatchHdr];
  uint32_t ddig_[kBatchHdr];
  Cmd* batch_done_[kBatchHdr];
  unsigned batch_ndone_ = 0;
  static const uint8_t kPad[4];
  // Header bytes read ahead of the reader (see on_readable): a peeked run of
  // header-only PDUs, or the BHS that followed a data segment.
  uint8_t carry_[32 * kBhsLen];
  uint32_t carry_off_ = 0, carry_len_ = 0;
  // NOP ping state.
  uint64_t last_rx_ms_ = 0, ping_sent_ms_ = 0;
  uint32_t ping_ttt_ = 0;
  bool ping_out_ = false;
  uint32_t next_ttt_ = 1;
  // TMF waiting for affected tasks to drain.
  bool tmf_pending_ = false;
  uint32_t tmf_itt_ = 0;
  uint8_t tmf_func_ = 0;
  uint64_t tmf_lun_ = 0;
  unsigned tmf_wait_ = 0;
};


}  // namespace sgv::iscsi
