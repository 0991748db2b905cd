// sgv/budget.hpp - hierarchical memory budgets (global > LUN > session).
//
// A budget is a limit node. charge(n) is granted whole at every level up the
// chain or refused whole (nothing stays charged). A child's guaranteed
// reserve is set aside in its parent: below the reserve the child's use costs
// the parent nothing more, so siblings can never eat it.
//
// Invariant (check_invariants, at quiescence):
//   load == direct + sum over children of max(child.load, child.reserve),
//     direct (bytes charged at this very level) >= 0
//   load <= limit after every successful charge
//   used == direct + sum over children of child.used: every byte granted
//     here and below and not yet uncharged
// Only load is kept per level (one CAS per level per charge); used is
// derived from it on demand, so reading it walks the subtree.
//
// A second limit outside the tree ("also", optional): a budget can name
// one more budget that every charge to it must also fit, charged after its
// own chain and rolled back whole when it refuses. sgvd gives each session
// one child budget per LUN (under that LUN's budget) that all name the
// session's own total budget as their "also", so a command is held to both
// its LUN's limit and its session's limit although a tree node has one
// parent. The also budget must be a root (no parent) and outlive this one.
//
// A budget given to a Pool as its global budget counts the pages the pool
// holds (cached + in use); charges from its descendants stop below it,
// because every in-use byte they count is already one of those pages.
//
// Thread-safety: all members lock-free (CAS per level); a budget must outlive
// its children and every vector charged to it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace sgv {

struct BudgetStats {
  size_t limit = 0;
  size_t reserve = 0;
  size_t used = 0;  // bytes in use, this budget and below
  size_t peak = 0;  // highest load (in use + children's reserves)
  uint64_t refusals = 0;  // charges refused at this level
  uint64_t waits = 0;     // refusals here that led to a queued waiter
};

class Budget {
 public:
  // limit 0 = unlimited. reserve must fit in the parent's limit.
  Budget(Budget* parent, size_t limit_bytes, size_t reserve_bytes = 0, const char* name = "",
         Budget* also = nullptr);
  ~Budget();  // asserts nothing is charged and no children remain
  Budget(const Budget&) = delete;
  Budget& operator=(const Budget&) = delete;

  // Charge `bytes` here and up the chain. 0 or -ENOMEM (nothing held).
  // Budget: one CAS per level, stops early where a reserve absorbs it.
  int charge(size_t bytes);
  void uncharge(size_t bytes);
  // Like charge, but on refusal reports the budget that refused.
  int charge(size_t bytes, Budget** refused_by);

  // Bytes in use here and below. Walks the children: for statistics.
  size_t used() const;
  // Highest load seen (in use plus children's untouched reserves).
  size_t peak() const { return peak_.load(std::memory_order_relaxed); }
  size_t limit() const { return limit_; }
  size_t reserve() const { return reserve_; }
  uint64_t refusals() const { return refusals_.load(std::memory_order_relaxed); }
  uint64_t waits() const { return waits_.load(std::memory_order_relaxed); }
  Budget* parent() const { return parent_; }
  Budget* also() const { return also_; }
  const std::string& name() const { return name_; }
  BudgetStats stats() const;
  // Appends key=value lines prefixed "budget.<name>.".
  void dump(std::string* out) const;
  // True when the invariants above hold; call at quiescence.
  bool check_invariants() const;

  // Internal (pool): mark as a pool's global budget; count a wait.
  void set_counts_pages(bool v);
  bool counts_pages() const { return counts_pages_; }
  void note_wait() { waits_.fetch_add(1, std::memory_order_relaxed); }

 private:
  // Applies a signed change d to load_ here and passes the resulting change
  // of max(load, reserve) on to the parent; refuses (rolling back) when a
  // positive d would pass a limit and `check`. first: this is the level
  // charged (a page-counting budget is only charged directly).
  static int adjust(Budget* b, long long d, bool check, bool first, Budget** refused);

  Budget* const parent_;
  Budget* const also_;  // second limit every charge here must also fit (root)
  const size_t limit_;
  const size_t reserve_;
  const std::string name_;
  bool counts_pages_ = false;  // set before use (configuration time)
  // load_: what counts against limit_ (see invariant). CAS; pairs with itself.
  std::atomic<size_t> load_{0};
  std::atomic<size_t> peak_{0};  // relaxed CAS-max: statistics
  std::atomic<uint64_t> refusals_{0};
  std::atomic<uint64_t> waits_{0};
  mutable std::mutex kids_mu_;     // guards kids_ (configuration time only)
  std::vector<Budget*> kids_;
};

}  // namespace sgv
