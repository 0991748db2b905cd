// tests/scsi/pr_test.cpp - persistent reservations (PERSISTENT RESERVE IN /
// OUT) across several I_T nexuses of one target: registration and keys,
// the six reservation types and who may read or write under each, RELEASE,
// CLEAR and PREEMPT with the unit attentions they owe the other nexuses,
// and the parameter checks; and RESERVE/RELEASE(6/10).
#include <gtest/gtest.h>

#include <cstring>

#include "scsi/endian.hpp"
#include "scsi_helper.hpp"

using sgv::be32;
using sgv::be64;
using sgv::test::Harness;
using sgv::test::Result;

namespace {

constexpr uint8_t kReg = 0, kReserve = 1, kRelease = 2, kClear = 3, kPreempt = 4, kRegIgnore = 6;
constexpr uint8_t kWE = 1, kEA = 3, kWERO = 5, kEARO = 6, kEAAR = 8;
constexpr uint8_t kConflict = 0x18;

Result prout(Harness& h, sgv::scsi::Nexus* n, uint8_t sa, uint8_t type, uint64_t key, uint64_t sark,
             uint8_t flags = 0, uint32_t len = 24) {
  std::vector<uint8_t> p(24, 0);
  sgv::put64(p.data(), key);
  sgv::put64(p.data() + 8, sark);
  p[20] = flags;
  p.resize(len, 0);
  std::vector<uint8_t> c = {0x5f, sa, type, 0, 0, uint8_t(len >> 24), uint8_t(len >> 16), uint8_t(len >> 8),
                            uint8_t(len), 0};
  return h.run_cdb(c.data(), 10, p, -1, 0, n);
}

Result prin(Harness& h, sgv::scsi::Nexus* n, uint8_t sa, uint16_t alloc = 4096) {
  return h.run({0x5e, sa, 0, 0, 0, 0, 0, uint8_t(alloc >> 8), uint8_t(alloc), 0}, {}, -1, 0, n);
}

std::vector<uint64_t> keys(Harness& h, sgv::scsi::Nexus* n) {
  Result r = prin(h, n, 0);
  EXPECT_TRUE(r.good());
  std::vector<uint64_t> k;
  for (uint32_t off = 8; off + 8 <= 8 + be32(r.data.data() + 4); off += 8) k.push_back(be64(r.data.data() + off));
  return k;
}

uint32_t generation(Harness& h, sgv::scsi::Nexus* n) { return be32(prin(h, n, 0).data.data()); }

// {reserved, key, type} from READ RESERVATION.
struct Resv {
  bool reserved;
  uint64_t key;
  uint8_t type;
};
Resv reservation(Harness& h, sgv::scsi::Nexus* n) {
  Result r = prin(h, n, 1);
  EXPECT_TRUE(r.good());
  if (be32(r.data.data() + 4) == 0) return {false, 0, 0};
  return {true, be64(r.data.data() + 8), uint8_t(r.data[21] & 0x0f)};
}

Result read1(Harness& h, sgv::scsi::Nexus* n) { return h.run({0x28, 0, 0, 0, 0, 1, 0, 0, 1, 0}, {}, -1, 0, n); }
Result write1(Harness& h, sgv::scsi::Nexus* n) {
  return h.run({0x2a, 0, 0, 0, 0, 1, 0, 0, 1, 0}, std::vector<uint8_t>(512, 0x5a), -1, 0, n);
}
Result tur(Harness& h, sgv::scsi::Nexus* n) { return h.run({0, 0, 0, 0, 0, 0}, {}, -1, 0, n); }

struct Three {
  Harness h;
  sgv::scsi::Nexus* a;
  sgv::scsi::Nexus* b;
  sgv::scsi::Nexus* c;
  Three() {
    a = h.nexus();
    b = h.target().open_nexus("iqn.b,i,0x000000000001");
    c = h.target().open_nexus("iqn.c,i,0x000000000001");
    h.clear_ua(a);
    h.clear_ua(b);
    h.clear_ua(c);
  }
};

void expect_ua(Harness& h, sgv::scsi::Nexus* n, uint8_t asc, uint8_t ascq) {
  Result r = tur(h, n);
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.key, 6);
  EXPECT_EQ(r.asc, asc);
  EXPECT_EQ(r.ascq, ascq);
  EXPECT_TRUE(tur(h, n).good());  // reported once
}

TEST(PersistentReservation, RegisterChecksTheKeyAndCountsGenerations) {
  Three t;
  EXPECT_EQ(generation(t.h, t.a), 0u);
  EXPECT_TRUE(prout(t.h, t.a, kReg, 0, 0, 0xa1).good());
  EXPECT_EQ(generation(t.h, t.a), 1u);
  // Unregistered, REGISTER must carry key 0.
  EXPECT_EQ(prout(t.h, t.b, kReg, 0, 7, 0xb1).status, kConflict);
  // Registered, REGISTER must carry the registered key; IGNORE does not.
  EXPECT_EQ(prout(t.h, t.a, kReg, 0, 0xbad, 0xa2).status, kConflict);
  EXPECT_TRUE(prout(t.h, t.b, kRegIgnore, 0, 0xbad, 0xb1).good());
  EXPECT_TRUE(prout(t.h, t.a, kReg, 0, 0xa1, 0xa2).good());  // a new key
  EXPECT_EQ(keys(t.h, t.c), (std::vector<uint64_t>{0xa2, 0xb1}));
  EXPECT_EQ(generation(t.h, t.c), 3u);
  // Anything but REGISTER from an unregistered nexus is a conflict.
  EXPECT_EQ(prout(t.h, t.c, kReserve, kEA, 0, 0).status, kConflict);
}

TEST(PersistentReservation, ExclusiveAccessShutsOutEveryOtherNexus) {
  Three t;
  ASSERT_TRUE(prout(t.h, t.a, kReg, 0, 0, 0xa1).good());
  ASSERT_TRUE(prout(t.h, t.b, kReg, 0, 0, 0xb1).good());
  ASSERT_TRUE(prout(t.h, t.a, kReserve, kEA, 0xa1, 0).good());
  Resv r = reservation(t.h, t.c);
  EXPECT_TRUE(r.reserved);
  EXPECT_EQ(r.key, 0xa1u);
  EXPECT_EQ(r.type, kEA);
  EXPECT_TRUE(read1(t.h, t.a).good());
  EXPECT_TRUE(write1(t.h, t.a).good());
  for (auto* n : {t.b, t.c}) {  // registered or not
    EXPECT_EQ(read1(t.h, n).status, kConflict);
    EXPECT_EQ(write1(t.h, n).status, kConflict);
    EXPECT_TRUE(tur(t.h, n).good());
    EXPECT_TRUE(t.h.run({0x12, 0, 0, 0, 36, 0}, {}, -1, 0, n).good());  // INQUIRY
    EXPECT_TRUE(t.h.run({0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {}, -1, 0, n).good());  // READ CAPACITY
  }
  // Another RESERVE of another nexus conflicts; the holder's own is a no-op;
  // the holder asking for another type conflicts too.
  EXPECT_EQ(prout(t.h, t.b, kReserve, kEA, 0xb1, 0).status, kConflict);
  EXPECT_TRUE(prout(t.h, t.a, kReserve, kEA, 0xa1, 0).good());
  EXPECT_EQ(prout(t.h, t.a, kReserve, kWE, 0xa1, 0).status, kConflict);
  // Released, everyone is back.
  ASSERT_TRUE(prout(t.h, t.a, kRelease, kEA, 0xa1, 0).good());
  EXPECT_FALSE(reservation(t.h, t.c).reserved);
  EXPECT_TRUE(write1(t.h, t.c).good());
}

TEST(PersistentReservation, WriteExclusiveLetsOthersReadOnly) {
  Three t;
  ASSERT_TRUE(prout(t.h, t.a, kReg, 0, 0, 0xa1).good());
  ASSERT_TRUE(prout(t.h, t.a, kReserve, kWE, 0xa1, 0).good());
  EXPECT_TRUE(read1(t.h, t.c).good());
  EXPECT_EQ(write1(t.h, t.c).status, kConflict);
  // SYNCHRONIZE CACHE and MODE SELECT change state: refused; MODE SENSE reads.
  EXPECT_EQ(t.h.run({0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {}, -1, 0, t.c).status, kConflict);
  EXPECT_TRUE(t.h.run({0x1a, 0x08, 0x3f, 0, 255, 0}, {}, -1, 0, t.c).good());
}

TEST(PersistentReservation, RegistrantsOnlyTypesAdmitEveryRegistrant) {
  Three t;
  ASSERT_TRUE(prout(t.h, t.a, kReg, 0, 0, 0xa1).good());
  ASSERT_TRUE(prout(t.h, t.b, kReg, 0, 0, 0xb1).good());
  ASSERT_TRUE(prout(t.h, t.a, kReserve, kEARO, 0xa1, 0).good());
  EXPECT_TRUE(write1(t.h, t.b).good());
  EXPECT_TRUE(read1(t.h, t.b).good());
  EXPECT_EQ(read1(t.h, t.c).status, kConflict);
  EXPECT_EQ(write1(t.h, t.c).status, kConflict);
  // The holder unregisters: the reservation goes with it, and the other
  // registrant is told (RESERVATIONS RELEASED) and keeps its registration.
  ASSERT_TRUE(prout(t.h, t.a, kReg, 0, 0xa1, 0).good());
  EXPECT_FALSE(reservation(t.h, t.c).reserved);
  EXPECT_EQ(keys(t.h, t.c), (std::vector<uint64_t>{0xb1}));
  expect_ua(t.h, t.b, 0x2a, 0x04);
  EXPECT_TRUE(tur(t.h, t.c).good());  // not a registrant: no unit attention
  EXPECT_TRUE(write1(t.h, t.c).good());
}

TEST(PersistentReservation, AllRegistrantsReservationLastsWhileAnyRegistrantDoes) {
  Three t;
  ASSERT_TRUE(prout(t.h, t.a, kReg, 0, 0, 0xa1).good());
  ASSERT_TRUE(prout(t.h, t.b, kReg, 0, 0, 0xb1).good());
  ASSERT_TRUE(prout(t.h, t.a, kReserve, kEAAR, 0xa1, 0).good());
  Resv r = reservation(t.h, t.c);
  EXPECT_TRUE(r.reserved);
  EXPECT_EQ(r.key, 0u);  // all registrants: no single holder's key
  EXPECT_EQ(r.type, kEAAR);
  ASSERT_TRUE(prout(t.h, t.a, kReg, 0, 0xa1, 0).good());
  EXPECT_TRUE(reservation(t.h, t.c).reserved);
  EXPECT_EQ(read1(t.h, t.a).status, kConflict);  // no longer registered
  EXPECT_TRUE(write1(t.h, t.b).good());
  ASSERT_TRUE(prout(t.h, t.b, kReg, 0, 0xb1, 0).good());
  EXPECT_FALSE(reservation(t.h, t.c).reserved);
}

TEST(PersistentReservation, ReleaseOfAnotherTypeIsRefusedAndANonHolderReleasesNothing) {
  Three t;
  ASSERT_TRUE(prout(t.h, t.a, kReg, 0, 0, 0xa1).good());
  ASSERT_TRUE(prout(t.h, t.b, kReg, 0, 0, 0xb1).good());
  ASSERT_TRUE(prout(t.h, t.a, kReserve, kEA, 0xa1, 0).good());
  Result r = prout(t.h, t.a, kRelease, kWE, 0xa1, 0);
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.key, 5);
  EXPECT_EQ(r.asc, 0x26);
  EXPECT_EQ(r.ascq, 0x04);  // INVALID RELEASE OF PERSISTENT RESERVATION
  EXPECT_TRUE(prout(t.h, t.b, kRelease, kEA, 0xb1, 0).good());
  EXPECT_TRUE(reservation(t.h, t.c).reserved);
  EXPECT_EQ(prout(t.h, t.b, kRelease, kEA, 0xbad, 0).status, kConflict);  // wrong key
}

TEST(PersistentReservation, ClearDropsEverythingAndTellsTheOthers) {
  Three t;
  ASSERT_TRUE(prout(t.h, t.a, kReg, 0, 0, 0xa1).good());
  ASSERT_TRUE(prout(t.h, t.b, kReg, 0, 0, 0xb1).good());
  ASSERT_TRUE(prout(t.h, t.a, kReserve, kWE, 0xa1, 0).good());
  uint32_t g = generation(t.h, t.c);
  ASSERT_TRUE(prout(t.h, t.b, kClear, 0, 0xb1, 0).good());
  EXPECT_TRUE(keys(t.h, t.c).empty());
  EXPECT_FALSE(reservation(t.h, t.c).reserved);
  EXPECT_EQ(generation(t.h, t.c), g + 1);
  expect_ua(t.h, t.a, 0x2a, 0x03);  // RESERVATIONS PREEMPTED
  EXPECT_TRUE(tur(t.h, t.b).good());  // the issuer gets none
  EXPECT_TRUE(write1(t.h, t.c).good());
}

TEST(PersistentReservation, PreemptingTheHolderMovesTheReservation) {
  Three t;
  ASSERT_TRUE(prout(t.h, t.a, kReg, 0, 0, 0xa1).good());
  ASSERT_TRUE(prout(t.h, t.b, kReg, 0, 0, 0xb1).good());
  ASSERT_TRUE(prout(t.h, t.a, kReserve, kEA, 0xa1, 0).good());
  ASSERT_TRUE(prout(t.h, t.b, kPreempt, kWE, 0xb1, 0xa1).good());
  Resv r = reservation(t.h, t.c);
  EXPECT_TRUE(r.reserved);
  EXPECT_EQ(r.key, 0xb1u);
  EXPECT_EQ(r.type, kWE);
  EXPECT_EQ(keys(t.h, t.c), (std::vector<uint64_t>{0xb1}));
  expect_ua(t.h, t.a, 0x2a, 0x05);  // REGISTRATIONS PREEMPTED
  EXPECT_EQ(write1(t.h, t.a).status, kConflict);
  EXPECT_EQ(prout(t.h, t.a, kReserve, kWE, 0xa1, 0).status, kConflict);  // its key is gone
  EXPECT_TRUE(write1(t.h, t.b).good());
  // A key nobody holds: conflict. Key 0 without a reservation to take over:
  // INVALID FIELD IN PARAMETER LIST.
  EXPECT_EQ(prout(t.h, t.b, kPreempt, kWE, 0xb1, 0x999).status, kConflict);
  ASSERT_TRUE(prout(t.h, t.b, kRelease, kWE, 0xb1, 0).good());
  Result z = prout(t.h, t.b, kPreempt, kWE, 0xb1, 0);
  EXPECT_EQ(z.status, 2);
  EXPECT_EQ(z.asc, 0x26);
}

TEST(PersistentReservation, ARegistrationBelongsToTheNexusNameNotTheSession) {
  Three t;
  ASSERT_TRUE(prout(t.h, t.b, kReg, 0, 0, 0xb1).good());
  ASSERT_TRUE(prout(t.h, t.b, kReserve, kEA, 0xb1, 0).good());
  t.h.target().close_nexus(t.b);  // logout
  sgv::scsi::Nexus* again = t.h.target().open_nexus("iqn.b,i,0x000000000001");
  t.h.clear_ua(again);
  EXPECT_TRUE(write1(t.h, again).good());  // still the holder
  sgv::scsi::Nexus* other_isid = t.h.target().open_nexus("iqn.b,i,0x000000000002");
  t.h.clear_ua(other_isid);
  EXPECT_EQ(write1(t.h, other_isid).status, kConflict);  // another port of the same initiator
}

TEST(PersistentReservation, ParameterAndCdbErrors) {
  Three t;
  ASSERT_TRUE(prout(t.h, t.a, kReg, 0, 0, 0xa1).good());
  Result r = prout(t.h, t.a, kReserve, kEA, 0xa1, 0, 0, 20);  // parameter list of 20 bytes
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.asc, 0x1a);
  r = prout(t.h, t.a, kReg, 0, 0xa1, 0xa2, 0x01);  // APTPL: not supported
  EXPECT_EQ(r.asc, 0x26);
  r = prout(t.h, t.a, kReg, 0, 0xa1, 0xa2, 0x08);  // SPEC_I_PT: not supported
  EXPECT_EQ(r.asc, 0x26);
  EXPECT_EQ(keys(t.h, t.a), (std::vector<uint64_t>{0xa1}));  // neither changed anything
  r = prout(t.h, t.a, kReserve, 2, 0xa1, 0);  // type 2 is obsolete
  EXPECT_EQ(r.asc, 0x24);
  r = prout(t.h, t.a, kReserve, 0x10 | kEA, 0xa1, 0);  // scope other than LU
  EXPECT_EQ(r.asc, 0x24);
  r = prout(t.h, t.a, 7, 0, 0xa1, 0);  // REGISTER AND MOVE: not supported
  EXPECT_EQ(r.asc, 0x24);
  r = prin(t.h, t.a, 4);
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.asc, 0x24);
}

TEST(PersistentReservation, ReportCapabilitiesAndFullStatus) {
  Three t;
  Result caps = prin(t.h, t.a, 2);
  ASSERT_TRUE(caps.good());
  ASSERT_EQ(caps.data.size(), 8u);
  EXPECT_EQ(caps.data[1], 8);
  EXPECT_EQ(caps.data[2] & 0x01, 0);  // PTPL_C: not persisted
  EXPECT_EQ(caps.data[4], 0xea);      // WE, EA, WERO, EARO, WEAR
  EXPECT_EQ(caps.data[5], 0x01);      // EAAR
  ASSERT_TRUE(prout(t.h, t.b, kReg, 0, 0, 0xb1).good());
  ASSERT_TRUE(prout(t.h, t.b, kReserve, kWERO, 0xb1, 0).good());
  Result fs = prin(t.h, t.a, 3);
  ASSERT_TRUE(fs.good());
  ASSERT_GE(fs.data.size(), 8u + 24u + 24u);
  const uint8_t* d = fs.data.data() + 8;
  EXPECT_EQ(be64(d), 0xb1u);
  EXPECT_EQ(d[12] & 0x01, 1);  // R_HOLDER
  EXPECT_EQ(d[13], kWERO);
  EXPECT_EQ(d[24], 0x45);  // TransportID: format 01b, iSCSI
  std::string name(reinterpret_cast<const char*>(d + 28));
  EXPECT_EQ(name, "iqn.b,i,0x000000000001");
  // A short allocation length truncates; the lengths still tell the whole.
  Result shortk = prin(t.h, t.a, 0, 8);
  ASSERT_TRUE(shortk.good());
  EXPECT_EQ(shortk.data.size(), 8u);
  EXPECT_EQ(be32(shortk.data.data() + 4), 8u);
}

}  // namespace

// ---- RESERVE / RELEASE (6 and 10) ---------------------------------------------

namespace {

Result reserve6(Harness& h, sgv::scsi::Nexus* n) { return h.run({0x16, 0, 0, 0, 0, 0}, {}, -1, 0, n); }
Result release6(Harness& h, sgv::scsi::Nexus* n) { return h.run({0x17, 0, 0, 0, 0, 0}, {}, -1, 0, n); }

TEST(Reserve6, HolderOnlyUntilReleaseOrNexusLoss) {
  Three t;
  ASSERT_TRUE(reserve6(t.h, t.b).good());
  EXPECT_TRUE(reserve6(t.h, t.b).good());  // the holder may reserve again
  EXPECT_EQ(reserve6(t.h, t.c).status, kConflict);
  EXPECT_TRUE(write1(t.h, t.b).good());
  // Everything else from another nexus conflicts, reads and TUR included;
  // INQUIRY, REPORT LUNS and RELEASE do not.
  EXPECT_EQ(read1(t.h, t.c).status, kConflict);
  EXPECT_EQ(tur(t.h, t.c).status, kConflict);
  EXPECT_EQ(t.h.run({0x1a, 0x08, 0x3f, 0, 255, 0}, {}, -1, 0, t.c).status, kConflict);  // MODE SENSE
  EXPECT_EQ(prin(t.h, t.c, 0).status, kConflict);
  EXPECT_TRUE(t.h.run({0x12, 0, 0, 0, 36, 0}, {}, -1, 0, t.c).good());
  EXPECT_TRUE(t.h.run({0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}, {}, -1, 0, t.c).good());
  EXPECT_TRUE(release6(t.h, t.c).good());  // not the holder: no effect
  EXPECT_EQ(write1(t.h, t.c).status, kConflict);
  t.h.target().close_nexus(t.b);  // nexus loss ends it
  EXPECT_TRUE(write1(t.h, t.c).good());
  EXPECT_TRUE(reserve6(t.h, t.c).good());
  EXPECT_EQ(write1(t.h, t.a).status, kConflict);
  ASSERT_TRUE(t.h.run({0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {}, -1, 0, t.c).good());  // RELEASE(10)
  EXPECT_TRUE(write1(t.h, t.a).good());
}

TEST(Reserve6, LunAndTargetResetsEndIt) {
  Three t;
  ASSERT_TRUE(reserve6(t.h, t.b).good());
  t.h.target().lun_reset(sgv::test::wire_lun(0));
  t.h.clear_ua(t.c);
  EXPECT_TRUE(write1(t.h, t.c).good());
  t.h.clear_ua(t.b);
  ASSERT_TRUE(t.h.run({0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {}, -1, 0, t.b).good());  // RESERVE(10)
  EXPECT_EQ(write1(t.h, t.c).status, kConflict);
  t.h.target().target_reset();
  t.h.clear_ua(t.c);
  EXPECT_TRUE(write1(t.h, t.c).good());
}

TEST(Reserve6, PersistentReservationsAndReserveExcludeEachOther) {
  Three t;
  ASSERT_TRUE(prout(t.h, t.a, kReg, 0, 0, 0xa1).good());
  EXPECT_EQ(reserve6(t.h, t.b).status, kConflict);  // registrations exist
  EXPECT_EQ(reserve6(t.h, t.a).status, kConflict);  // even for the registrant
  ASSERT_TRUE(prout(t.h, t.a, kReg, 0, 0xa1, 0).good());
  ASSERT_TRUE(reserve6(t.h, t.b).good());
  EXPECT_EQ(prout(t.h, t.a, kRegIgnore, 0, 0, 0xa1).status, kConflict);
  EXPECT_TRUE(keys(t.h, t.b).empty());
}

TEST(Reserve6, ObsoleteFormsAreRefused) {
  Three t;
  Result r = t.h.run({0x16, 0x01, 0, 0, 0, 0}, {}, -1, 0, t.a);  // extent
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.asc, 0x24);
  r = t.h.run({0x56, 0x10, 0, 7, 0, 0, 0, 0, 0, 0}, {}, -1, 0, t.a);  // third party
  EXPECT_EQ(r.asc, 0x24);
  r = t.h.run({0x56, 0, 0, 0, 0, 0, 0, 0, 24, 0}, {}, -1, 0, t.a);  // a parameter list
  EXPECT_EQ(r.asc, 0x24);
  EXPECT_TRUE(write1(t.h, t.b).good());  // nothing was reserved
}

}  // namespace

namespace {

TEST(ReservationsDump, ShowsTypeHolderKeysAndReserve6) {
  Three t;
  EXPECT_EQ(t.h.target().reservations_dump(), "lun=0 generation=0 type=none holder=- reserve6=- registrations=0\n");
  ASSERT_TRUE(prout(t.h, t.b, kReg, 0, 0, 0xb1).good());
  ASSERT_TRUE(prout(t.h, t.b, kReserve, kWERO, 0xb1, 0).good());
  EXPECT_EQ(t.h.target().reservations_dump(),
            "lun=0 generation=1 type=WE_RO holder=iqn.b,i,0x000000000001 reserve6=- registrations=1\n"
            "lun=0 registrant=iqn.b,i,0x000000000001 key=0x00000000000000b1\n");
  ASSERT_TRUE(prout(t.h, t.b, kReg, 0, 0xb1, 0).good());
  ASSERT_TRUE(reserve6(t.h, t.c).good());
  EXPECT_EQ(t.h.target().reservations_dump(),
            "lun=0 generation=2 type=none holder=- reserve6=iqn.c,i,0x000000000001 registrations=0\n");
}

}  // namespace

namespace {

// A WRITE prepared before another nexus preempted (its Data-Out still on
// the way, as with R2T) must not land when it executes after the preempt.
TEST(PersistentReservation, AWriteWaitingForDataWhenPreemptedDoesNotLand) {
  Three t;
  ASSERT_TRUE(prout(t.h, t.a, kReg, 0, 0, 0xa1).good());
  ASSERT_TRUE(prout(t.h, t.b, kReg, 0, 0, 0xb1).good());
  ASSERT_TRUE(prout(t.h, t.b, kReserve, kWERO, 0xb1, 0).good());  // both may write
  sgv::scsi::Task w;
  uint8_t sense[sgv::scsi::kSenseMax];
  const uint8_t cdb[10] = {0x2a, 0, 0, 0, 0, 1, 0, 0, 1, 0};
  std::memcpy(w.cdb, cdb, 10);
  w.cdb_len = 10;
  w.lun = sgv::test::wire_lun(0);
  w.nexus = t.b;
  w.sense = sense;
  w.edtl = 512;
  bool done = false;
  w.ctx = &done;
  w.done = [](sgv::scsi::Task* k) { *static_cast<bool*>(k->ctx) = true; };
  ASSERT_FALSE(t.h.target().prepare(w));  // allowed now: a data phase follows
  // Meanwhile A fences B.
  ASSERT_TRUE(prout(t.h, t.a, kPreempt, kWE, 0xa1, 0xb1).good());
  std::vector<uint8_t> data(512, 0xee);
  w.inline_segs[0] = {data.data(), data.size()};
  w.segs = w.inline_segs;
  w.nsegs = 1;
  t.h.target().execute(w);
  ASSERT_TRUE(done);
  EXPECT_EQ(w.status, kConflict);
  Result r = read1(t.h, t.a);
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.data, std::vector<uint8_t>(512, 0));  // block 1 was never written
}

}  // namespace
