"""The README's screenshots, made with Textual's own ``App.save_screenshot`` from the
recorded run (so they show no real path or database):

    uv run python -m tests.tui.screenshots      # writes docs/tui-run.svg, docs/tui-dashboard.svg
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from csvpg.tui.app import make_app
from tests.tui.pilot import settle
from tests.tui.replay import DATA, history_of, recorded, replay, until

DOCS = Path(__file__).resolve().parents[2] / "docs"
SIZE = (120, 36)


async def run_screen() -> None:
    app = make_app(start=False)
    async with app.run_test(size=SIZE) as pilot:
        await replay(pilot, until(recorded(), 9.43))  # payments done, a ledger still loading
        await pilot.press(*["down"] * 5)  # payments.csv: its rejects
        await pilot.pause()
        app.save_screenshot("tui-run.svg", str(DOCS))


async def dashboard_screen() -> None:
    os.chdir(DATA)
    app = make_app(dashboard=True, history=history_of(recorded()), jobs_dir=Path("jobs"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("tab")
        await settle(pilot)
        await pilot.press(*["down"] * 5)
        await settle(pilot)
        app.save_screenshot("tui-dashboard.svg", str(DOCS))


if __name__ == "__main__":
    asyncio.run(run_screen())
    asyncio.run(dashboard_screen())
    print(f"wrote {DOCS / 'tui-run.svg'} and {DOCS / 'tui-dashboard.svg'}")
