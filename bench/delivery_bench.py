"""Asynchronous delivery throughput: API + ``lmsgate worker`` processes on PostgreSQL, delivering
completions through the real ``xapi`` connector to a simulated LRS that answers after 20 ms.

For one and then two workers (a fresh database each time) it measures two things:

* **throughput** (deliveries/s): N completions are posted with ``Prefer: respond-async`` while
  no worker runs, so they wait in the queue; then the workers start, and deliveries/s is the
  count over the time from the provider's first acceptance to its last. (Measured while the
  API is still posting, the figure would be the API's intake rate, not the workers'.)
* **end-to-end delay** p50/p99: with the workers running, M more completions are posted as
  fast as the API takes them; the delay of each is from its 202 to the provider's acceptance.

And it checks the per-account limits on the provider's side: the most requests it saw in
flight for one account (must not exceed the concurrency limit) and the busiest second of one
account in requests (the rate limit, when one is set). The xapi connector posts up to
``--batch`` statements per request (``LMSGATE_DELIVERY_BATCH_SIZE``); a request counts once
for the limits.

Usage: ``.venv/bin/python bench/delivery_bench.py [--completions 20000] [--latency-completions
3000] [--accounts 16] [--concurrency 8] [--batch 25] [--rate 0] [--latency 0.02] [--workers 1,2]``.
Needs PostgreSQL (``LMSGATE_TEST_POSTGRES_URL``, default the local server). The numbers depend
on the machine (the API, the workers, PostgreSQL and the simulator share it); say what else was
running.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import _pg_database
from delivery_cluster import cluster, wait_until
from simulators.lrs import LrsSimulator


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _accepted(sim: LrsSimulator) -> dict[str, float]:
    """Learner → when the provider accepted that learner's completion (one per learner)."""
    with sim.lock:
        return {st["actor"]["account"]["name"]: sim.accepted_at[sid] for sid, st in sim.stored.items()}


def run(workers: int, args: argparse.Namespace) -> dict[str, float]:
    with LrsSimulator(latency=args.latency) as sim:
        for url in _pg_database():
            env = {"LMSGATE_DELIVERY_ACCOUNT_CONCURRENCY": str(args.concurrency),
                   "LMSGATE_DELIVERY_ACCOUNT_RATE_PER_SECOND": str(args.rate),
                   "LMSGATE_DELIVERY_BATCH_SIZE": str(args.batch)}
            with cluster(Path(tempfile.mkdtemp()), url, sim, workers=0,
                         extra_env={**env, "LMSGATE_DELIVERY_IN_PROCESS_WORKER": "false"}) as c:
                c.env.update(env)
                accounts = [c.link_xapi(f"bench-{i}") for i in range(args.accounts)]

                def writes(prefix: str, n: int,
                           accounts: list[str] = accounts) -> list[tuple[str, str, dict[str, object]]]:
                    return [(accounts[i % len(accounts)], f"{prefix}-{i}",
                             {"learning_object_external_reference": f"course-{i % 97}",
                              "completed_at": "2024-05-01T12:00:00Z", "result": {"value": "Pass"}})
                            for i in range(n)]

                # Throughput: a queue of N, drained by workers started afterwards.
                backlog = writes("learner", args.completions)
                t0 = time.monotonic()
                answers = c.post_many(backlog, headers={"Prefer": "respond-async"})
                post_rate = len(backlog) / (time.monotonic() - t0)
                assert {a.status_code for a in answers} == {202}, {a.status_code for a in answers}
                for _ in range(workers):
                    c.start_worker()
                total = len(backlog)
                wait_until(lambda: sim.delivered_count() >= total, 1800, "every delivery", interval=0.05)
                accepted = _accepted(sim)
                elapsed = max(accepted.values()) - min(accepted.values())
                requests, batches = sim.requests, sim.batches

                # Delay: more posts while the workers run.
                time.sleep(1)
                live = writes("live", args.latency_completions)
                answers = c.post_many(live, headers={"Prefer": "respond-async"})
                assert {a.status_code for a in answers} == {202}, {a.status_code for a in answers}
                total = len(backlog) + len(live)
                wait_until(lambda: sim.delivered_count() >= total, 600, "every live delivery", interval=0.02)
                accepted = _accepted(sim)
                delays = [accepted[user] - answer.at for (_, user, _), answer in zip(live, answers, strict=True)]
                live_rate = len(live) / (max(a.at for a in answers) - min(a.at for a in answers))
                with sim.lock:
                    max_in_flight = max(sim.max_in_flight.values())
                    busiest = 0
                    for times in sim.arrivals.values():
                        per_second: dict[int, int] = {}
                        for at in times:
                            per_second[int(at)] = per_second.get(int(at), 0) + 1
                        busiest = max(busiest, *per_second.values())
                return {
                    "workers": workers, "completions": len(backlog), "posts_per_s": post_rate,
                    "deliveries_per_s": len(backlog) / elapsed if elapsed > 0 else float("inf"),
                    "statements_per_request": len(backlog) / max(1, requests), "batches": batches,
                    "live": len(live), "live_posts_per_s": live_rate,
                    "p50_delay_s": percentile(delays, 0.50), "p99_delay_s": percentile(delays, 0.99),
                    "mean_delay_s": statistics.fmean(delays), "max_in_flight_per_account": max_in_flight,
                    "busiest_second_per_account": busiest,
                }
    raise AssertionError("no PostgreSQL database")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--completions", type=int, default=20000, help="the queue drained for deliveries/s")
    parser.add_argument("--latency-completions", type=int, default=3000, help="posted live for the delays")
    parser.add_argument("--accounts", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=8, help="per-account limit")
    parser.add_argument("--batch", type=int, default=25, help="statements per provider request, at most")
    parser.add_argument("--rate", type=float, default=0.0, help="per-account calls/s; 0 for none")
    parser.add_argument("--latency", type=float, default=0.02, help="provider latency, seconds")
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    print(f"cpus={os.cpu_count()} load average before: {os.getloadavg()}")
    for workers in (int(w) for w in args.workers.split(",")):
        r = run(workers, args)
        print(f"workers={r['workers']}: drained {r['completions']} queued completions at "
              f"{r['deliveries_per_s']:.0f} deliveries/s (per worker {r['deliveries_per_s'] / workers:.0f}; "
              f"{r['statements_per_request']:.1f} statements per provider request) | "
              f"{r['live']} live posts at {r['live_posts_per_s']:.0f}/s: "
              f"delay p50={r['p50_delay_s'] * 1000:.0f} ms "
              f"p99={r['p99_delay_s'] * 1000:.0f} ms | limits held: max in flight per account="
              f"{r['max_in_flight_per_account']} (limit {args.concurrency}), busiest second per account="
              f"{r['busiest_second_per_account']} requests"
              + (f" (limit {args.rate:g}/s, burst {args.rate:g})" if args.rate else " (no rate limit set)")
              + f" | API accepted the queue at {r['posts_per_s']:.0f} posts/s", flush=True)
        assert r["max_in_flight_per_account"] <= args.concurrency, "the concurrency limit was exceeded"
        # A token bucket: one second's worth of burst on top of the rate.
        assert not args.rate or r["busiest_second_per_account"] <= 2 * args.rate, "the rate limit was exceeded"
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
