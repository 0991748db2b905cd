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
#include <cstdio>
#include <cstdlib>

namespace sgv {

namespace {
long long contrib(size_t load, size_t reserve) { return static_cast<long long>(std::max(load, reserve)); }
}  // namespace

Budget::Budget(Budget* parent, size_t limit_bytes, size_t reserve_bytes, const char* name, Budget* also)
    : parent_(parent), also_(also), limit_(limit_bytes), reserve_(reserve_bytes), name_(name ? name : "") {
  assert((!also_ || (also_->parent_ == nullptr && also_ != this)) && "an also budget is a root");
  if (parent_) {
    std::lock_guard<std::mutex> lk(parent_->kids_mu_);
    parent_->kids_.push_back(this);
  }
  // The reserve is set aside in the parent at once (forced: configuration).
  if (parent_ && reserve_) adjust(parent_, static_cast<long long>(reserve_), false, false, nullptr);
}

Budget::~Budget() {
  assert(used() == 0 && "budget destroyed while charged");
#if defined(SGV_CHECK_INVARIANTS)
  if (!check_invariants()) {
    std::fprintf(stderr, "sgv: budget %s: invariants broken at destruction\n", name_.c_str());
    std::abort();
  }
#endif
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
  size_t pk = b->peak_.load(std::memory_order_relaxed);
  while (nw > pk && !b->peak_.compare_exchange_weak(pk, nw, std::memory_order_relaxed)) {
  }
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

int Budget::charge(size_t bytes, Budget** refused_by) {
  if (bytes == 0) return 0;
  long long d = static_cast<long long>(bytes);
  int rc = adjust(this, d, true, true, refused_by);
  if (rc != 0 || !also_) return rc;
  rc = adjust(also_, d, true, true, refused_by);
  if (rc != 0) adjust(this, -d, false, true, nullptr);  // whole or nothing
  return rc;
}

int Budget::charge(size_t bytes) { return charge(bytes, nullptr); }

void Budget::uncharge(size_t bytes) {
  if (bytes == 0) return;
  assert(load_.load(std::memory_order_relaxed) >= bytes && "uncharge of bytes never charged here");
  adjust(this, -static_cast<long long>(bytes), false, true, nullptr);
  if (also_) adjust(also_, -static_cast<long long>(bytes), false, true, nullptr);
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

size_t Budget::used() const {
  std::lock_guard<std::mutex> lk(kids_mu_);
  long long u = static_cast<long long>(load_.load(std::memory_order_acquire));
  if (!counts_pages_)
    for (const Budget* k : kids_)
      u += static_cast<long long>(k->used()) - contrib(k->load_.load(std::memory_order_acquire), k->reserve_);
  return u > 0 ? static_cast<size_t>(u) : 0;  // racing charges may skew a live reading
}

bool Budget::check_invariants() const {
  std::lock_guard<std::mutex> lk(kids_mu_);
  long long load = static_cast<long long>(load_.load(std::memory_order_acquire));
  long long kids = 0;
  for (const Budget* k : kids_) {
    if (!k->check_invariants()) return false;
    kids += contrib(k->load_.load(std::memory_order_acquire), k->reserve_);
  }
  // direct = load - kids: what was charged at this level itself.
  if (!counts_pages_ && load - kids < 0) return false;
  if (peak() < static_cast<size_t>(load)) return false;
  return true;
}

}  // namespace sgv
