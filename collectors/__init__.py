"""Collectors: fill the store's tables on this host (eBPF programs, /proc readers).

Each collector follows one lifecycle — open → configure → load → attach → poll → close — and
appends batches (never single rows) to the store, counting what it loses.
"""
