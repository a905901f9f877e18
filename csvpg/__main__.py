"""``python -m csvpg``: the same as the ``csvpg`` command."""

from csvpg.cli.main import main_entry

main_entry()
