// scsi/pr.cpp - reservations: persistent ones (SPC-4 5.13, PERSISTENT
// RESERVE IN and OUT): registrations per I_T nexus, one LU-scope reservation
// of any of the six types, the unit attentions the standard asks for, and
// the check every other command passes while a reservation exists; and the
// older RESERVE/RELEASE(6/10) kind (below).
//
// The check runs twice: in prepare() and again in execute(), so a command
// that passed before a PREEMPT but waited for its Data-Out does not land
// after it.
//
// What is not here: APTPL (state lives as long as the process; REPORT
// CAPABILITIES says PTPL_C 0 and a request for it is refused), SPEC_I_PT,
// REGISTER AND MOVE, and the ABORT half of PREEMPT AND ABORT (the
// registrations and the reservation change as for PREEMPT; I/O the
// preempted nexuses already gave the backend completes, anything of theirs
// that reaches execute() later gets RESERVATION CONFLICT). ALL_TG_PT is
// accepted: a target has one port.
#include <algorithm>
#include <cstdio>

#include "scsi/core.hpp"

namespace sgv::scsi {

namespace {

namespace pr_type {
constexpr uint8_t we = 1, ea = 3, we_ro = 5, ea_ro = 6, we_ar = 7, ea_ar = 8;
}
bool valid_type(uint8_t ty) {
  return ty == pr_type::we || ty == pr_type::ea || ty == pr_type::we_ro || ty == pr_type::ea_ro ||
         ty == pr_type::we_ar || ty == pr_type::ea_ar;
}
bool all_registrants(uint8_t ty) { return ty == pr_type::we_ar || ty == pr_type::ea_ar; }
bool registrants_share(uint8_t ty) { return ty >= pr_type::we_ro; }  // RO and AR types
bool write_exclusive(uint8_t ty) { return ty == pr_type::we || ty == pr_type::we_ro || ty == pr_type::we_ar; }

namespace sa_out {
constexpr uint8_t reg = 0, reserve = 1, release = 2, clear = 3, preempt = 4, preempt_abort = 5,
                  reg_ignore = 6;
}
namespace sa_in {
constexpr uint8_t read_keys = 0, read_reservation = 1, report_caps = 2, read_full_status = 3;
}

constexpr Asc reservations_preempted{0x2a, 0x03};
constexpr Asc reservations_released{0x2a, 0x04};
constexpr Asc registrations_preempted{0x2a, 0x05};
constexpr Asc invalid_release{0x26, 0x04};
constexpr Asc insufficient_registration{0x55, 0x04};

bool conflict(Task& t) {
  t.status = status::reservation_conflict;
  t.sense_len = 0;
  return true;
}

// An I_T nexus is known by its initiator port name and relative port.
bool same_port(const PrState::Reg& r, const std::string& port, uint32_t rel_port) {
  return r.rel_port == rel_port && r.port == port;
}
bool of_nexus(const PrState::Reg& r, const Nexus* n) { return same_port(r, n->initiator, n->rel_port); }

PrState::Reg* find_reg(PrState& s, const Nexus* n) {
  for (auto& r : s.regs)
    if (of_nexus(r, n)) return &r;
  return nullptr;
}

// r holds a reservation of a type with a single holder.
bool sole_holder(const PrState& s, const PrState::Reg& r) {
  return s.type && !all_registrants(s.type) && same_port(r, s.holder, s.holder_rel_port);
}
bool is_holder(const PrState& s, const PrState::Reg* r) {
  if (!s.type || !r) return false;
  return all_registrants(s.type) || sole_holder(s, *r);
}
// The key of a single holder; 0 (never a registered key) when there is none.
uint64_t holder_key(const PrState& s) {
  for (const auto& r : s.regs)
    if (sole_holder(s, r)) return r.key;
  return 0;
}

// Queues `code` for every live nexus of every registration that pred
// selects. Called with s.mu held (lock order: Lun::pr.mu, Impl::mu, ua_mu).
template <class Pred>
void ua_to_regs(Target::Impl& im, const Lun& l, const std::vector<PrState::Reg>& regs, Pred pred, Asc code) {
  std::lock_guard<std::mutex> g(im.mu);
  for (Nexus* n : im.nexuses)
    for (const auto& r : regs)
      if (pred(r) && of_nexus(r, n)) im.queue_ua(n, l.id, code);
}

void set_reservation(Lun& l, const PrState::Reg* holder, uint8_t type) {
  PrState& s = l.pr;
  s.type = type;
  s.holder = holder ? holder->port : std::string();
  s.holder_rel_port = holder ? holder->rel_port : 0;
  l.pr_reserved.store(type != 0, std::memory_order_release);  // pairs with prepare()/execute()'s acquire
}

// Removes the registrations pred selects (appending them to *removed when
// given); returns how many. Releases a reservation whose holder went (or
// the last registrant of an all-registrants one). The caller queues the
// unit attentions.
template <class Pred>
unsigned remove_regs(Lun& l, Pred pred, std::vector<PrState::Reg>* removed) {
  PrState& s = l.pr;
  unsigned n = 0;
  for (auto it = s.regs.begin(); it != s.regs.end();) {
    if (pred(*it)) {
      bool held = sole_holder(s, *it);
      if (removed) removed->push_back(*it);
      it = s.regs.erase(it);
      ++n;
      if (held) set_reservation(l, nullptr, 0);
    } else {
      ++it;
    }
  }
  if (s.type && all_registrants(s.type) && s.regs.empty()) set_reservation(l, nullptr, 0);
  return n;
}

}  // namespace

// ---- the check on every other command ---------------------------------------

// SPC-4 5.13.1 / SBC-3 4.17: what an I_T nexus that does not hold the
// reservation may do. Reads (and MODE SENSE, VERIFY) pass a write-exclusive
// reservation; the registrants-only and all-registrants types let every
// registered nexus in as if it held it. START STOP UNIT that starts and
// PREVENT ALLOW MEDIUM REMOVAL that allows are harmless and pass too.
//
// What a nexus is under the reservation (holder, registered, the type) is
// computed under the LUN's PR mutex and cached in the Nexus with the LUN's
// epoch; while no PERSISTENT RESERVE OUT bumps it, the next commands decide
// from the cache with one acquire load and no lock. A command that reads
// the old epoch just before a PR OUT bumps it is ordered before that PR OUT
// (and execute() checks again).
namespace {
constexpr uint64_t kEpochShift = 20, kLunShift = 6, kHolderBit = 1u << 5, kRegBit = 1u << 4;
}

bool pr_conflicts(Lun& l, const Task& t, uint8_t flags) {
  if (flags & kPrOk) return false;
  if (t.cdb[0] == 0x1b && (t.cdb[4] & 0xf1) == 0x01) return false;  // START, no power condition
  if (t.cdb[0] == 0x1e && (t.cdb[4] & 0x03) == 0) return false;     // ALLOW
  if (!t.nexus) return false;
  uint64_t epoch = l.pr_epoch.load(std::memory_order_acquire);
  std::atomic<uint64_t>& slot = t.nexus->pr_cache[l.id % Nexus::kPrCache];
  uint64_t v = slot.load(std::memory_order_relaxed);
  uint64_t tag = (epoch << kEpochShift) | (l.id << kLunShift);
  uint64_t tag_mask = ~uint64_t{0} << kLunShift;
  // An empty slot (0) never matches: a reservation exists, so some PR OUT
  // has bumped the epoch past 0 (it wraps after 2^44 of them).
  if ((v & tag_mask) != (tag & tag_mask)) {
    PrState& s = l.pr;
    std::lock_guard<std::mutex> g(s.mu);
    const PrState::Reg* r = find_reg(s, t.nexus);
    epoch = l.pr_epoch.load(std::memory_order_relaxed);  // stable: PR OUT bumps it under mu
    v = (epoch << kEpochShift) | (l.id << kLunShift) | (is_holder(s, r) ? kHolderBit : 0) |
        (r ? kRegBit : 0) | s.type;
    slot.store(v, std::memory_order_relaxed);
  }
  uint8_t type = uint8_t(v & 0x0f);
  if (!type || (v & kHolderBit)) return false;
  if ((v & kRegBit) && registrants_share(type)) return false;
  return !((flags & kPrRead) && write_exclusive(type));
}

// ---- RESERVE / RELEASE (6 and 10): SPC-2 reservations --------------------------
//
// One holder per LUN, known by its Nexus: the reservation ends with RELEASE,
// the nexus (logout, connection loss), a LUN reset or a target reset. While
// it lasts every other nexus gets RESERVATION CONFLICT for everything but
// the commands marked kResvOk (INQUIRY, REQUEST SENSE, REPORT LUNS, REPORT
// SUPPORTED OPERATION CODES, RELEASE). Neither can be taken while
// persistent reservations are in use (registrations exist), and no
// registration while it is held (SPC-4 5.13.3). Third-party and extent
// reservations are obsolete and refused.

bool prep_reserve(Target::Impl&, Task& t) {
  bool ten = t.cdb[0] == 0x56;
  if (t.cdb[1] & (ten ? 0x13 : 0x1f)) return invalid_cdb(t, 1);
  if (ten ? be16(t.cdb + 7) : be16(t.cdb + 3)) return invalid_cdb(t, ten ? 7 : 3);
  Lun& l = *lun_of(t);
  if (!t.nexus) return conflict(t);
  std::lock_guard<std::mutex> g(l.pr.mu);
  if (l.pr.type || !l.pr.regs.empty()) return conflict(t);
  Nexus* held = nullptr;
  if (!l.spc2_holder.compare_exchange_strong(held, t.nexus, std::memory_order_acq_rel) && held != t.nexus)
    return conflict(t);  // another nexus holds it (the holder may reserve again)
  return good(t);
}

bool prep_release(Target::Impl&, Task& t) {
  bool ten = t.cdb[0] == 0x57;
  if (t.cdb[1] & (ten ? 0x13 : 0x1f)) return invalid_cdb(t, 1);
  Lun& l = *lun_of(t);
  std::lock_guard<std::mutex> g(l.pr.mu);
  Nexus* mine = t.nexus;
  if (mine) l.spc2_holder.compare_exchange_strong(mine, nullptr, std::memory_order_acq_rel);
  return good(t);  // releasing what another nexus holds, or nothing, is no error
}

void spc2_release_nexus(Lun& l, Nexus* n) {
  std::lock_guard<std::mutex> g(l.pr.mu);
  if (n) l.spc2_holder.compare_exchange_strong(n, nullptr, std::memory_order_acq_rel);
  else l.spc2_holder.store(nullptr, std::memory_order_release);
}

// ---- PERSISTENT RESERVE IN ---------------------------------------------------

bool prep_pr_in(Target::Impl&, Task& t) { return need_data(t, Dir::in, be16(t.cdb + 7)); }

void exec_pr_in(Target::Impl&, Task& t) {
  Lun& l = *lun_of(t);
  PrState& s = l.pr;
  uint8_t sa = t.cdb[1] & 0x1f;
  std::vector<uint8_t> b(8);
  {
    std::lock_guard<std::mutex> g(s.mu);
    put32(b.data(), s.generation);
    switch (sa) {
      case sa_in::read_keys:
        for (const auto& r : s.regs) {
          size_t o = b.size();
          b.resize(o + 8);
          put64(b.data() + o, r.key);
        }
        break;
      case sa_in::read_reservation:
        if (s.type) {
          b.resize(24, 0);
          put64(b.data() + 8, holder_key(s));  // all-registrants: zero
          b[21] = s.type;  // scope 0 (LU_SCOPE) in the high nibble
        }
        break;
      case sa_in::report_caps:
        b.assign(8, 0);
        put16(b.data(), 8);
        b[2] = 0x04;  // ATP_C: ALL_TG_PT accepted (one target port). CRH 0, SIP_C 0, PTPL_C 0
        b[3] = 0x80;  // TMV: the type mask is valid; ALLOW COMMANDS 0, PTPL_A 0
        b[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02;  // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX
        b[5] = 0x01;                              // EX_AC_AR
        put_data(t, b.data(), uint32_t(b.size()));
        return finish(t);
      case sa_in::read_full_status:
        for (const auto& r : s.regs) {
          // iSCSI initiator port TransportID (SPC-4 7.6.4.6, format 01b):
          // "name,i,0xISID", NUL-terminated, padded to a multiple of 4, >= 20.
          size_t id_len = std::max<size_t>(20, (r.port.size() + 1 + 3) & ~size_t(3));
          size_t o = b.size();
          b.resize(o + 24 + 4 + id_len, 0);
          uint8_t* d = b.data() + o;
          put64(d, r.key);
          bool holder = is_holder(s, &r);
          d[12] = holder ? 0x01 : 0;  // R_HOLDER
          if (holder) d[13] = s.type;
          put16(d + 18, uint16_t(r.rel_port));
          put32(d + 20, uint32_t(4 + id_len));
          d[24] = 0x40 | 0x05;  // format 01b, protocol iSCSI
          put16(d + 26, uint16_t(id_len));
          std::memcpy(d + 28, r.port.data(), r.port.size());
        }
        break;
    }
  }
  put32(b.data() + 4, uint32_t(b.size() - 8));
  put_data(t, b.data(), uint32_t(b.size()));
  finish(t);
}

// ---- PERSISTENT RESERVE OUT --------------------------------------------------

bool prep_pr_out(Target::Impl&, Task& t) {
  uint8_t sa = t.cdb[1] & 0x1f;
  uint8_t scope = t.cdb[2] >> 4, type = t.cdb[2] & 0x0f;
  bool typed = sa == sa_out::reserve || sa == sa_out::release || sa == sa_out::preempt || sa == sa_out::preempt_abort;
  if (typed && scope != 0) return invalid_cdb(t, 2, 7);
  if (typed && !valid_type(type)) return invalid_cdb(t, 2, 3);
  if (be32(t.cdb + 5) != 24) return check(t, sk::illegal_request, asc::param_list_length);
  return need_data(t, Dir::out, 24);
}

void exec_pr_out(Target::Impl& im, Task& t) {
  Lun& l = *lun_of(t);
  PrState& s = l.pr;
  uint8_t p[24];
  if (get_data(t, 0, p, 24) < 24) {
    check(t, sk::illegal_request, asc::param_list_length);
    return finish(t);
  }
  uint8_t sa = t.cdb[1] & 0x1f, type = t.cdb[2] & 0x0f;
  uint64_t key = be64(p), sark = be64(p + 8);
  if (p[20] & 0x08) {  // SPEC_I_PT: not supported (SIP_C 0)
    invalid_param(t, 20, 3);
    return finish(t);
  }
  if (p[20] & 0x01) {  // APTPL: not supported (PTPL_C 0)
    invalid_param(t, 20, 0);
    return finish(t);
  }
  Nexus* me = t.nexus;
  if (!me) {  // no I_T nexus to register (a transport that never opened one)
    conflict(t);
    return finish(t);
  }
  std::lock_guard<std::mutex> g(s.mu);
  // Every nexus's cached verdict for this LUN is void from here on
  // (pr_conflicts); bumped before anything changes, so no cache can be
  // filled from a state this command has half changed.
  l.pr_epoch.fetch_add(1, std::memory_order_release);
  Nexus* spc2 = l.spc2_holder.load(std::memory_order_acquire);
  if (spc2 && spc2 != me) {  // a RESERVE(6/10) of another nexus came in between
    conflict(t);
    return finish(t);
  }
  PrState::Reg* mine = find_reg(s, me);
  if (sa == sa_out::reg || sa == sa_out::reg_ignore) {
    if (sa == sa_out::reg && (mine ? key != mine->key : key != 0)) {
      conflict(t);
      return finish(t);
    }
    if (!mine) {
      if (sark != 0) {
        if (s.regs.size() >= kMaxPrRegistrations) {
          check(t, sk::illegal_request, insufficient_registration);
          return finish(t);
        }
        s.regs.push_back({me->initiator, me->rel_port, sark});
        ++s.generation;
      }
      return finish(t);
    }
    if (sark != 0) {
      mine->key = sark;
    } else {
      // Unregistering. A registrants-only reservation that goes with its
      // holder tells the other registrants (SPC-4 5.13.11.2.2).
      uint8_t was = s.type;
      // By nexus, not address: erasing shifts the registrations behind it.
      remove_regs(l, [me](const PrState::Reg& r) { return of_nexus(r, me); }, nullptr);
      if ((was == pr_type::we_ro || was == pr_type::ea_ro) && !s.type)
        ua_to_regs(im, l, s.regs, [me](const PrState::Reg& r) { return !of_nexus(r, me); }, reservations_released);
    }
    ++s.generation;
    return finish(t);
  }
  // Every other service action: a registered nexus with its own key.
  if (!mine || key != mine->key) {
    conflict(t);
    return finish(t);
  }
  auto not_me = [me](const PrState::Reg& r) { return !of_nexus(r, me); };
  switch (sa) {
    case sa_out::reserve:
      if (!s.type) {
        set_reservation(l, mine, type);
      } else if (!is_holder(s, mine) || s.type != type) {
        conflict(t);
      }
      break;
    case sa_out::release:
      if (!s.type || !is_holder(s, mine)) break;  // nothing of ours to release: GOOD
      if (s.type != type) {
        check(t, sk::illegal_request, invalid_release);
        break;
      }
      {
        uint8_t was = s.type;
        set_reservation(l, nullptr, 0);
        if (registrants_share(was)) ua_to_regs(im, l, s.regs, not_me, reservations_released);
      }
      break;
    case sa_out::clear:
      ua_to_regs(im, l, s.regs, not_me, reservations_preempted);
      s.regs.clear();
      set_reservation(l, nullptr, 0);
      ++s.generation;
      break;
    case sa_out::preempt:
    case sa_out::preempt_abort: {
      std::vector<PrState::Reg> removed;
      // Pointers into s.regs move as registrations go: mine is found by nexus.
      uint64_t held_by = holder_key(s);
      auto with_key = [&](const PrState::Reg& r) { return r.key == sark && not_me(r); };
      if (s.type && all_registrants(s.type) && sark == 0) {
        // Preempting an all-registrants reservation: every other registrant
        // goes, and the issuer holds a new reservation of the given type.
        remove_regs(l, not_me, &removed);
        set_reservation(l, find_reg(s, me), type);
      } else if (held_by && sark == held_by) {
        // The holder's key: its registrations go (unless it is ours), and
        // the issuer takes the reservation with the given type.
        uint8_t was = s.type;
        remove_regs(l, with_key, &removed);
        set_reservation(l, find_reg(s, me), type);
        if (was != type)
          ua_to_regs(im, l, s.regs, not_me, reservations_released);
      } else {
        // No reservation, an all-registrants one and a non-zero key, or a key
        // other than the holder's: only the registrations with that key go.
        if (sark == 0) {
          invalid_param(t, 8);
          break;
        }
        if (!remove_regs(l, with_key, &removed)) {
          conflict(t);
          break;
        }
      }
      ua_to_regs(im, l, removed, [](const PrState::Reg&) { return true; }, registrations_preempted);
      ++s.generation;
      break;
    }
    default:  // the table has no other rows
      invalid_cdb(t, 1, 4);
      break;
  }
  finish(t);
}

// ---- the admin view ----------------------------------------------------------

std::string Target::reservations_dump() const {
  static const char* const kType[9] = {"none", "?", "?", "EA", "?", "WE_RO", "EA_RO", "WE_AR", "EA_AR"};
  std::string out;
  for (uint64_t id : lun_ids()) {
    Lun* l = impl_->lun(id);
    if (!l) continue;
    PrState& s = l->pr;
    std::lock_guard<std::mutex> g(s.mu);  // close_nexus clears reserve6 under it before the Nexus goes
    Nexus* r6 = l->spc2_holder.load(std::memory_order_acquire);
    const char* type = s.type == pr_type::we ? "WE" : s.type < 9 ? kType[s.type] : "?";
    std::string holder = !s.type ? "-" : all_registrants(s.type) ? "all-registrants" : s.holder;
    out += "lun=" + std::to_string(id) + " generation=" + std::to_string(s.generation) + " type=" + type +
           " holder=" + holder + " reserve6=" + (r6 ? r6->initiator : std::string("-")) +
           " registrations=" + std::to_string(s.regs.size()) + "\n";
    for (const auto& r : s.regs) {
      char key[24];
      std::snprintf(key, sizeof key, "0x%016llx", static_cast<unsigned long long>(r.key));
      out += "lun=" + std::to_string(id) + " registrant=" + r.port + " key=" + key + "\n";
    }
  }
  return out;
}

}  // namespace sgv::scsi
