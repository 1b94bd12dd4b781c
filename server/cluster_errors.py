"""The cluster's failure, importable without Redis (the one-worker server never loads :mod:`.cluster`)."""


class ClusterUnavailable(Exception):
    """Redis cannot be reached (or did not answer in time): the caller degrades, never hangs."""
