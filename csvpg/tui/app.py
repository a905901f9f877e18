"""The dashboard app. :func:`make_app` builds it for ``csvpg run --tui`` (one run, live),
for ``csvpg dashboard`` (the run history and the jobs folder, from which a job can be
started and watched), and for the tests, which replay recorded events into it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer

from csvpg import events as ev
from csvpg.errors import CsvpgError
from csvpg.tui.history import History
from csvpg.tui.theme import CSVPG_DARK, THEMES
from csvpg.tui.widgets.dashboard import DashboardView
from csvpg.tui.widgets.dialogs import ConfirmScreen, ErrorScreen, HelpScreen, StartJobScreen
from csvpg.tui.widgets.run_view import RunView

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from csvpg.spec import Job
    from csvpg.summary import RunSummary

CANCEL_QUESTION = (
    "Cancel this run?\n\nFiles loading now roll back and are recorded as cancelled; "
    "files not started are skipped. Files already loaded stay loaded."
)


class RunScreen(Screen[None]):
    """One run, live. ``q`` quits (asking first while the run goes on), ``c`` cancels and
    stays, ``escape`` goes back to the dashboard when there is one."""

    BINDINGS = [
        Binding("q", "quit_run", "quit"),
        Binding("c", "cancel_run", "cancel run"),
        Binding("escape", "back", "back"),
        Binding("question_mark", "help", "keys"),
    ]
    KEYS_HELP = [
        ("q", "quit; while the run goes on, asks to cancel it first"),
        ("c", "cancel the run and stay: files in flight roll back"),
        ("↑ ↓", "choose a file: its rejected lines show below"),
        ("enter", "read all the chosen file's rejects from csvpg.rejects"),
        ("tab", "move between the files, rejects and log"),
        ("escape", "back to the dashboard (when started from it)"),
        ("?", "this help"),
    ]

    def __init__(
        self,
        job: Job | None,
        pm: pluggy.PluginManager | None = None,
        *,
        dsn: str | None = None,
        dry_run: bool = False,
        force: bool = False,
        history: History | None = None,
        start: bool = True,
        from_dashboard: bool = False,
    ) -> None:
        super().__init__()
        self.job, self.pm, self.dsn = job, pm, dsn
        self.dry_run, self.force, self.autostart = dry_run, force, start
        self.history = history
        self.from_dashboard = from_dashboard
        self._leave_when_done = False

    def compose(self) -> ComposeResult:
        yield RunView(history=self.history)
        yield Footer()

    @property
    def view(self) -> RunView:
        return self.query_one(RunView)

    def on_mount(self) -> None:
        if self.autostart and self.job is not None:
            from csvpg.plugins import get_plugin_manager

            pm = self.pm if self.pm is not None else get_plugin_manager()
            self.view.start(self.job, pm, self.dsn, dry_run=self.dry_run, force=self.force)
            self.refresh_bindings()

    def _leave(self) -> None:
        if self.from_dashboard:
            self.dismiss(None)
        else:
            app: Any = self.app
            app.exit(app.summary)

    def _confirm_cancel(self, leave: bool) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self._leave_when_done = leave
                self.view.cancel()

        self.app.push_screen(
            ConfirmScreen(CANCEL_QUESTION, yes="Cancel run", no="Keep running"), answered
        )

    def action_quit_run(self) -> None:
        if self.view.running:
            self._confirm_cancel(leave=True)
        else:
            self._leave()

    def action_cancel_run(self) -> None:
        if self.view.running:
            self._confirm_cancel(leave=False)

    def action_back(self) -> None:
        if self.from_dashboard:
            self.action_quit_run()

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen("csvpg run: keys", self.KEYS_HELP))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide ``back`` without a dashboard; grey out ``cancel run`` once it ended."""
        if action == "back":
            return self.from_dashboard
        if action == "cancel_run":
            views = self.query(RunView)
            return True if views and views.first().running else None
        return True

    def on_run_view_finished(self, message: RunView.Finished) -> None:
        self.refresh_bindings()
        app: Any = self.app
        app.summary, app.error = message.summary, message.error
        app.finished = self.view.state.finished
        if message.error is not None:
            self.app.push_screen(ErrorScreen(message.error.message, message.error.hint))
        elif self._leave_when_done:
            self._leave()


class DashboardScreen(Screen[None]):
    """The history and the jobs; enter on a job runs it on a RunScreen."""

    BINDINGS = [
        Binding("q", "app.quit", "quit"),
        Binding("h", "tab('runs')", "runs"),
        Binding("j", "tab('jobs')", "jobs"),
        Binding("r", "reload", "reload"),
        Binding("slash", "filter", "filter runs"),
        Binding("question_mark", "help", "keys"),
    ]
    KEYS_HELP = [
        ("h", "the runs: past runs, their files and rejects"),
        ("j", "the jobs of the jobs folder"),
        ("tab", "move between the runs, files and rejects"),
        ("↑ ↓", "choose a run (its files show) or a file (its rejects show)"),
        ("enter", "on a job: run it (or dry run, or force) and watch it live"),
        ("/", "filter the runs: a job, a status, rejects, since:2026-03-01"),
        ("r", "read the runs and the jobs again"),
        ("q", "quit"),
        ("?", "this help"),
    ]

    def __init__(
        self,
        pm: pluggy.PluginManager | None,
        *,
        dsn: str | None,
        history: History | None,
        jobs_dir: Path | None,
    ) -> None:
        super().__init__()
        self.pm, self.dsn, self.history, self.jobs_dir = pm, dsn, history, jobs_dir

    def compose(self) -> ComposeResult:
        yield DashboardView(self.history, self.jobs_dir)
        yield Footer()

    def action_reload(self) -> None:
        self.query_one(DashboardView).reload()

    def action_tab(self, tab: str) -> None:
        self.query_one(DashboardView).show_tab(tab)

    def action_filter(self) -> None:
        self.query_one(DashboardView).focus_filter()

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen("csvpg dashboard: keys", self.KEYS_HELP))

    def on_dashboard_view_start_job(self, message: DashboardView.StartJob) -> None:
        from csvpg.spec import load_job

        try:
            job = load_job(message.path)
        except CsvpgError as exc:
            self.app.push_screen(ErrorScreen(exc.message, exc.hint))
            return

        def chosen(how: str | None) -> None:
            if how is None:
                return
            screen = RunScreen(
                job,
                self.pm,
                dsn=self.dsn,
                history=self.history,
                from_dashboard=True,
                dry_run=how == "dry-run",
                force=how == "force",
            )
            self.app.push_screen(screen, lambda _: self.action_reload())

        self.app.push_screen(StartJobScreen(job.name), chosen)


class CsvpgApp(App[Any]):
    """The csvpg theme unless ``TEXTUAL_THEME`` names another; ``ctrl+p`` opens Textual's
    command palette, where "Theme" picks one (textual-light on a light terminal)."""

    TITLE = "csvpg"
    #: Below 100 columns the run screen leaves out the sparkline, for the files in flight
    #: to show their speed and time left; below 30 lines it keeps the files table short.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]
    CSS = """
    RunScreen, DashboardScreen { background: $surface; }
    .panel {
        border: round $foreground 20%;
        border-title-color: $text-muted;
        border-title-style: bold;
        border-subtitle-color: $text-muted;
    }
    .panel:focus, .panel:focus-within {
        border: round $accent;
        border-title-color: $text-accent;
        background-tint: transparent;  /* the accent border says which has the focus */
    }
    * { scrollbar-size-vertical: 1; }
    .-narrow RunView #throughput { display: none; }
    .-short RunView FilesTable { max-height: 30%; }
    """

    def __init__(self, default: Screen[Any]) -> None:
        super().__init__()
        for theme in THEMES:
            self.register_theme(theme)
        # Textual's own variable picks the theme; a name it does not know is no reason
        # to fail a load.
        chosen = os.environ.get("TEXTUAL_THEME", "")
        self.theme = chosen if chosen in self.available_themes else CSVPG_DARK.name
        self._default = default
        #: The run's summary (``csvpg run --tui``), or the error that stopped it.
        self.summary: RunSummary | None = None
        self.error: CsvpgError | None = None
        self.finished: ev.JobFinished | None = None

    def get_default_screen(self) -> Screen[Any]:
        return self._default

    async def action_quit(self) -> None:
        """``ctrl+q`` (and the dashboard's ``q``): a running load is cancelled first, with
        a question, never left loading behind a closed screen."""
        for screen in reversed(self.screen_stack):
            if isinstance(screen, RunScreen) and screen.view.running:
                screen.action_quit_run()
                return
        self.exit(self.summary)


def make_app(
    job: Job | None = None,
    pm: pluggy.PluginManager | None = None,
    *,
    dsn: str | None = None,
    dry_run: bool = False,
    force: bool = False,
    start: bool = True,
    history: History | None = None,
    jobs_dir: Path | None = None,
    dashboard: bool = False,
) -> CsvpgApp:
    """The app: a live run of ``job`` (``start=False``: the run screen, empty, for a
    replay), or with ``dashboard`` the history in ``history`` and the jobs in ``jobs_dir``.

    ``dsn`` is the ``--dsn`` given, handed to each run as ``csvpg run --dsn`` would."""
    screen: Screen[Any]
    if dashboard:
        screen = DashboardScreen(pm, dsn=dsn, history=history, jobs_dir=jobs_dir)
    else:
        screen = RunScreen(
            job, pm, dsn=dsn, dry_run=dry_run, force=force, history=history, start=start
        )
    return CsvpgApp(screen)
