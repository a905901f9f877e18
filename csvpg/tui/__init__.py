"""The Textual dashboard: ``csvpg run --tui``, ``csvpg dashboard`` (and ``--web``).

    app.py       make_app(): the App, its screens and keys
    messages.py  EngineEvent: an engine event posted into the app
    reporter.py  TuiReporter: the track_event plugin that posts them (thread-safe)
    state.py     RunState: a run folded from events (no Textual)
    history.py   the past runs, files and rejects in PostgreSQL
    widgets/     what the screens are made of

Nothing here is imported by ``csvpg``, ``csvpg.engine`` or the plain CLI: Textual loads
only for the dashboard.
"""
