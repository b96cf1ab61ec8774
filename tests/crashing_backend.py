"""A backend whose process dies while loading (like an out-of-memory kill), for tests."""

import os


class CrashBackend:
    def __init__(self, spec) -> None:
        os._exit(137)
