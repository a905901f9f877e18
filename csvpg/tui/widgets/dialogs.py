"""Modal screens: confirm a cancel, the key help, and an error with its hint."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from csvpg.tui.theme import Palette

DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 72; height: auto; max-height: 90%; padding: 1 2;
    border: round $accent; background: $surface;
    border-title-color: $text-accent; border-title-style: bold;
    border-subtitle-color: $text-muted;
}}
{name} Horizontal {{ height: auto; align-horizontal: right; margin-top: 1; }}
{name} Button {{ margin-left: 2; }}
"""


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; ``y`` / ``n`` (or escape) answer it from the keyboard."""

    DEFAULT_CSS = (
        DIALOG_CSS.format(name="ConfirmScreen")
        + """
    ConfirmScreen > Vertical { border: round $warning; border-title-color: $text-warning; }
    """
    )
    BINDINGS = [
        Binding("y", "answer(True)", "yes"),
        Binding("n,escape", "answer(False)", "no"),
    ]

    def __init__(self, question: str, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self.question, self.yes, self.no = question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Confirm"
            yield Static(self.question)
            with Horizontal():
                yield Button(f"{self.no} (n)", id="no")
                yield Button(f"{self.yes} (y)", id="yes", variant="error")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class HelpScreen(ModalScreen[None]):
    """The keys of the screen below, from its bindings."""

    DEFAULT_CSS = DIALOG_CSS.format(name="HelpScreen")
    BINDINGS = [Binding("escape,question_mark,q", "close", "close")]

    def __init__(self, title: str, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text, self.keys = title, keys

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style=f"bold {Palette.of(self.app).accent}", no_wrap=True)
        table.add_column()
        for key, what in self.keys:
            table.add_row(key, what)
        with Vertical() as box:
            box.border_title = self.title_text
            box.border_subtitle = "escape closes this help"
            yield Static(table)

    def action_close(self) -> None:
        self.dismiss(None)


class ErrorScreen(ModalScreen[None]):
    """A failure that stopped the run before or around its files: the error's message
    and hint, as the command line would print them."""

    DEFAULT_CSS = (
        DIALOG_CSS.format(name="ErrorScreen")
        + """
    ErrorScreen > Vertical { border: round $error; border-title-color: $text-error; }
    """
    )
    BINDINGS = [Binding("escape,enter,q", "close", "close")]

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__()
        self.message, self.hint = message, hint

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "✗ Error"
            yield Static(
                Text.assemble(("error: ", Palette.of(self.app).style("bold error")), self.message)
            )
            if self.hint:
                yield Static(Text.assemble(("hint: ", "bold"), self.hint))
            with Horizontal():
                yield Button("Close (escape)", id="close", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)


class StartJobScreen(ModalScreen[str | None]):
    """How to run a job: a run, a dry run (every file rolled back), or a forced run
    (files the manifest says are unchanged load again). Answers "run", "dry-run",
    "force", or None (escape)."""

    DEFAULT_CSS = DIALOG_CSS.format(name="StartJobScreen")
    BINDINGS = [
        Binding("r", "answer('run')", "run"),
        Binding("d", "answer('dry-run')", "dry run"),
        Binding("f", "answer('force')", "force"),
        Binding("escape", "answer(None)", "cancel"),
    ]

    def __init__(self, job: str) -> None:
        super().__init__()
        self.job = job

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Run a job"
            yield Static(Text.assemble("Run the job ", (self.job, "bold"), "?"))
            yield Static(
                Text(
                    "A dry run loads each file and rolls it back. Force loads the files "
                    "the manifest says are already loaded and unchanged.",
                    style="dim",
                )
            )
            with Horizontal():
                yield Button("Dry run (d)", id="dry-run")
                yield Button("Force (f)", id="force", variant="warning")
                yield Button("Run (r)", id="run", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#run", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id)

    def action_answer(self, answer: str | None) -> None:
        self.dismiss(answer)
