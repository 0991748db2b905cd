// budget.cpp - hierarchical budgets: whole-or-nothing charges up a chain of
// limits, with guaranteed reserves set aside in each parent.
//
// Each level is one CAS on load_; what a level passes to its parent is the
// change of max(load, reserve), so the deltas a parent receives telescope to
// exactly max(final, reserve) - max(initial, reserve) however charges on the
// same level interleave. That makes the tree lock-free and exact at
// quiescence (see the invariant in budget.hpp).
#include "sgv/budget.hpp"

#include <algorithm>
#include <cassert>
#include <cerrno>

namespace sgv {

namespace {
long long contrib(size_t load, size_t reserve) { return static_cast<long long>(std::max(load, reserve)); }
}  // namespace

Budget::Budget(Budget* parent, size_t limit_bytes, size_t reserve_bytes, const char* name)
    : parent_(parent), limit_(limit_bytes), reserve_(reserve_bytes), name_(name ? name : "") {
  if (parent_) {
    std::lock_guard<std::mutex> lk(parent_->kids_mu_);
    parent_->kids_.push_back(this);
  }
  // The reserve is set aside in the parent at once (forced: configuration).
  if (parent_ && reserve_) adjust(parent_, static_cast<long long>(reserve_), false, false, nullptr);
}

Budget::~Budget() {
  assert(used() == 0 && "budget destroyed while charged");
  assert(kids_.empty() && "budget destroyed before its children");
  if (parent_ && reserve_) adjust(parent_, -static_cast<long long>(reserve_), false, false, nullptr);
  if (parent_) {
    std::lock_guard<std::mutex> lk(parent_->kids_mu_);
    auto& k = parent_->kids_;
    k.erase(std::remove(k.begin(), k.end(), this), k.end());
  }
}

void Budget::set_counts_pages(bool v) {
  if (v == counts_pages_) return;
  // Children's share was (or will no longer be) part of load_; move it so
  // the invariant holds either way. Configuration time: quiescent.
  long long kids = 0;
  {
    std::lock_guard<std::mutex> lk(kids_mu_);
    for (Budget* k : kids_) kids += contrib(k->load_.load(std::memory_order_relaxed), k->reserve_);
  }
  counts_pages_ = v;
  adjust(this, v ? -kids : kids, false, true, nullptr);
}

int Budget::adjust(Budget* b, long long d, bool check, bool first, Budget** refused) {
  if (!b || d == 0 || (b->counts_pages_ && !first)) return 0;
  size_t old = b->load_.load(std::memory_order_relaxed);
  size_t nw;
  do {
    nw = static_cast<size_t>(static_cast<long long>(old) + d);
    if (d > 0 && check && b->limit_ && nw > b->limit_) {
      b->refusals_.fetch_add(1, std::memory_order_relaxed);
      if (refused) *refused = b;
      return -ENOMEM;
    }
    // acq_rel: pairs with the CAS of every other charge on this level.
  } while (!b->load_.compare_exchange_weak(old, nw, std::memory_order_acq_rel, std::memory_order_relaxed));
  long long pass = contrib(nw, b->reserve_) - contrib(old, b->reserve_);
  int rc = adjust(b->parent_, pass, check, false, refused);
  if (rc != 0) {
    // Undo here; the parent never got `pass`, and must get the undo's own
    // change, so it receives their sum (forced: it only restores).
    size_t o2 = b->load_.fetch_sub(static_cast<size_t>(d), std::memory_order_acq_rel);
    size_t n2 = o2 - static_cast<size_t>(d);
    long long pass2 = contrib(n2, b->reserve_) - contrib(o2, b->reserve_);
    adjust(b->parent_, pass + pass2, false, false, nullptr);
  }
  return rc;
}

void Budget::add_used(long long d) {
  for (Budget* b = this; b; b = b->parent_) {
    if (d > 0) {
      size_t now = b->used_.fetch_add(static_cast<size_t>(d), std::memory_order_relaxed) + static_cast<size_t>(d);
      size_t pk = b->peak_.load(std::memory_order_relaxed);
      while (now > pk && !b->peak_.compare_exchange_weak(pk, now, std::memory_order_relaxed)) {
      }
    } else {
      b->used_.fetch_sub(static_cast<size_t>(-d), std::memory_order_relaxed);
    }
    if (b->parent_ && b->parent_->counts_pages_) break;
  }
}

int Budget::charge(size_t bytes, Budget** refused_by) {
  if (bytes == 0) return 0;
  int rc = adjust(this, static_cast<long long>(bytes), true, true, refused_by);
  if (rc != 0) return rc;
  direct_.fetch_add(bytes, std::memory_order_relaxed);
  add_used(static_cast<long long>(bytes));
  return 0;
}

int Budget::charge(size_t bytes) { return charge(bytes, nullptr); }

void Budget::uncharge(size_t bytes) {
  if (bytes == 0) return;
  assert(direct_.load(std::memory_order_relaxed) >= bytes && "uncharge of bytes never charged here");
  direct_.fetch_sub(bytes, std::memory_order_relaxed);
  add_used(-static_cast<long long>(bytes));
  adjust(this, -static_cast<long long>(bytes), false, true, nullptr);
}

BudgetStats Budget::stats() const {
  BudgetStats s;
  s.limit = limit_;
  s.reserve = reserve_;
  s.used = used();
  s.peak = peak();
  s.refusals = refusals();
  s.waits = waits();
  return s;
}

void Budget::dump(std::string* out) const {
  BudgetStats s = stats();
  std::string p = "budget." + (name_.empty() ? std::string("anon") : name_) + ".";
  auto line = [&](const char* k, unsigned long long v) { *out += p + k + "=" + std::to_string(v) + "\n"; };
  line("limit", s.limit);
  line("reserve", s.reserve);
  line("used", s.used);
  line("peak", s.peak);
  line("refusals", s.refusals);
  line("waits", s.waits);
}

bool Budget::check_invariants() const {
  std::lock_guard<std::mutex> lk(kids_mu_);
  size_t direct = direct_.load(std::memory_order_acquire);
  size_t load = direct, used = direct;
  for (const Budget* k : kids_) {
    if (!k->check_invariants()) return false;
    if (!counts_pages_) {
      load += static_cast<size_t>(contrib(k->load_.load(std::memory_order_acquire), k->reserve_));
      used += k->used();
    }
  }
  if (load != load_.load(std::memory_order_acquire)) return false;
  if (used != used_.load(std::memory_order_acquire)) return false;
  if (peak() < used) return false;
  return true;
}

}  // namespace sgv
