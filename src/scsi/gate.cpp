// scsi/gate.cpp - WriteGate: COMPARE AND WRITE against every other write of
// its LUN, without any thread blocking (see WriteGate in core.hpp).
//
// Wakeups are exactly once: the only ways out of the park list and out of
// `draining` are taken under WriteGate::mu, and whoever takes a task posts
// its resume after unlocking. A write that backs off the fast path, or
// finishes, while the gate is closed rechecks under mu whether it was the
// last one in flight the draining CAW waits for.
//
// Parked work goes on in arrival order: a releasing CAW hands the gate on
// itself instead of opening it to a race. The writes at the head of the
// park list are counted in flight on their behalf (admitted) and the first
// CAW behind them becomes the draining one, so a CAW arriving later (or a
// write arriving later) queues behind both; with no CAW parked the gate
// opens with the admitted writes already counted, and a new CAW drains
// them first. Under a steady stream of CAWs (ATS heartbeats from many
// hosts) nothing parked is overtaken, so nothing starves.
#include "scsi/core.hpp"

namespace sgv::scsi {
namespace {

// This thread's counter slot; threads are spread round robin, so a handful
// of reactor threads each get their own cache line.
unsigned my_slot() {
  static std::atomic<unsigned> next{0};
  static thread_local unsigned slot = next.fetch_add(1, std::memory_order_relaxed) % WriteGate::kSlots;
  return slot;
}

// Writes counted in flight. Only meaningful with the gate closed (under mu):
// then no write can newly count itself for good, so a slot read as 0 stays
// without real writes and a zero sum means none are in flight. A write that
// counts itself, sees the gate closed and backs off may be seen or not.
int64_t in_flight(const WriteGate& g) {
  int64_t sum = 0;
  for (const auto& s : g.slots) sum += s.n.load(std::memory_order_seq_cst);
  return sum;
}

// t is a write counted in flight in `slot`; finish() uncounts it there.
void mark_counted(Task& t, unsigned slot) {
  Scratch& s = scratch(t);
  s.gate = kGateCounted;
  s.gate_slot = uint8_t(slot);
}

void park(WriteGate& g, Task& t, GateState as) {
  Scratch& s = scratch(t);
  s.gate = as;
  s.gate_next = nullptr;
  if (g.park_tail)
    scratch(*g.park_tail).gate_next = &t;
  else
    g.park_head = &t;
  g.park_tail = &t;
}

// Under mu: the draining CAW, now holding the gate, if nothing is in flight.
Task* take_drained(WriteGate& g) {
  if (!g.draining || in_flight(g) != 0) return nullptr;
  Task* t = g.draining;
  g.draining = nullptr;
  scratch(*t).gate = kGateOwner;
  return t;
}

void wake(Task& t) {
  if (t.post_resume)
    t.post_resume(&t);
  else
    resume_task(*lun_of(t)->im, t);
}

}  // namespace

bool gate_enter(Task& t) {
  WriteGate& g = lun_of(t)->gate;
  Scratch& s = scratch(t);
  // Resumed after a CAW's release admitted it: already counted in its turn.
  if (s.gate == kGateCounted) [[unlikely]] return true;
  unsigned slot = my_slot();
  g.slots[slot].n.fetch_add(1, std::memory_order_seq_cst);
  if (!g.closed.load(std::memory_order_seq_cst)) [[likely]] {
    mark_counted(t, slot);
    return true;
  }
  g.slots[slot].n.fetch_sub(1, std::memory_order_seq_cst);
  Task* drained;
  {
    std::lock_guard<std::mutex> lk(g.mu);
    if (!g.closed.load(std::memory_order_relaxed)) {
      // Opened since: count ourselves for good. Gates close under mu, so the
      // next CAW's sum sees this increment.
      g.slots[slot].n.fetch_add(1, std::memory_order_seq_cst);
      mark_counted(t, slot);
      return true;
    }
    park(g, t, kGateParked);
    drained = take_drained(g);  // our back-off may have been what it waited for
  }
  // t may already be resumed elsewhere: not touched again.
  if (drained) wake(*drained);
  return false;
}

void gate_exit(Task& t) {
  WriteGate& g = lun_of(t)->gate;
  Scratch& s = scratch(t);
  s.gate = kGateNone;
  g.slots[s.gate_slot].n.fetch_sub(1, std::memory_order_seq_cst);
  if (!g.closed.load(std::memory_order_seq_cst)) [[likely]] return;
  Task* drained;
  {
    std::lock_guard<std::mutex> lk(g.mu);
    drained = take_drained(g);
  }
  if (drained) wake(*drained);
}

bool caw_acquire(Task& t) {
  WriteGate& g = lun_of(t)->gate;
  std::lock_guard<std::mutex> lk(g.mu);
  if (g.closed.load(std::memory_order_relaxed)) {
    park(g, t, kGateParkedCaw);  // another CAW holds it: resumed holding it, in turn
    return false;
  }
  g.closed.store(true, std::memory_order_seq_cst);
  if (in_flight(g) == 0) {
    scratch(t).gate = kGateOwner;
    return true;
  }
  g.draining = &t;  // the last write's finish() resumes us holding the gate
  return false;
}

void caw_release(Task& t) {
  WriteGate& g = lun_of(t)->gate;
  scratch(t).gate = kGateNone;
  Task* admitted = nullptr;  // the writes parked ahead of the next CAW, in order
  Task* drained = nullptr;
  {
    std::lock_guard<std::mutex> lk(g.mu);
    unsigned slot = my_slot();
    Task* last = nullptr;
    Task* p = g.park_head;
    for (; p && scratch(*p).gate == kGateParked; p = scratch(*p).gate_next) {
      // Counted under mu with the gate closed: the next CAW's sum sees it.
      g.slots[slot].n.fetch_add(1, std::memory_order_seq_cst);
      mark_counted(*p, slot);
      if (!last) admitted = p;
      last = p;
    }
    if (last) scratch(*last).gate_next = nullptr;
    if (p) {
      // The oldest parked CAW: the gate stays closed for it, and it runs
      // once the writes admitted ahead of it are done.
      g.park_head = scratch(*p).gate_next;
      if (!g.park_head) g.park_tail = nullptr;
      g.draining = p;
      drained = take_drained(g);
    } else {
      g.park_head = g.park_tail = nullptr;
      g.closed.store(false, std::memory_order_seq_cst);
    }
  }
  while (admitted) {
    Task* next = scratch(*admitted).gate_next;  // read first: once woken, it is not ours
    wake(*admitted);
    admitted = next;
  }
  if (drained) wake(*drained);
}

void resume_task(Target::Impl& im, Task& t) {
  unsigned n;
  op_table(&n)[t.op_index].exec(im, t);
}

}  // namespace sgv::scsi
