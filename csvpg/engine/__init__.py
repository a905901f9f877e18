"""The engine: a job's plan, run file by file (each on its own connection and in
one transaction), with every step an event. ``run`` holds :class:`Engine`; a file's
load (``fileload``) gets its :class:`~csvpg.engine.context.FileContext`, made per file
from the run's :class:`~csvpg.engine.context.RunContext`, never the engine."""
