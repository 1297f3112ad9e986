#!/usr/bin/env python3
"""Figures for bench/throttle.sh from the raw logs of one run.

    throttle_analyze.py pacing ARRIVALS LOADGEN_OUT RPS BURST [RECORDS]
    throttle_analyze.py pacing-header
    throttle_analyze.py fairness ARRIVALS LOADGEN_OUT RECORDS RPS JAIN KEY...

ARRIVALS: bench/arrivals_origin.c's log ("<monotonic us> <authorization>").
LOADGEN_OUT: bench/loadgen.c's stdout ("start T", "stop T", "group ...").
RECORDS: loadgen's -o file ("NAME T_SEND_US T_DONE_US STATUS"). For
pacing it is optional: the send times tell when each request could have
been dispatched at the earliest (its eligibility), for "late".
Times are CLOCK_MONOTONIC microseconds, shared by both programs.
JAIN: "jain" prints Jain's index over the keys' throughput (meaningful
when every key is backlogged), "nojain" does not.
Only arrivals between loadgen's start and stop lines count.
"""
import math
import sys


def pct(sorted_v, p):
    """Nearest-rank percentile of an ascending list (p in 0..100)."""
    if not sorted_v:
        return float("nan")
    k = max(0, min(len(sorted_v) - 1, math.ceil(p / 100 * len(sorted_v)) - 1))
    return sorted_v[k]


def loadgen_times(path):
    start = stop = None
    groups = {}
    with open(path) as f:
        for line in f:
            w = line.split()
            if not w:
                continue
            if w[0] == "start":
                start = int(w[1])
            elif w[0] == "stop":
                stop = int(w[1])
            elif w[0] == "group":
                groups[w[1]] = dict(kv.split("=") for kv in w[2:])
    if start is None or stop is None:
        sys.exit("throttle_analyze: no start/stop line in %s" % path)
    return start, stop, groups


def arrivals(path, start, stop):
    out = []
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) < 2:
                continue
            t = int(w[0])
            if start <= t < stop:
                out.append((t, w[1]))
    out.sort()
    return out


def windows_over(ts, w_us, limit):
    """(windows [t_i, t_i + W) holding more than limit arrivals, max held).

    The fullest window of any length starts at an arrival, so windows
    starting at each arrival are the ones to check."""
    over = 0
    worst = 0
    j = 0
    n = len(ts)
    for i in range(n):
        if j < i:
            j = i
        while j < n and ts[j] < ts[i] + w_us:
            j += 1
        c = j - i
        worst = max(worst, c)
        if c > limit + 1e-9:
            over += 1
    return over, worst


def every_window(ts, T, burst):
    """How early each arrival that closes a window, of any length W,
    holding more than rps*W + burst arrivals came, us, ascending.

    Arrival k closes one iff it comes before a GCRA at the exact interval
    T with tolerance (burst - 1) T allows it: the GCRA's TAT before k is
    the largest t_j + (k - j) T, so one pass checks every j < k."""
    tat = -math.inf
    early = []
    for t in ts:
        e = tat - (burst - 1) * T - t
        if e > 1e-6:
            early.append(e)
        tat = max(tat, t) + T
    return sorted(early)


def pacing_header():
    print("%7s %6s %9s %8s | %8s %8s %8s %8s | %8s %8s %8s | %s" % (
        "rps", "n", "achieved", "x conf",
        "dev p50", "dev p99", "dev max", "dev min",
        "gap p50", "gap p99", "gap min",
        "windows over rps*W+burst (W=1s; W=10/rps)"))
    print("%7s %6s %9s %8s | %8s %8s %8s %8s | %8s %8s %8s |" % (
        "", "", "req/s", "", "ms", "ms", "ms", "ms", "ms", "ms", "ms"))


def pacing(arr_path, lg_path, rps, burst, rec_path=None):
    rps = float(rps)
    burst = int(burst)
    start, stop, _ = loadgen_times(lg_path)
    a = arrivals(arr_path, start, stop)
    ts = [t for t, _ in a]
    n = len(ts)
    if n < 2:
        print("%7g %6d  (too few arrivals)" % (rps, n))
        return
    T = 1e6 / rps
    t0 = ts[0]
    span = ts[-1] - t0
    achieved = (n - 1) / (span / 1e6)
    dev = sorted((t - (t0 + k * T)) / 1000 for k, t in enumerate(ts))
    gaps = sorted((ts[k + 1] - ts[k]) / 1000 for k in range(n - 1))
    res = []
    for w_s in (1.0, 10.0 / rps):
        over, worst = windows_over(ts, w_s * 1e6, rps * w_s + burst)
        res.append("%d (max %d / %g)" % (over, worst, rps * w_s + burst))
    print("%7g %6d %9.2f %8.4f | %8.2f %8.2f %8.2f %8.2f | %8.3f %8.3f %8.3f"
          " | %s; %s" % (
              rps, n, achieved, achieved / rps,
              pct(dev, 50), pct(dev, 99), dev[-1], dev[0],
              pct(gaps, 50), pct(gaps, 99), gaps[0], res[0], res[1]))
    # The drift: how much later than T each dispatch comes, on average.
    excess = span / (n - 1) - T
    extra = ("        mean interval %.1f us (ideal %.1f us, %+.1f us per "
             "dispatch); gap max %.3f ms" % (span / (n - 1), T, excess,
                                            gaps[-1]))
    print(extra)
    early = every_window(ts, T, burst)
    print("        every W: %d of %d arrivals close a window over rps*W +"
          " burst%s" % (len(early), n, "" if not early else
                        ", early against the limit by p50 %.3f  max %.3f ms"
                        % (pct(early, 50) / 1000, early[-1] / 1000)))
    # Lateness against the limit: how long after the limit allowed it
    # each dispatch arrived. Unlike dev, a late dispatch is not counted
    # again in every later one. The limit allows arrival k at
    # arrival k-1 + T (one interval after the previous one; with burst
    # b > 1 the GCRA allows sooner, so values < 0 are catch-up the burst
    # permits), or later when the request itself was not there yet.
    elig = eligibility(rec_path, start, stop) if rec_path else []
    late = []
    binding = 0
    for k in range(1, n):
        allowed = ts[k - 1] + T
        if k < len(elig) and elig[k] > allowed:
            allowed = elig[k]
            binding += 1
        late.append((ts[k] - allowed) / 1000)
    late.sort()
    if elig:
        known = ("eligible time known for %d of %d, from loadgen's send"
                 " times; later than arrival k-1 + T for %d" % (
                     max(0, min(len(elig), n) - 1), n - 1, binding))
    else:
        known = "eligibility unknown: arrival k-1 + T"
    print("        late vs the limit, ms: p50 %.3f  p99 %.3f  max %.3f"
          "  min %.3f   (%s)" % (pct(late, 50), pct(late, 99), late[-1],
                                 late[0], known))


def eligibility(rec_path, start, stop):
    """Send times of the requests that were answered, ascending.

    One queue, first in first out: the k-th request sent is the k-th
    dispatched, so its send time is the earliest its dispatch could be
    (a lower bound: the proxy reads it some tens of us later). Requests
    still in flight at the stop have no record; they are the last ones,
    so the list is a prefix of the dispatch order."""
    v = []
    with open(rec_path) as f:
        for line in f:
            w = line.split()
            if len(w) < 4:
                continue
            t = int(w[1])
            if start <= t < stop:
                v.append(t)
    v.sort()
    return v


def jain(xs):
    s = sum(xs)
    q = sum(x * x for x in xs)
    return s * s / (len(xs) * q) if q > 0 else float("nan")


def fairness(arr_path, lg_path, rec_path, rps, want_jain, keys):
    rps = float(rps)
    start, stop, groups = loadgen_times(lg_path)
    a = arrivals(arr_path, start, stop)
    tag = {"Bearer_" + k: k for k in keys}
    secs = int((stop - start) // 1000000)
    counts = {k: [0] * max(secs, 1) for k in keys}
    other = 0
    for t, who in a:
        k = tag.get(who)
        if k is None:
            other += 1
            continue
        b = int((t - start) // 1000000)
        if b < secs:
            counts[k][b] += 1
    print("  dispatches per second (arrivals at the origin), by key:")
    print("    %-6s" % "second" + "".join("%7s" % k for k in keys) +
          "%8s" % "total")
    for b in range(secs):
        row = [counts[k][b] for k in keys]
        print("    %-6d" % (b + 1) + "".join("%7d" % x for x in row) +
              "%8d" % sum(row))
    # Steady state: leave out the first second (connections ramp up).
    steady = {k: sum(counts[k][1:]) / max(secs - 1, 1) for k in keys}
    tot = sum(steady.values())
    print("    %-6s" % "mean" + "".join("%7.1f" % steady[k] for k in keys) +
          "%8.1f" % tot + "   (seconds 2-%d)" % secs)
    print("    share " + "".join("%7.3f" % (steady[k] / tot if tot else 0)
                                 for k in keys) +
          "          aggregate %.1f req/s of %g configured" % (tot, rps))
    if want_jain == "jain":
        print("  Jain's index over %s (seconds 2-%d): %.4f" % (
            ", ".join(keys), secs, jain([steady[k] for k in keys])))
    if other:
        print("  (%d arrivals with another Authorization)" % other)

    lat = {k: [] for k in keys}
    status = {k: {} for k in keys}
    with open(rec_path) as f:
        for line in f:
            w = line.split()
            if len(w) < 4 or w[0] not in lat:
                continue
            lat[w[0]].append((int(w[2]) - int(w[1])) / 1000)
            status[w[0]][w[3]] = status[w[0]].get(w[3], 0) + 1
    print("  client latency (request sent -> response read), ms:")
    print("    %-4s %7s %8s %8s %8s %8s  %s" % (
        "key", "n", "p50", "p90", "p99", "max", "conns / errors / statuses"))
    for k in keys:
        v = sorted(lat[k])
        g = groups.get(k, {})
        st = ",".join("%s:%d" % kv for kv in sorted(status[k].items()))
        if v:
            print("    %-4s %7d %8.1f %8.1f %8.1f %8.1f  %s / %s / %s" % (
                k, len(v), pct(v, 50), pct(v, 90), pct(v, 99), v[-1],
                g.get("conns", "?"), g.get("errors", "?"), st))
        else:
            print("    %-4s %7d  (no response)  %s / %s" % (
                k, 0, g.get("conns", "?"), g.get("errors", "?")))


def main(argv):
    if len(argv) >= 2 and argv[1] == "pacing-header":
        pacing_header()
    elif len(argv) in (6, 7) and argv[1] == "pacing":
        pacing(*argv[2:])
    elif len(argv) >= 8 and argv[1] == "fairness":
        fairness(argv[2], argv[3], argv[4], argv[5], argv[6], argv[7:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
