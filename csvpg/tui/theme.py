"""The csvpg themes, and the status colours and symbols every screen uses.

Colours come from the app's theme (``$text-success``, ``$text-warning``, ...) rather than
colour names, so a light theme picked in the command palette (or with ``TEXTUAL_THEME``)
keeps statuses readable; each status has a symbol too, so it reads without colour."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual.color import Color
from textual.theme import Theme

if TYPE_CHECKING:
    from textual.app import App


def _theme(name: str, dark: bool, colours: str, scrollbar: str, scrollbar_hover: str) -> Theme:
    """A csvpg theme from its colours, in this order: primary, accent, success, warning,
    error, foreground, background, surface, panel."""
    primary, accent, success, warning, error, foreground, background, surface, panel = (
        colours.split()
    )
    return Theme(
        name=name,
        primary=primary,
        secondary="#336791",  # PostgreSQL's own blue
        accent=accent,
        success=success,
        warning=warning,
        error=error,
        foreground=foreground,
        background=background,
        surface=surface,
        panel=panel,
        dark=dark,
        variables={
            "footer-key-foreground": accent,
            "block-cursor-text-style": "bold",
            "input-selection-background": f"{primary} 35%",
            "scrollbar": scrollbar,
            "scrollbar-hover": scrollbar_hover,
            "scrollbar-active": primary,
            "scrollbar-background": surface,
            "scrollbar-background-hover": surface,
            "scrollbar-background-active": surface,
            "scrollbar-corner-color": surface,
        },
    )


#: A light blue frame, amber for what has the focus.
CSVPG_DARK = _theme(
    "csvpg",
    True,
    "#6CA0DC #F0A35E #8FCB7A #E8C35A #EF6F6C #DCE3EC #12171F #171D27 #222B3A",
    scrollbar="#34425A",
    scrollbar_hover="#4A5C7A",
)
#: The same on a light terminal: darker colours, for contrast on white.
CSVPG_LIGHT = _theme(
    "csvpg-light",
    False,
    "#2F6DB5 #B8590B #2E7D32 #946200 #C62828 #1F2630 #F4F6F9 #FBFCFD #E2E8F0",
    scrollbar="#C3CDDA",
    scrollbar_hover="#A9B6C8",
)

THEMES = (CSVPG_DARK, CSVPG_LIGHT)


@dataclass(frozen=True)
class Palette:
    """The theme's text colours for what Rich draws (tables' cells, the log, the run's
    header), which CSS variables do not reach."""

    success: str
    warning: str
    error: str
    primary: str
    accent: str

    @classmethod
    def of(cls, app: App[object]) -> Palette:
        colours = app.theme_variables or app.get_css_variables()

        def rich(name: str) -> str:
            # An ANSI theme names its colours the way Textual does (ansi_red); Rich
            # knows them by number (color(1)), which keeps the terminal's own palette.
            return Color.parse(colours[name]).rich_color.name

        return cls(
            success=rich("text-success"),
            warning=rich("text-warning"),
            error=rich("text-error"),
            primary=rich("text-primary"),
            accent=rich("text-accent"),
        )

    def style(self, role: str) -> str:
        """``role`` is a colour of the palette (``bold error``), ``muted`` (dim text) or
        empty (the theme's foreground)."""
        if not role:
            return ""
        if role == "muted":
            return "dim"
        bold, _, colour = role.rpartition(" ")
        return f"{bold} {getattr(self, colour)}".strip()


#: The csvpg theme's colours, for text drawn with no app (a test, a plain renderable).
DEFAULT_PALETTE = Palette(
    success=CSVPG_DARK.success or "green",
    warning=CSVPG_DARK.warning or "yellow",
    error=CSVPG_DARK.error or "red",
    primary=CSVPG_DARK.primary,
    accent=CSVPG_DARK.accent or "cyan",
)

#: Each status: its symbol and the palette role it is drawn in.
STATUS = {
    "loaded": ("✓", "success"),
    "succeeded": ("✓", "bold success"),
    "failed": ("✗", "bold error"),
    "partial": ("◐", "bold warning"),
    "cancelled": ("⊘", "warning"),
    "cancelling": ("⊘", "bold warning"),
    "abandoned": ("⊘", "warning"),
    "skipped": ("⊘", "muted"),
    "loading": ("●", "primary"),
    "running": ("●", "bold primary"),
    "queued": ("…", "muted"),
    "starting": ("…", "muted"),
}


def status_text(status: str, palette: Palette = DEFAULT_PALETTE) -> Text:
    """``✓ loaded`` in the theme's success colour, and so on."""
    symbol, role = STATUS.get(status, ("·", "muted"))
    return Text(f"{symbol} {status}", style=palette.style(role))
