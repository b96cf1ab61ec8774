"""embedlab.files writes whole files with the mode a plain write would give (a shared results
folder stays readable by its group), and keeps the mode of a file it replaces."""

from __future__ import annotations

import os
import stat

from embedlab import files
from embedlab.files import write_bytes, write_text


def test_new_files_get_the_umask_mode_and_replaced_files_keep_theirs(tmp_path):
    umask = os.umask(0o022)
    files._file_mode.cache_clear()  # read again under this umask
    try:
        write_text(tmp_path / "a.txt", "一")
        assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
        (tmp_path / "a.txt").chmod(0o640)
        write_bytes(tmp_path / "a.txt", b"two")
        assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o640
        assert (tmp_path / "a.txt").read_bytes() == b"two"
        assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]  # no temporary file left
    finally:
        os.umask(umask)
        files._file_mode.cache_clear()
