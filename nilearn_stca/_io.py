"""Atomic writes: a file appears under its name only once it is complete."""

import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``, renamed to ``path`` when the block succeeds.

    The temporary name keeps the file's extensions (``.nii.gz``, ``.csv``...), so writers
    that pick the format from the name work unchanged. The block may also make a folder
    there. If the block fails, the temporary file or folder is removed and ``path`` is left
    as it was.
    """
    path = Path(path)
    temporary = path.with_name(f".partial-{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if temporary.is_dir():
            shutil.rmtree(temporary)
        else:
            temporary.unlink(missing_ok=True)
