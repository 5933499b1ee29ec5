"""Asynchronous delivery throughput: API + ``lmsgate worker`` processes on PostgreSQL, delivering
completions through the real ``xapi`` connector to a simulated LRS that answers after 20 ms.

For one and then two workers it starts the workers, posts N completions with ``Prefer:
respond-async`` spread over several accounts as fast as the API takes them, and measures until
the simulator holds every statement:

* deliveries/s: statements accepted by the provider per second, first to last;
* end-to-end delay p50/p99: from the 202 to the provider's acceptance of that completion;
* the per-account limits: the most requests the simulator saw in flight for one account (must
  not exceed the concurrency limit) and the busiest second of one account (the rate limit,
  when one is set).

Usage: ``.venv/bin/python bench/delivery_bench.py [--completions 6000] [--accounts 8]
[--concurrency 8] [--rate 0] [--latency 0.02]``. Needs PostgreSQL (``LMSGATE_TEST_POSTGRES_URL``,
default the local server). The numbers depend on the machine; say what else was running.
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


def run(workers: int, args: argparse.Namespace) -> dict[str, float]:
    with LrsSimulator(latency=args.latency) as sim:
        for url in _pg_database():
            env = {"LMSGATE_DELIVERY_ACCOUNT_CONCURRENCY": str(args.concurrency),
                   "LMSGATE_DELIVERY_ACCOUNT_RATE_PER_SECOND": str(args.rate)}
            with cluster(Path(tempfile.mkdtemp()), url, sim, workers=0,
                         extra_env={**env, "LMSGATE_DELIVERY_IN_PROCESS_WORKER": "false"}) as c:
                c.env.update(env)
                accounts = [c.link_xapi(f"bench-{i}") for i in range(args.accounts)]
                writes = [(accounts[i % len(accounts)], f"learner-{i}",
                           {"learning_object_external_reference": f"course-{i % 97}",
                            "completed_at": "2024-05-01T12:00:00Z", "result": {"value": "Pass"}})
                          for i in range(args.completions)]
                for _ in range(workers):
                    c.start_worker()
                time.sleep(3)  # the workers connect and register
                t0 = time.monotonic()
                answers = c.post_many(writes, headers={"Prefer": "respond-async"})
                post_rate = len(writes) / (time.monotonic() - t0)
                assert {a.status_code for a in answers} == {202}, {a.status_code for a in answers}
                wait_until(lambda: sim.delivered_count() >= len(writes), 1800, "every delivery", interval=0.05)
                with sim.lock:
                    accepted = {st["actor"]["account"]["name"]: sim.accepted_at[sid] for sid, st in sim.stored.items()}
                    max_in_flight = max(sim.max_in_flight.values())
                    busiest = 0
                    for times in sim.arrivals.values():
                        per_second: dict[int, int] = {}
                        for at in times:
                            per_second[int(at)] = per_second.get(int(at), 0) + 1
                        busiest = max(busiest, *per_second.values())
                first, last = min(accepted.values()), max(accepted.values())
                elapsed = last - first
                # End to end: from the 202 answer to the provider accepting that completion.
                delays = [accepted[user] - answer.at for (_, user, _), answer in zip(writes, answers)]
                return {
                    "workers": workers, "completions": len(writes), "posts_per_s": post_rate,
                    "deliveries_per_s": len(writes) / elapsed if elapsed > 0 else float("inf"),
                    "p50_delay_s": percentile(delays, 0.50), "p99_delay_s": percentile(delays, 0.99),
                    "mean_delay_s": statistics.fmean(delays), "max_in_flight_per_account": max_in_flight,
                    "busiest_second_per_account": busiest,
                }
    raise AssertionError("no PostgreSQL database")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--completions", type=int, default=6000)
    parser.add_argument("--accounts", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=8, help="per-account limit")
    parser.add_argument("--rate", type=float, default=0.0, help="per-account calls/s; 0 for none")
    parser.add_argument("--latency", type=float, default=0.02, help="provider latency, seconds")
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    print(f"cpus={os.cpu_count()} load average before: {os.getloadavg()}")
    for workers in (int(w) for w in args.workers.split(",")):
        r = run(workers, args)
        print(f"workers={r['workers']} completions={r['completions']} "
              f"deliveries/s={r['deliveries_per_s']:.0f} (per worker {r['deliveries_per_s'] / workers:.0f}) "
              f"p50={r['p50_delay_s']:.2f}s p99={r['p99_delay_s']:.2f}s "
              f"max in flight per account={r['max_in_flight_per_account']} (limit {args.concurrency}) "
              f"busiest second per account={r['busiest_second_per_account']}"
              + (f" (limit {args.rate:g}/s)" if args.rate else "")
              + f"  [API accepted {r['posts_per_s']:.0f} posts/s]", flush=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
