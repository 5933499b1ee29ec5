"""Background delivery of writes: durable, retried with backoff, dead-lettered with a reason.

    operations.py  which writes can be delivered later, how each is stored and replayed
    policy.py      backoff, account pauses, what counts as permanent, the per-account limits
    drain.py       draining one account: the unit of work of every runner
    embedded.py    the runner inside `lmsgate serve` on SQLite
    jobs.py        procrastinate tasks for `lmsgate worker` processes on PostgreSQL
    runtime.py     picks and starts the right one for a process
    schema.py      procrastinate's tables, installed by lmsgate's migrations

The API side (accepting a write as a delivery, the Delivery API) is
:mod:`lmsgate.service.deliveries`; the SQL is :mod:`lmsgate.store.deliveries`.
"""
