"""File ingestion: CSV and JSON-lines exports in, one customer per person (issue #17).

`Pacte.ingest` and `pacte ingest` call `ingest_files`; everything goes through the
operator's purpose-bound session (G10). See docs/ingest.md.
"""

from pacte.ingest.mapping import FIELDS, KINDS, Mapping, load_mapping
from pacte.ingest.runner import OUTCOMES, FileReport, IngestReport, ingest_files

__all__ = ["FIELDS", "KINDS", "OUTCOMES", "FileReport", "IngestReport", "Mapping",
           "ingest_files", "load_mapping"]
