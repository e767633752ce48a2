"""Bulk import of provider records from a CSV or JSON Lines file (``xinyi import-records``).

Every row gets exactly the checks of ``POST /v1/provider/records:batch`` (one shared
:func:`~xinyi.records.service.validate_item`) and the record the API would write: the same
content hash, catalogue snapshot, archive of records already past display, list entry with its
``list.entered`` event, and score. What differs is the shape of the work:

* the file is streamed in chunks (``batch_size`` rows), so memory stays flat whatever its size;
  a reader thread validates the next chunk while the database writes the current one
  (:mod:`.source` reads the file, :mod:`.chunks` prepares the chunks);
* each chunk is written and committed in a unit of work of its own (:mod:`.pipeline`), so an
  interrupted import is restarted by running it again;
* on PostgreSQL each chunk looks its refs and new subjects up first, then copies (``COPY``)
  only what is new straight into the real tables, inside a savepoint; a chunk that meets a
  concurrent import of the same provider is redone the staged way (:mod:`.writers`;
  ``ImportSummary.redone`` counts those chunks);
* the staged way (SQLite, and PostgreSQL's fallback): the chunk goes into a temporary table
  and is written with set-based ``INSERT … SELECT … ON CONFLICT DO NOTHING``
  (:mod:`.staging`). Either way the unique ``(provider_id, provider_ref)`` makes a re-run
  create nothing twice, and a ref already used with other content is rejected as
  ``duplicate_reference`` (the original stays); the same ref twice in one file counts once
  (the first; a later one is held, as by the API, to the record that then has the ref, and is
  a ``duplicate_reference`` if its content differs);
* new records, list entries and events get time-ordered (version 7) UUIDs, so their
  primary-key indexes grow at the right edge;
* per-row steps that dominate the API's cost have faster equivalents (:mod:`.fastpath`), each
  held to the original by a test; only new subjects have their ID number encrypted;
* scores of every subject the file names are recomputed set-based once, at the end
  (``Deps.rescore``, the scoring's set-based recompute); a crash before that leaves them to the
  re-run, which recomputes them even when every row is unchanged.

Bad rows go to a reject file (line, ref, reason) and never stop the import. Neither the reject
file nor the log ever holds an ID number or any other personal data.
"""

from xinyi.records.importing.fastpath import CachedIdParser, FastItemLoader, content_hash
from xinyi.records.importing.pipeline import (
    ImportSummary,
    ProviderDisabled,
    import_file,
    import_records,
)
from xinyi.records.importing.source import ImportFileError

__all__ = [
    "CachedIdParser",
    "FastItemLoader",
    "ImportFileError",
    "ImportSummary",
    "ProviderDisabled",
    "content_hash",
    "import_file",
    "import_records",
]
