"""csvpg-records: sinks that send a file's records somewhere other than a table.

* ``[sink] mode = "webhook"``: each record (or batches) as JSON to a URL, with a
  token-bucket rate limit, retries with backoff, and failed deliveries as rejects;
* ``[sink] mode = "csv"``: the rows (after the transforms) to a CSV file, protected
  against formula injection.

Both take parsed rows (``needs_rows``) and write no table (``writes_table = False``);
the file's transaction still records the run history and the manifest. It imports only
from ``csvpg`` itself and the standard library (``urllib``).
"""

from __future__ import annotations

from csvpg import Sink, hookimpl
from csvpg_records.csvfile import CsvFileSink
from csvpg_records.webhook import FailedRecord, WebhookSink

__version__ = "0.1.0"
__all__ = ["CsvFileSink", "FailedRecord", "WebhookSink"]


@hookimpl
def register_sinks() -> list[type[Sink]]:
    return [WebhookSink, CsvFileSink]
