"""The engine: a job's plan, run file by file (each on its own connection and in
one transaction), with every step an event. ``run`` holds :class:`Engine`; a file's
load (``fileload``) gets a :class:`~csvpg.engine.context.RunContext`, never the engine."""
