// scsi/gate.cpp - WriteGate: COMPARE AND WRITE against every other write of
// its LUN, without any thread blocking (see WriteGate in core.hpp).
//
// Wakeups are exactly once: the only ways out of the park list and out of
// `draining` are taken under WriteGate::mu, and whoever takes a task posts
// its resume after unlocking. A write that backs off the fast path, or
// finishes, while the gate is closed rechecks under mu whether it was the
// last one in flight the draining CAW waits for.
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

void park(WriteGate& g, Task& t) {
  Scratch& s = scratch(t);
  s.gate = kGateParked;
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
  unsigned slot = my_slot();
  g.slots[slot].n.fetch_add(1, std::memory_order_seq_cst);
  if (!g.closed.load(std::memory_order_seq_cst)) [[likely]] {
    s.gate = kGateCounted;
    s.gate_slot = uint8_t(slot);
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
      s.gate = kGateCounted;
      s.gate_slot = uint8_t(slot);
      return true;
    }
    park(g, t);
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
    park(g, t);  // another CAW holds it: try again when it opens
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
  Task* list;
  {
    std::lock_guard<std::mutex> lk(g.mu);
    g.closed.store(false, std::memory_order_seq_cst);
    list = g.park_head;
    g.park_head = g.park_tail = nullptr;
  }
  // Everything parked tries again: writes go through unless another CAW
  // closed the gate meanwhile; the CAWs race for it and the losers park.
  while (list) {
    Task* next = scratch(*list).gate_next;  // read first: once woken, list is not ours
    wake(*list);
    list = next;
  }
}

void resume_task(Target::Impl& im, Task& t) {
  unsigned n;
  op_table(&n)[t.op_index].exec(im, t);
}

}  // namespace sgv::scsi
