"""The command line: argparse → ``main(argv) -> exit code``. The only place that
prints errors; the library raises them."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from csvpg import __version__
from csvpg.errors import CsvpgError, SpecError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


EXIT_CODES = """exit codes:
  0    every file loaded (rejects within each file's max_rejects)
  1    a file failed, nothing was found, or the database is unreachable
  2    a usage or job-file error
  130  cancelled by Ctrl-C; 143 cancelled by SIGTERM"""

#: One example a command, shown at the end of its --help.
EXAMPLES = {
    "run": "csvpg run jobs/quickstart.toml --dry-run",
    "runs": "csvpg runs 3f2a --rejects",
    "rejects": "csvpg rejects 3f2a --export fix.csv; csvpg rejects 3f2a --replay fix.csv",
    "serve": "CSVPG_API_TOKEN=… csvpg serve --jobs jobs/ --port 8080",
    "check": "csvpg check jobs/quickstart.toml",
    "plugins": "csvpg plugins",
    "infer": "csvpg infer exports/orders.csv -o jobs/orders.toml --explain",
    "dashboard": "csvpg dashboard --jobs jobs/",
    "db": "csvpg db url",
    "schema": "csvpg schema > job.schema.json",
    "completion": 'eval "$(csvpg completion bash)"',
    "worker": "csvpg worker --dsn postgresql://loader@db/warehouse --jobs jobs/",
    "workers": "csvpg workers --dsn postgresql://loader@db/warehouse",
    "schedules": "csvpg schedules --jobs jobs/",
    "connections": "csvpg connections test warehouse --jobs jobs/",
}


class _Help(argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default, when it has one worth saying."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" not in text
            and default not in (None, False, [], argparse.SUPPRESS)
            and action.option_strings
        ):
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> Any:  # usage errors are exit code 2, as documented
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _at_least(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be {low} or more, not {value}")
        return value

    parse.__name__ = f"number ≥ {low}"  # argparse names the type in its message
    return parse


def _port(text: str) -> int:
    value = _at_least(1)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a TCP port is 1 to 65535, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The commands, each with its help; each one's options come from its own function."""
    parser = _Parser(
        prog="csvpg",
        description="Load CSV files into PostgreSQL, declaratively.",
        epilog=EXIT_CODES,
    )
    parser.add_argument("--version", action="version", version=f"csvpg {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _run_options(sub.add_parser("run", help="run a job"))
    _runs_options(sub.add_parser("runs", help="the run history: recent runs, or one run's files"))
    _rejects_options(
        sub.add_parser("rejects", help="a run's rejects: list, export to fix, replay fixed")
    )
    _serve_options(sub.add_parser("serve", help="the HTTP API for automation (n8n, cron, CI)"))
    _check_options(
        sub.add_parser("check", help="validate a job and show its plan, writing nothing")
    )
    sub.add_parser("plugins", help="list installed plugins")
    _infer_options(sub.add_parser("infer", help="guess column types and write a job for a file"))
    _dashboard_options(
        sub.add_parser("dashboard", help="past runs, their files and rejects; start a job")
    )
    _worker_options(
        sub.add_parser("worker", help="take queued files (csvpg run --queue) and schedules")
    )
    p = sub.add_parser("workers", help="the live workers of a queue database")
    p.add_argument("--dsn", help="the queue database (default: embedded)")
    p = sub.add_parser("schedules", help="each scheduled job's next run")
    p.add_argument("--jobs", default="jobs", metavar="DIR", help="the jobs directory")
    _connections_options(
        sub.add_parser("connections", help="the named connections (connections.toml); test one")
    )
    p = sub.add_parser("db", help="the embedded PostgreSQL")
    p.add_argument(
        "action", choices=["start", "stop", "status", "url"], help="url prints its address"
    )
    p = sub.add_parser("schema", help="print the JSON Schema of job files, for editors")
    p.add_argument(
        "--builtin", action="store_true", help="csvpg's own plugins only (the shipped schema)"
    )
    p = sub.add_parser("completion", help="print a shell completion script")
    p.add_argument("shell", choices=["bash", "zsh", "fish"], help="the shell to complete in")
    for name, command in sub.choices.items():
        command.epilog = f"example:\n  {EXAMPLES[name]}" if name in EXAMPLES else None
    return parser


def _connections_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action",
        nargs="?",
        choices=["list", "test"],
        default="list",
        help="list them (masked), or test NAME: connect and say what is there",
    )
    p.add_argument("name", nargs="?", help="the connection to test")
    p.add_argument(
        "--jobs",
        default="jobs",
        metavar="DIR",
        help="the jobs folder: its connections.toml, then $CSVPG_CONNECTIONS",
    )


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("job", help="the job's TOML file")
    p.add_argument("--dsn", help="PostgreSQL URL; beats [database] dsn")
    p.add_argument("--dry-run", action="store_true", help="load each file, then roll it back")
    p.add_argument(
        "--force",
        action="store_true",
        help="load every file, even those the manifest says are unchanged",
    )
    p.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="print only errors and the totals")
    p.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="json: one JSON object per event, a line each, for log shippers",
    )
    p.add_argument("--tui", action="store_true", help="watch the run in the dashboard")
    p.add_argument(
        "--queue",
        action="store_true",
        help="queue the run for csvpg worker (one task a file) and print its id; "
        "--dsn is then the queue database",
    )
    p.add_argument(
        "--queue-name",
        metavar="NAME",
        help="the queue to put the run on (implies --queue; default: csvpg)",
    )
    p.add_argument(
        "--callback-url",
        action="append",
        default=[],
        metavar="URL",
        help="POST the run's JSON summary here when it ends (may be repeated)",
    )


def _runs_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id", nargs="?", help="a run id (or a unique prefix) to show")
    p.add_argument("--dsn", help="the PostgreSQL holding the history (default: embedded)")
    p.add_argument("--job", help="only runs of this job")
    p.add_argument("--limit", type=_at_least(1), default=20, help="runs to list (default: 20)")
    p.add_argument("--rejects", action="store_true", help="with a run id: list its rejects")
    p.add_argument(
        "--cancel", action="store_true", help="with a run id: cancel a queued run (its tasks)"
    )


def _rejects_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id", metavar="RUN", help="a run id (or a unique prefix)")
    p.add_argument("--file", help="the file whose rejects (its URL or name; needed when several)")
    act = p.add_mutually_exclusive_group()
    act.add_argument(
        "--export",
        metavar="OUT.csv",
        help="write the open rejects in the file's own dialect and encoding, to fix",
    )
    act.add_argument(
        "--replay",
        metavar="FIXED.csv",
        help="load a fixed export into the same table, as a run resolving the rejects",
    )
    p.add_argument(
        "--job", metavar="FILE", help="with --replay: the job file (default: jobs/<job>.toml)"
    )
    p.add_argument(
        "--dsn",
        help="the history's PostgreSQL (default: embedded); with --replay the target's, "
        "beating [database] dsn",
    )


def _worker_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dsn", help="the queue database (default: embedded)")
    p.add_argument(
        "--queue",
        action="append",
        dest="queues",
        metavar="NAME",
        help="take tasks of this queue (may be repeated; default: csvpg)",
    )
    p.add_argument("--jobs", metavar="DIR", help="also run the [schedule] jobs of this folder")
    p.add_argument("--name", help="the worker's name (default: host-pid)")
    p.add_argument("--concurrency", type=_at_least(1), default=1, help="files at once")
    p.add_argument(
        "--heartbeat",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="seconds between heartbeats; a worker silent for 3 is taken for dead",
    )
    p.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="one line per file taken and done: plain text, or one JSON object each",
    )


def _serve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    p.add_argument("--port", type=_port, default=8080, help="the TCP port to listen on")
    p.add_argument("--jobs", default="jobs", metavar="DIR", help="the jobs directory")
    p.add_argument("--dsn", help="history, and jobs without [database] (default: embedded)")
    p.add_argument(
        "--workers",
        type=_at_least(0),
        default=1,
        help="files this server's own worker loads at once; 0: it only queues runs, for "
        "csvpg worker processes elsewhere",
    )
    p.add_argument(
        "--queue-name",
        default="csvpg",
        metavar="NAME",
        help="the queue runs go to (and this server's worker takes)",
    )
    p.add_argument(
        "--max-upload-mb", type=_at_least(1), default=100, help="the largest upload, in MiB"
    )
    p.add_argument("--max-json-kb", type=_at_least(1), default=1024, help="largest JSON body")
    p.add_argument(
        "--keep-uploads-days", type=_at_least(1), default=30, help="uploaded files kept (days)"
    )
    p.add_argument(
        "--no-auth", action="store_true", help="no bearer token (allowed on loopback only)"
    )
    p.add_argument(
        "--read-only-token",
        metavar="TOKEN",
        help="a token that may only read (GET); default: $CSVPG_API_READ_ONLY_TOKEN",
    )
    p.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let a front end served from ORIGIN call the API (may be repeated; off)",
    )
    _serve_trust_options(p)


def _serve_trust_options(p: argparse.ArgumentParser) -> None:
    trust = p.add_argument_group("specs sent over HTTP (see 'Security of csvpg serve')")
    trust.add_argument("--allow-inline-specs", action="store_true", help="POST /runs with spec")
    trust.add_argument(
        "--env-allow",
        action="append",
        default=[],
        metavar="NAME",
        help="a ${NAME} such specs may use from the server's environment (may be repeated)",
    )
    trust.add_argument(
        "--data-root",
        metavar="DIR",
        help="the folder such specs' files must lie under (default: the jobs folder's parent)",
    )
    trust.add_argument(
        "--allow-dsn",
        action="append",
        default=[],
        metavar="DSN",
        help="a database such specs may load into besides the server's (may be repeated)",
    )


def _check_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("job", help="the job's TOML file")
    p.add_argument("--dsn", help="PostgreSQL URL; beats [database] dsn")
    p.add_argument(
        "--offline",
        action="store_true",
        help="check the spec and the files only, without the database",
    )


def _infer_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a CSV file's path or URL")
    p.add_argument("-o", "--output", help="write the job here instead of to stdout")
    p.add_argument("--explain", action="store_true", help="show each decision on stderr")
    p.add_argument(
        "--sample-rows", type=_at_least(1), default=10_000, metavar="N", help="rows to sample"
    )
    p.add_argument("--full-scan", action="store_true", help="read every row, not a sample")
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="type plugins (csvpg-llm) ask afresh: no stored answer read or written",
    )
    p.add_argument(
        "--text-on-misfit",
        action="store_true",
        help="a column with any value that fits no type is text (default: a few misfits "
        "keep the type and become rejects)",
    )


def _dashboard_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dsn", help="the PostgreSQL whose run history to show (default: embedded)")
    p.add_argument("--jobs", default="jobs", metavar="DIR", help="the folder of the jobs to list")
    p.add_argument("--web", action="store_true", help="serve the dashboard to a browser")
    p.add_argument("--port", type=_port, default=8000, help="the --web port")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="the --web address; off loopback it needs CSVPG_API_TOKEN, asked of browsers",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(debug=args.debug)
    try:
        return _dispatch(parser, args)
    except CsvpgError as exc:
        if args.debug:
            traceback.print_exc()
        print_error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: files in flight were rolled back", file=sys.stderr)
        return 130
    except OSError as exc:  # a file or folder named on the command line, say
        if args.debug:
            traceback.print_exc()
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error: cannot use{where}: {exc.strerror or exc}", file=sys.stderr)
        print("hint: check the path and its permissions", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:
        # A bug (csvpg's or a plugin's) still gets one paragraph; --debug has the traceback.
        if args.debug:
            raise
        print(f"error: csvpg stopped on an unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        print(
            "hint: run it again with --debug for the traceback, and report it "
            "(with the job file, without its secrets)",
            file=sys.stderr,
        )
        return EXIT_FAILED


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """The command's own function; its errors are :func:`main`'s to say."""
    if args.command == "run":
        return cmd_run(args)
    if args.command == "check":
        from csvpg.cli.check import check

        return check(args.job, dsn=args.dsn, out=sys.stdout, offline=args.offline)
    if args.command == "plugins":
        return cmd_plugins()
    if args.command == "db":
        return cmd_db(args.action)
    if args.command == "infer":
        return cmd_infer(args)
    if args.command == "dashboard":
        return cmd_dashboard(args)
    if args.command == "runs":
        return cmd_runs(args)
    if args.command == "rejects":
        from csvpg.cli.runs import cmd_rejects

        return cmd_rejects(args)
    if args.command == "serve":
        return cmd_serve(args)
    if args.command in ("worker", "workers", "schedules"):
        return cmd_worker(args)
    if args.command == "connections":
        return cmd_connections(args)
    if args.command == "schema":
        return cmd_schema(builtin=args.builtin)
    if args.command == "completion":
        from csvpg.cli.completion import script

        sys.stdout.write(script(args.shell, parser))
        return EXIT_OK
    raise AssertionError(args.command)


class _Stderr(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (pytest swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr)
        except Exception:
            self.handleError(record)


class _OwnWords(logging.Filter):
    """Without --debug only csvpg's own records pass: what a library logs on the way
    (psycopg's "error ignored terminating Copy" after a lost connection, asyncio's
    socket warnings after an SFTP drop) csvpg says in its own words, as a retry or an
    error, so a second, stray line would only confuse."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == "csvpg" or record.name.startswith("csvpg.")


def configure_logging(*, debug: bool) -> None:
    """``warning: …`` lines from csvpg itself; everything, with names, under --debug."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Stderr)]:
        root.removeHandler(handler)
    handler = _Stderr()
    if debug:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("warning: %(message)s"))
        handler.addFilter(_OwnWords())
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    # Python warnings and "Exception ignored in …" from finalizers (an SFTP session's
    # at exit) go the same way: shown with --debug, kept from the terminal otherwise.
    logging.captureWarnings(True)
    sys.unraisablehook = _unraisable


def _unraisable(info: Any) -> None:
    logging.getLogger("csvpg.unraisable").debug(
        "ignored in %r: %s", info.object, info.exc_value, exc_info=info.exc_value
    )


def print_error(exc: CsvpgError) -> None:
    where = []
    if exc.file and exc.file not in exc.message:
        where.append(exc.file)
    if exc.line and f"line {exc.line}" not in exc.message:
        where.append(f"line {exc.line}")
    prefix = ", ".join(where) + ": " if where else ""
    print(f"error: {prefix}{exc.message}", file=sys.stderr)
    if exc.hint:
        print(f"hint: {exc.hint}", file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    if args.queue or args.queue_name:
        return cmd_run_queued(args)
    if args.tui:
        return cmd_run_tui(args)
    from csvpg.api import prepare
    from csvpg.reporters import ClosedPipeSafe, dump_json, for_stream
    from csvpg.spec import load_job

    job = load_job(args.job)
    # Bars on a terminal, plain lines (with progress for long files) anywhere else.
    out = ClosedPipeSafe(sys.stderr if args.json else sys.stdout)
    reporter = for_stream(out, log_format=args.log_format, quiet=args.quiet)  # type: ignore[arg-type]
    handle = prepare(
        job,
        dsn=args.dsn,
        plugins=[reporter],
        dry_run=args.dry_run,
        force=args.force,
        callbacks=args.callback_url,
    )
    try:
        with _signals_cancel(handle) as caught:
            summary = handle.run()  # in the main thread, which the signals reach
    finally:
        reporter.close()
    if args.json:
        dump_json(summary.to_dict(), ClosedPipeSafe(sys.stdout))  # type: ignore[arg-type]
    if caught and summary.status == "cancelled":
        return 128 + caught[0]  # 130 for Ctrl-C (SIGINT), 143 for SIGTERM
    return summary.exit_code


def cmd_run_queued(args: argparse.Namespace) -> int:
    """``csvpg run job.toml --queue``: the run's id on stdout (its JSON with --json)."""
    from csvpg.reporters import ClosedPipeSafe, dump_json
    from csvpg.spec import load_job
    from csvpg.worker import enqueue_run
    from csvpg.worker.enqueue import Carried

    if args.dry_run:
        raise CsvpgError(
            f"{args.job}: --dry-run cannot be used with --queue: a dry run loads each file "
            "and rolls it back to show what would happen, which is a preview for this "
            "terminal, not work for the workers (nothing of it would be kept)",
            hint=f"csvpg run {args.job} --dry-run (without --queue) previews the run here",
        )
    if args.tui:
        raise CsvpgError(
            f"{args.job}: --tui cannot be used with --queue: the run loads on the workers",
            hint="follow a queued run with csvpg runs RUN, or in csvpg serve's web app",
        )
    from csvpg.worker.app import DEFAULT_QUEUE

    queue_name = args.queue_name or DEFAULT_QUEUE
    run_id = enqueue_run(
        load_job(args.job),
        args.dsn,
        queue_name=queue_name,
        force=args.force,
        carried=Carried(callbacks=tuple(args.callback_url)),
    )
    if args.json:
        queued = {"run_id": run_id, "status": "queued", "queue": queue_name}
        dump_json(queued, ClosedPipeSafe(sys.stdout))  # type: ignore[arg-type]
    else:
        print(run_id)
    return 0


def cmd_connections(args: argparse.Namespace) -> int:
    from csvpg.cli.connections import list_connections, test_connection

    folder = Path(args.jobs)
    if args.action == "list":
        if args.name:
            raise SpecError(
                f"'csvpg connections' takes no name ({args.name!r}) without 'test'",
                hint=f"csvpg connections test {args.name}",
            )
        return list_connections(folder, sys.stdout)
    if not args.name:
        raise SpecError(
            "'csvpg connections test' needs the connection's name",
            hint="csvpg connections lists them",
        )
    return test_connection(folder, args.name, sys.stdout)


def cmd_worker(args: argparse.Namespace) -> int:
    if args.command == "schedules":
        from csvpg.cli.worker import list_schedules

        return list_schedules(args.jobs, sys.stdout)
    dsn = _history_dsn(args.dsn)
    if args.command == "workers":
        from csvpg.cli.worker import list_workers

        return list_workers(dsn, sys.stdout)
    from csvpg.worker.process import WorkerOptions, run_worker

    options = WorkerOptions(
        dsn=dsn,
        queues=args.queues or ["csvpg"],
        concurrency=args.concurrency,
        jobs=args.jobs,
        log_format=args.log_format,
        heartbeat=args.heartbeat,
    )
    if args.name:
        options.name = args.name
    return run_worker(options)


@contextlib.contextmanager
def _signals_cancel(run: Any) -> Iterator[list[int]]:
    """Ctrl-C (SIGINT) and SIGTERM cancel the run: files in flight roll back, the
    history says cancelled, scratch is dropped; the signals caught are listed. A second
    Ctrl-C stops at once (the next run tidies up after it)."""
    import signal
    import threading

    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught  # signals reach the main thread only: nothing to install
        return

    def cancel(signum: int, frame: Any) -> None:
        if not caught:
            # Off the handler: cancel() talks to the server.
            threading.Thread(target=run.cancel, name="csvpg-cancel", daemon=True).start()
        caught.append(signum)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    before = {s: signal.signal(s, cancel) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield caught
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def _history_dsn(dsn: str | None) -> str:
    if dsn:
        return dsn
    from csvpg import embedded

    return embedded.start()


def cmd_runs(args: argparse.Namespace) -> int:
    from csvpg.cli.runs import list_runs, show_run

    dsn = _history_dsn(args.dsn)
    if args.cancel:
        from csvpg.worker import cancel_run

        if not args.run_id:
            raise CsvpgError("--cancel needs a run id", hint="csvpg runs RUN --cancel")
        stopped = cancel_run(args.run_id, dsn)
        print(f"cancelling: {stopped} task{'s' if stopped != 1 else ''} stopped")
        return 0
    if args.run_id:
        return show_run(dsn, args.run_id, sys.stdout, rejects=args.rejects)
    return list_runs(dsn, sys.stdout, job=args.job, limit=args.limit)


def _loopback(host: str) -> bool:
    import ipaddress

    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    try:
        import uvicorn

        from csvpg.serve import make_app, started
        from csvpg.serve.policy import Policy
    except ImportError as exc:
        raise CsvpgError(
            f"csvpg serve needs its extra packages ({exc})", hint="pip install 'csvpg[serve]'"
        ) from exc
    token = os.environ.get("CSVPG_API_TOKEN") or None
    if token is None and not (args.no_auth and _loopback(args.host)):
        print("error: csvpg serve needs a bearer token in CSVPG_API_TOKEN", file=sys.stderr)
        print(
            "hint: export CSVPG_API_TOKEN=…, or --no-auth on a loopback address (127.0.0.1)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if not Path(args.jobs).is_dir():
        raise CsvpgError(
            f"the jobs folder {args.jobs} does not exist",
            hint="--jobs names the folder of the job files csvpg serve offers",
        )
    read_only = args.read_only_token or os.environ.get("CSVPG_API_READ_ONLY_TOKEN") or None
    app = make_app(
        jobs_dir=Path(args.jobs),
        dsn=args.dsn,
        token=None if args.no_auth else token,
        read_only_token=read_only,
        workers=args.workers,
        queue_name=args.queue_name,
        max_upload_mb=args.max_upload_mb,
        max_json_kb=args.max_json_kb,
        keep_uploads_days=args.keep_uploads_days,
        cors_origins=args.cors_origin,
        policy=Policy(
            data_root=Path(args.data_root).resolve() if args.data_root else None,
            allow_inline_specs=args.allow_inline_specs,
            env_allow=frozenset(args.env_allow),
            allow_dsn=tuple(args.allow_dsn),
        ),
    )
    log = logging.getLogger("csvpg.serve")  # the startup line and a line a request
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    started(app, f"http://{args.host}:{args.port}")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return EXIT_OK


def _tui() -> Any:
    try:
        from csvpg.tui import app
    except ImportError as exc:
        raise CsvpgError(
            f"the dashboard needs Textual, which is not installed ({exc})",
            hint="pip install textual, or run without --tui",
        ) from exc
    return app


def _on_terminal(what: str) -> bool:
    """Whether the dashboard can draw here; if not, says so (a usage error)."""
    import os

    if os.environ.get("TEXTUAL_DRIVER"):  # textual-serve's sessions draw in a browser
        return True
    if sys.stdin.isatty() and sys.stdout.isatty():
        return True
    print(f"error: {what} needs a terminal", file=sys.stderr)
    print("hint: without one, csvpg run prints plain lines (or --log-format json)", file=sys.stderr)
    return False


def cmd_run_tui(args: argparse.Namespace) -> int:
    from csvpg.plugins import get_plugin_manager
    from csvpg.reporters import describe, dump_json
    from csvpg.spec import load_job

    if not _on_terminal("--tui"):
        return EXIT_USAGE
    job = load_job(args.job)  # a broken job is an error here, before the screen opens
    app = _tui().make_app(
        job, get_plugin_manager(), dsn=args.dsn, dry_run=args.dry_run, force=args.force
    )
    app.run()
    if app.error is not None:
        raise app.error
    summary = app.summary
    if summary is None:  # a bug in the run: Textual printed its traceback
        return EXIT_FAILED
    if app.finished is not None:
        print(describe(app.finished)[0], file=sys.stderr if args.json else sys.stdout)
    if args.json:
        dump_json(summary.to_dict(), sys.stdout)
    return 130 if summary.status == "cancelled" else summary.exit_code


def cmd_dashboard(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    if args.web:
        return serve_web(args)
    if not _on_terminal("csvpg dashboard"):
        return EXIT_USAGE
    tui = _tui()
    from csvpg.plugins import get_plugin_manager
    from csvpg.tui.history import PgHistory

    # --web hands the DSN to each session through the environment, never on a command line.
    dsn = args.dsn or os.environ.get("CSVPG_DASHBOARD_DSN") or None
    if dsn is None:
        from csvpg import embedded

        shown = embedded.start()
    else:
        shown = dsn
    app = tui.make_app(
        None,
        get_plugin_manager(),
        dsn=dsn,
        history=PgHistory(shown),
        jobs_dir=Path(args.jobs),
        dashboard=True,
    )
    app.run()
    return EXIT_OK


def serve_web(args: argparse.Namespace) -> int:
    """``csvpg dashboard --web``: textual-serve runs one dashboard per browser tab, on
    the loopback address; elsewhere only with CSVPG_API_TOKEN, which browsers must give."""
    import os
    import shlex
    from pathlib import Path

    try:
        from textual_serve.server import Server
    except ImportError as exc:
        raise CsvpgError(
            "csvpg dashboard --web needs textual-serve, which is not installed",
            hint="pip install 'csvpg[web]'",
        ) from exc
    jobs = str(Path(args.jobs).resolve())
    command = shlex.join([sys.executable, "-m", "csvpg", "dashboard", "--jobs", jobs])
    if args.dsn:
        os.environ["CSVPG_DASHBOARD_DSN"] = args.dsn
    token = os.environ.get("CSVPG_API_TOKEN") or None
    if not _loopback(args.host) and token is None:
        print(
            f"error: csvpg dashboard --web on {args.host} needs a token in CSVPG_API_TOKEN",
            file=sys.stderr,
        )
        print("hint: export CSVPG_API_TOKEN=…, or keep --host 127.0.0.1", file=sys.stderr)
        return EXIT_USAGE
    where = f"http://{args.host}:{args.port}"
    print(f"csvpg dashboard on {where} (Ctrl+C stops)", flush=True)
    options: dict[str, Any] = {"host": args.host, "port": args.port, "title": "csvpg dashboard"}
    if _loopback(args.host):  # as before: the machine's own users only
        Server(command, **options).serve()
    elif token is not None:
        from csvpg.tui.web import TokenServer

        TokenServer(command, token=token, **options).serve()
    return EXIT_OK


def cmd_plugins() -> int:
    from csvpg.plugins import Registry, get_plugin_manager

    rows = Registry(get_plugin_manager()).rows()
    widths = [
        max(len(r[i]) for r in [("KIND", "NAME", "PLUGIN", "DISTRIBUTION"), *rows])
        for i in range(4)
    ]
    for row in [("KIND", "NAME", "PLUGIN", "DISTRIBUTION"), *rows]:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK


def cmd_db(action: str) -> int:
    from csvpg import embedded

    if action == "start":
        print(embedded.start())
    elif action == "stop":
        print("stopped" if embedded.stop() else "not running")
    elif action == "url":
        url = embedded.url()
        if url is None:
            print("error: the embedded PostgreSQL is not running", file=sys.stderr)
            print("hint: csvpg db start", file=sys.stderr)
            return EXIT_FAILED
        print(url)
    else:
        for key, value in embedded.status().items():
            print(f"{key}: {value}")
    return EXIT_OK


def cmd_infer(args: argparse.Namespace) -> int:
    from pathlib import Path

    from csvpg.infer.guess import explain, infer_file, job_for, summary, to_toml

    guess = infer_file(
        args.file,
        sample_rows=args.sample_rows,
        full_scan=args.full_scan,
        use_cache=not args.no_cache,
        tolerate=not args.text_on_misfit,
    )
    if args.explain:
        print(explain(guess), end="", file=sys.stderr)
    job_dir = Path(args.output).parent if args.output else None
    text = to_toml(job_for(guess, job_dir), comment=f"csvpg infer: {summary(guess)}")
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CsvpgError(
                f"cannot write {args.output}: {exc.strerror or exc}",
                hint="-o names a file in a folder that exists and that you may write to",
            ) from exc
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_schema(*, builtin: bool) -> int:
    from csvpg import jobschema

    registry = jobschema.builtin_registry() if builtin else None
    sys.stdout.write(jobschema.dumps(jobschema.job_schema(registry)))
    return 0


def main_entry() -> None:
    try:
        sys.exit(main())
    except BrokenPipeError:  # `csvpg runs | head`: the reader left; that is no error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
