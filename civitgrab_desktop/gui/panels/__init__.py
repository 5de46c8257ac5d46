"""The main window's pages other than the gallery: download, tags, convert, database, saved queries."""
