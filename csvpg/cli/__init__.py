"""The command line (``main``) and the commands that are more than a call into the
library: ``check`` (the pre-flight) and ``runs`` (the history)."""
