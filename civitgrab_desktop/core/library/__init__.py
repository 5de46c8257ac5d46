"""The library: one SQLite file shared by every civitgrab process.

- `store.LibraryStore`: every operation, synchronous, on one connection.
- `async_library.Library`: the asyncio facade (writer thread + read pool) jobs and the GUI use.
- `schema` / `db`: the schema, migrations with backups, lock-tolerant transactions.
- `csv_export`, `classic_import`: CSV export, and the classic tool's tracking data read and
  written as rows (jobs/migrate.py runs the import).
"""
