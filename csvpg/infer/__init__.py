"""``csvpg infer``: sample a file (``guess``), find each column's type (``types``,
``families``), and write a job."""
