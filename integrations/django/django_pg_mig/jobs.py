"""
django_pg_mig.jobs -- following a pg_mig job from Django: waiting with
progress lines, the error a job that did not succeed raises, and the text
that ``migctl status`` prints, for the management commands.

A *job* is one row of pg_mig's ``mig_jobs`` view: a backfill, a delete or a
schema step that pg_mig's background worker runs; Django only starts it,
watches it and controls it.
"""

import json
import sys
import time

from django.conf import settings
from django.core.management.base import CommandError

from . import sql
from .errors import (FINAL_STATES, Interrupted, JobFailed, JobTimeout,  # noqa: F401 (re-exported)
                     NotSupported)  # noqa: F401


def format_count(n):
    """format_count: 1234567 -> '1,234,567' (like migctl)."""
    return "{:,}".format(int(n))


def format_rate(v):
    """format_rate: rows per second as migctl prints them (120.0k, 1.2M)."""
    v = float(v or 0)
    if v >= 1e6:
        return "%.1fM" % (v / 1e6)
    if v >= 1e3:
        return "%.1fk" % (v / 1e3)
    return "%.0f" % v


def format_short_rate(v):
    """format_short_rate: 120k, 9.5k, 1.2M, 800 -- for progress lines."""
    v = float(v or 0)
    if v >= 1e6:
        return "%.1fM" % (v / 1e6)
    if v >= 1e4:
        return "%.0fk" % (v / 1e3)
    if v >= 1e3:
        return "%.1fk" % (v / 1e3)
    return "%.0f" % v


def format_eta(seconds):
    """format_eta: seconds -> 'M:SS' or 'H:MM:SS'; '-' when unknown (like migctl)."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s >= 3600:
        return "%d:%02d:%02d" % (s // 3600, s // 60 % 60, s % 60)
    return "%d:%02d" % (s // 60, s % 60)


def progress_line(doing, job):
    """
    progress_line is one line about a running job, e.g.
    '  Backfilling shop_order: 45 % 450,000/1,000,000 rows, 120k rows/s, ETA 0:05'.
    """
    parts = []
    head = ""
    if job["progress"] is not None:
        head = "%d %% " % int(float(job["progress"]) * 100)
    if job["rows_total"] is not None:
        head += "%s/%s rows" % (format_count(job["rows_done"]),
                                format_count(job["rows_total"]))
    elif job["rows_done"]:
        head += "%s rows" % format_count(job["rows_done"])
    if head:
        parts.append(head.strip())
    if job["state"] == "running" and job["rows_per_sec"]:
        parts.append("%s rows/s" % format_short_rate(job["rows_per_sec"]))
    if job["eta_seconds"] is not None:
        parts.append("ETA %s" % format_eta(job["eta_seconds"]))
    if job["state"] != "running":
        parts.append(job["state"])
    if job.get("step"):
        parts.append(job["step"])
    if job["throttled"]:
        parts.append("waiting: %s" % job["throttled"])
    return "  %s: %s" % (doing, ", ".join(parts) if parts else job["state"])


# How often a waiting client looks at the job.  It reads mig_jobs (one short
# statement) and sleeps in between, instead of sitting in mig_wait(): a
# statement that waits holds a snapshot, and so the xmin horizon, while it
# waits.
POLL_SECONDS = 0.5


def wait_for_job(connection, job_id, doing, timeout=None, hint=None, out=None,
                 new_line=False, timeout_hint=None, interrupt_hint=None):
    """
    wait_for_job follows job JOB_ID until it ends, printing a progress line
    at most every PG_MIG_PROGRESS_INTERVAL seconds (default 5), and raises
    JobFailed (with HINT) unless it ends succeeded, JobTimeout (with
    TIMEOUT_HINT) when TIMEOUT seconds pass first, and Interrupted (with
    INTERRUPT_HINT) on Ctrl-C.  DOING names the work ('Backfilling
    shop_order').  NEW_LINE: the first line must end the line migrate has
    begun ("  Applying app.0003_x...").  The caller must not be in a
    transaction block: each look at the job is a statement of its own, in
    autocommit, and none stays open in between.
    """
    if connection.in_atomic_block:
        raise CommandError("cannot wait for pg_mig job %s inside a transaction "
                           "block: the job's progress would never be seen" % job_id)
    out = out or sys.stdout
    show = getattr(settings, "PG_MIG_PROGRESS", True)
    interval = float(getattr(settings, "PG_MIG_PROGRESS_INTERVAL", 5))
    start = time.monotonic()
    next_line = start + interval
    first = new_line
    try:
        while True:
            job = sql.job_rows(connection, job_id)[0]
            now = time.monotonic()
            if job["state"] in FINAL_STATES:
                break
            if timeout is not None and now - start >= timeout:
                break
            if show and now >= next_line:
                out.write(("\n" if first else "") + progress_line(doing, job) + "\n")
                out.flush()
                first = False
                next_line = now + interval
            pause = min(POLL_SECONDS, max(next_line - now, 0.01))
            if timeout is not None:
                pause = min(pause, max(timeout - (now - start), 0.01))
            time.sleep(pause)
    except KeyboardInterrupt:
        if first:
            out.write("\n")
            out.flush()
        raise Interrupted(interrupted_message(job_id, doing, interrupt_hint)) from None
    if job["state"] != "succeeded":
        if first:
            out.write("\n")   # the error (on stderr) starts a line of its own
            out.flush()
        if job["state"] not in FINAL_STATES:
            raise JobTimeout(job_id, job["state"], doing, timeout, timeout_hint or (
                "The job goes on in the server: wait for it again with \"manage.py "
                "mig_wait %s\"." % job_id))
        raise JobFailed(job_id, job["state"], job["last_error"], doing, hint)
    if show:
        took = format_eta(time.monotonic() - start)
        done = ""
        if job["rows_done"]:
            done = "%s rows, " % format_count(job["rows_done"])
        out.write(("\n" if first else "") +
                  "  %s: done, %sin %s\n" % (doing, done, took))
        out.flush()
    return job


def interrupted_message(job_id, doing, hint=None):
    """interrupted_message is the one line Ctrl-C prints while job JOB_ID is followed."""
    if job_id is None:
        return "%s: interrupted; a pg_mig job it started goes on in the server; %s" % (
            doing, hint or "run migrate again to follow it")
    return "%s: pg_mig job %s goes on in the server; %s" % (
        doing, job_id, hint or "run migrate again to follow it (or stop it with "
        "\"manage.py mig_cancel %s\")" % job_id)


def format_bytes(n):
    """format_bytes: as migctl's FormatBytes (512 bytes, 1.5 kB, 64 MB)."""
    n = float(n)
    units = ("bytes", "kB", "MB", "GB", "TB", "PB")
    u = 0
    while n >= 1024 and u < len(units) - 1:
        n /= 1024
        u += 1
    if u == 0:
        return "%.0f bytes" % n
    return ("%.1f %s" if n < 10 else "%.0f %s") % (n, units[u])


def status_table(jobs, lag_bytes):
    """
    status_table is the text of ``migctl status``: one row per job, columns
    aligned two spaces apart.
    """
    header = ["JOB", "TABLE", "KIND", "STATE", "PROGRESS", "ROWS", "ROWS/S", "ETA", "BATCH",
              "LAG", "THROTTLED", "STEP", "KEPT"]
    # job keys (0.4): a KEY column only when a job shown has one, as migctl
    keys = any(j.get("job_key") for j in jobs)
    if keys:
        header.append("KEY")
    lag = format_bytes(lag_bytes)  # as the throttle reasons write sizes (0.4)
    rows = []
    for j in jobs:
        pct = "%.1f%%" % ((float(j["progress"]) if j["progress"] is not None else 0.0) * 100)
        rows.append([
            str(j["job_id"]), j["relation"], j["kind"] or "", j["state"], pct,
            format_count(j["rows_done"]), format_rate(j["rows_per_sec"]),
            format_eta(j["eta_seconds"]), str(j["batch_size"]), lag, j["throttled"] or "-",
            j["step"] or "-",
            "-" if j["kept_bytes"] is None else format_bytes(j["kept_bytes"])]
            + ([j.get("job_key") or "-"] if keys else []))
    widths = [len(h) for h in header]
    for r in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, r)]
    lines = []
    for r in [header] + rows:
        cells = [c + " " * (w - len(c) + 2) for c, w in zip(r[:-1], widths)]
        lines.append("".join(cells) + r[-1])
    return "\n".join(lines) + "\n"


def status_json(jobs, lag_bytes):
    """status_json is the text of ``migctl status --json``: the same keys, in its order."""
    out = []
    for j in jobs:
        out.append(json.dumps({
            "job_id": j["job_id"],
            "relation": j["relation"],
            "state": j["state"],
            "kind": j["kind"] or "",
            "step": j["step"],
            "rows_done": j["rows_done"],
            "rows_total": j["rows_total"],
            # numbers with 6 decimals, as migctl prints them (std::to_string)
            "progress": float("%f" % j["progress"]) if j["progress"] is not None else None,
            "rows_per_sec": float("%f" % (j["rows_per_sec"] or 0)),
            "eta_seconds": j["eta_seconds"],
            "batch_size": j["batch_size"],
            "throttled": j["throttled"],
            "last_error": j["last_error"],
            "owner": j["owner"],
            "kept_bytes": j["kept_bytes"],
            "job_key": j.get("job_key"),
            # 0.4: the replicas' lag now, and the job's limit under its own name
            "lag_bytes": lag_bytes,
            "max_lag_bytes": j["max_lag_bytes"],
            "throttled_seconds": float("%f" % (j["throttled_seconds"] or 0)),
        }))
    return "[" + ",\n ".join(out) + "]\n"


def print_note(text, out=None, new_line=False):
    """print_note writes one line (NEW_LINE: first end migrate's "Applying ..." line)."""
    out = out or sys.stdout
    if getattr(settings, "PG_MIG_PROGRESS", True):
        out.write(("\n" if new_line else "") + "  %s\n" % text)
        out.flush()


def print_started(job_id, doing, out=None, new_line=False):
    """print_started says that a job was started and not waited for (wait=False)."""
    print_note("%s: started pg_mig job %s, not waiting for it (follow it with "
               "\"manage.py mig_wait %s\")" % (doing, job_id, job_id), out, new_line)
