#!/usr/bin/env python3
"""merge_mem.py - merge the command-buffer cycle JSON files into one table.

Rows: workloads (cycle/<size>/<1t|2t>, mixed/<1t|2t>, pair/<size>/1t).
Columns: CPU ns/op per subject, minor faults/op of the SGV cache, and the
SGV cache's ratio to the ideal floor and to the best general allocator.
Then the libsgv targets, each marked met or not.
"""
import json
import sys

GENERAL = ["glibc", "glibc_tuned", "jemalloc", "tcmalloc", "mimalloc"]


def load(paths):
    # (subject, workload) -> list of (cpu ns, minflt/op), one per run (round)
    res = {}
    load_avg = []
    for p in paths:
        with open(p) as f:
            d = json.load(f)
        la = d.get("context", {}).get("load_avg")
        if la:
            load_avg.append(la)
        for b in d["benchmarks"]:
            name = b["name"]
            for suffix in ("/process_time", "/real_time"):
                if name.endswith(suffix):
                    name = name[: -len(suffix)]
            subject, workload = name.split("/", 1)
            ns = b["cpu_time"]
            unit = b.get("time_unit", "ns")
            ns *= {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[unit]
            # 2-thread rows: both threads' CPU time minus their waiting for
            # each other (the allocator's work, not the scheduler's).
            if "work_ns/op" in b:
                ns = b["work_ns/op"]
            res.setdefault((subject, workload), []).append((ns, b.get("minflt/op", float("nan"))))
    return res, load_avg


def fmt(ns):
    """CPU ns for the tables: one decimal below 100 ns, whole ns above."""
    return f"{ns:.1f}" if ns < 100 else f"{ns:.0f}"


def median(runs):
    """(median ns, worst minflt/op) over the rounds of one subject and row."""
    ns = sorted(r[0] for r in runs)
    mid = len(ns) // 2
    m = ns[mid] if len(ns) % 2 else (ns[mid - 1] + ns[mid]) / 2
    return (m, max(r[1] for r in runs))


def main(paths):
    runs, load_avg = load(paths)
    res = {k: median(v) for k, v in runs.items()}
    rounds = max(len(v) for v in runs.values())
    subjects = [s for s in ("sgv", "ideal", "ideal_tls", "ideal_vec") if any(x == s for x, _ in res)]
    subjects += [g for g in GENERAL if any(s == g for s, _ in res)]
    workloads = []
    for s, w in res:
        if w not in workloads:
            workloads.append(w)
    order = {"cycle": 0, "mixed": 1, "pair": 2}
    def size_of(w):
        for part in w.split("/"):
            if part[:-1].isdigit():
                return int(part[:-1]) * (1 << 20 if part[-1] == "M" else 1 << 10)
        return 0

    workloads.sort(key=lambda w: (order.get(w.split("/")[0], 9), w.endswith("2t"), size_of(w), w))

    hdr = ["workload"] + [f"{s} ns" for s in subjects] + ["sgv flt/op", "max flt/op (general)", "sgv/ideal", "sgv/best general", "best general"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    verdicts = []
    for w in workloads:
        row = [w]
        for s in subjects:
            v = res.get((s, w))
            row.append(fmt(v[0]) if v else "-")
        sgv = res.get(("sgv", w))
        ideal = res.get(("ideal", w))
        gen = [(res[(g, w)][0], g) for g in GENERAL if (g, w) in res]
        best = min(gen) if gen else None
        glibc = res.get(("glibc", w))
        genflt = max((res[(g, w)][1] for g in GENERAL if (g, w) in res), default=float("nan"))
        row.append(f"{sgv[1]:.3f}" if sgv else "-")
        row.append(f"{genflt:.2f}")
        row.append(f"{sgv[0] / ideal[0]:.2f}" if sgv and ideal else "-")
        row.append(f"{sgv[0] / best[0]:.2f}" if sgv and best else "-")
        row.append(best[1] if best else "-")
        print("| " + " | ".join(row) + " |")
        if sgv:
            verdicts.append((w, sgv, ideal, best, glibc))

    if rounds > 1:
        print()
        print(f"Per round (CPU ns; the table above shows the median of {rounds}):")
        print()
        print("| workload | " + " | ".join(subjects) + " |")
        print("|" + "---|" * (len(subjects) + 1))
        for w in workloads:
            cells = [", ".join(fmt(r[0]) for r in runs.get((s, w), [])) or "-" for s in subjects]
            print(f"| {w} | " + " | ".join(cells) + " |")
    print()
    if load_avg:
        lo = min(la[0] for la in load_avg)
        hi = max(la[0] for la in load_avg)
        print(f"load average (1 min) at the start of each executable: {lo:.1f}-{hi:.1f} (2 cores, shared: figures are noisy)")
    print()
    print("Targets (SGV cache):")

    def mark(ok):
        return "met" if ok else "NOT met"

    flt_bad = [w for w, s, *_ in verdicts if s[1] > 0.001]
    print(f"- zero minor faults/op in steady state at every size: {mark(not flt_bad)}" + (f" (faults in {', '.join(flt_bad)})" if flt_bad else ""))
    for w, s, ideal, best, glibc in verdicts:
        kind = w.split("/")[0]
        if kind == "cycle":
            r_ideal = s[0] / ideal[0] if ideal else float("nan")
            ok_ideal = r_ideal <= 1.10
            ok_best = best is None or s[0] <= best[0]
            print(f"- {w}: within 10% of ideal ({r_ideal:.2f}x): {mark(ok_ideal)}; not slower than best general"
                  f" ({best[1] if best else '-'} {best[0] if best else 0:.0f} ns): {mark(ok_best)}")
        if kind == "mixed" or (kind == "cycle" and w.endswith("2t")):
            if best and glibc:
                rb = best[0] / s[0]
                rg = glibc[0] / s[0]
                print(f"- {w}: >= 1.3x faster than best general ({rb:.2f}x): {mark(rb >= 1.3)}; >= 30x faster than glibc ({rg:.1f}x): {mark(rg >= 30)}")
        if kind == "pair":
            print(f"- {w}: alloc+free pair <= 30 ns ({s[0]:.1f} ns): {mark(s[0] <= 30)}")


if __name__ == "__main__":
    main(sys.argv[1:])
