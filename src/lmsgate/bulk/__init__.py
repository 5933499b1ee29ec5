"""Bulk import and export of completions (``lmsgate completions import|export``).

Files are read and written as streams, so memory stays flat whatever their size. Imports go
through the same service layer as the API, into lmsgate's store, or through the Python
client to a remote server.
"""
