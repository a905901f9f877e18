"""Runs beyond one machine, on Procrastinate (a PostgreSQL task queue): ``csvpg run
--queue`` queues one task a file and a finishing task (:mod:`csvpg.worker.enqueue`),
``csvpg worker`` takes them on any machine that reaches the database
(:mod:`csvpg.worker.process`), and ``[schedule]`` jobs are queued by the workers on
their ticks (:mod:`csvpg.worker.schedule`).

A file's task loads it exactly as a local run does (csvpg.engine.fileload: data,
rejects, history and manifest in one transaction), so a task that runs twice (its worker
died after the commit) finds the file in the manifest and loads nothing. The run's row
in ``csvpg.runs`` is written when it is queued and ended by the finishing task; its SQL
is in :mod:`csvpg.pg.queue`.
"""

from csvpg.worker.enqueue import cancel_run, enqueue_run

__all__ = ["cancel_run", "enqueue_run"]
