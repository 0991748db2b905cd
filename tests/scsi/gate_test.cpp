// tests/scsi/gate_test.cpp - the WriteGate (gate.cpp) driven directly on one
// thread: which parked tasks a COMPARE AND WRITE's release wakes, in which
// order, and that nothing parked is overtaken by later arrivals (a steady
// stream of CAWs -- VMware ATS heartbeats from many hosts -- must not starve
// a CAW or the writes parked behind one). Resumes are recorded, not run, so
// every interleaving here is chosen by the test.
#include <gtest/gtest.h>

#include <vector>

#include "scsi/core.hpp"

namespace sgv::scsi {
namespace {

class GateTest : public ::testing::Test {
 protected:
  // Task i on the LUN, its resumes recorded in woken_.
  Task& task(int i) {
    Task& t = tasks_[i];
    t.lun_obj = &lun_;
    t.ctx = this;
    t.post_resume = [](Task* k) { static_cast<GateTest*>(k->ctx)->woken_.push_back(k); };
    return t;
  }
  // The resumes posted since the last call, in order.
  std::vector<Task*> woken() { return std::exchange(woken_, {}); }
  // What finish() does for a write.
  void finish_write(Task& t) {
    ASSERT_EQ(scratch(t).gate, kGateCounted);
    gate_exit(t);
  }
  bool owns(Task& t) { return scratch(t).gate == kGateOwner; }
  int64_t in_flight() {
    int64_t n = 0;
    for (const auto& s : lun_.gate.slots) n += s.n.load();
    return n;
  }

  Lun lun_;
  Task tasks_[8];
  std::vector<Task*> woken_;
};

// C1 holds the gate; W1, C2, W2 park in that order; C3 comes after C1's
// release. C2 must run before C3, W1 before C2, W2 after C2 and before C3.
TEST_F(GateTest, ParkedWorkResumesInArrivalOrder) {
  Task &c1 = task(0), &w1 = task(1), &c2 = task(2), &w2 = task(3), &c3 = task(4), &w3 = task(5);
  ASSERT_TRUE(caw_acquire(c1));
  EXPECT_FALSE(gate_enter(w1));
  EXPECT_FALSE(caw_acquire(c2));
  EXPECT_FALSE(gate_enter(w2));
  EXPECT_TRUE(woken().empty());

  caw_release(c1);
  // W1 goes (counted for it), C2 is next in line and waits for W1; W2 stays
  // parked behind C2.
  EXPECT_EQ(woken(), (std::vector<Task*>{&w1}));
  EXPECT_EQ(in_flight(), 1);
  // A CAW arriving now queues behind C2 instead of taking the gate.
  EXPECT_FALSE(caw_acquire(c3));
  EXPECT_TRUE(gate_enter(w1));  // W1's exec runs again: already counted
  EXPECT_EQ(in_flight(), 1);
  finish_write(w1);
  EXPECT_EQ(woken(), (std::vector<Task*>{&c2}));  // resumed holding the gate
  EXPECT_TRUE(owns(c2));
  EXPECT_FALSE(owns(c3));

  EXPECT_FALSE(gate_enter(w3));  // parks behind C3
  caw_release(c2);
  EXPECT_EQ(woken(), (std::vector<Task*>{&w2}));
  EXPECT_TRUE(gate_enter(w2));
  finish_write(w2);
  EXPECT_EQ(woken(), (std::vector<Task*>{&c3}));
  EXPECT_TRUE(owns(c3));

  caw_release(c3);  // nothing but a write parked: the gate opens
  EXPECT_EQ(woken(), (std::vector<Task*>{&w3}));
  EXPECT_FALSE(lun_.gate.closed.load());
  EXPECT_TRUE(gate_enter(w3));
  finish_write(w3);
  EXPECT_EQ(in_flight(), 0);
}

// A write woken by a release must not be parked again by a CAW that arrives
// before the write's exec runs again: the CAW waits for it instead.
TEST_F(GateTest, WokenWriteIsNotOvertakenByANewCaw) {
  Task &c1 = task(0), &w1 = task(1), &c2 = task(2);
  ASSERT_TRUE(caw_acquire(c1));
  EXPECT_FALSE(gate_enter(w1));
  caw_release(c1);
  EXPECT_EQ(woken(), (std::vector<Task*>{&w1}));
  EXPECT_FALSE(caw_acquire(c2));  // W1 is in flight: C2 drains it
  EXPECT_TRUE(woken().empty());
  EXPECT_TRUE(gate_enter(w1));
  finish_write(w1);
  EXPECT_EQ(woken(), (std::vector<Task*>{&c2}));
  EXPECT_TRUE(owns(c2));
  caw_release(c2);
  EXPECT_TRUE(woken().empty());
  EXPECT_EQ(in_flight(), 0);
}

// Many CAWs queued behind one: each release hands the gate to exactly the
// next, oldest first, and a write parked in the middle goes in its turn.
TEST_F(GateTest, QueuedCawsTakeTheGateOldestFirst) {
  Task &c0 = task(0), &w = task(7);
  ASSERT_TRUE(caw_acquire(c0));
  for (int i = 1; i <= 3; ++i) EXPECT_FALSE(caw_acquire(task(i)));
  EXPECT_FALSE(gate_enter(w));
  for (int i = 4; i <= 6; ++i) EXPECT_FALSE(caw_acquire(task(i)));
  Task* holder = &c0;
  for (int i = 1; i <= 6; ++i) {
    caw_release(*holder);
    if (i == 4) {  // the write parked after C3, before C4
      EXPECT_EQ(woken(), (std::vector<Task*>{&w}));
      EXPECT_TRUE(gate_enter(w));
      finish_write(w);
    }
    EXPECT_EQ(woken(), (std::vector<Task*>{&tasks_[i]})) << i;
    EXPECT_TRUE(owns(tasks_[i])) << i;
    holder = &tasks_[i];
  }
  caw_release(*holder);
  EXPECT_TRUE(woken().empty());
  EXPECT_FALSE(lun_.gate.closed.load());
  EXPECT_EQ(in_flight(), 0);
}

}  // namespace
}  // namespace sgv::scsi
