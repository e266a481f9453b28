"""Head checkpoints are written whole or not at all, even when training is killed.

fairseq's ``checkpoint_utils.save_checkpoint`` writes the first checkpoint of a save to
``FILE.tmp`` and renames it (``PathManager.rename``, no fsync: a power cut can leave an
empty file under the final name), then makes ``checkpoint_best.pt``, ``checkpoint_last.pt``
and the interval copies with ``PathManager.copy(src, dst, overwrite=True)``, which empties
``dst`` first: a kill in that window destroys the previous checkpoint. fairseq has no hook
around these writes, so this is the plugin's one patch of fairseq itself (see also
``tasks/generate_hook.py`` for fairseq-generate's output):

while head training runs (:func:`install`, called by the head's build from a base, which
only fairseq-train does), ``fairseq.file_io.PathManager.copy`` and ``.rename`` are wrapped.
A write whose destination lies in the head's ``--save-dir`` goes to a temporary file in that
folder, is flushed and fsynced, and replaces the destination with ``os.replace`` (then the
folder is fsynced); every other call goes to fairseq's own function unchanged. The originals
are put back exactly by :func:`restore` (at the latest when the process exits).
"""

import atexit
import os
import re
import shutil
import tempfile

TEMP_PREFIX = "."
TEMP_SUFFIX = ".partial"
_TEMP_NAME = re.compile(r"^\..+\.pt\.[A-Za-z0-9_]+\.partial$")
_installed = {}  # "save_dir" and the original "copy" and "rename" while installed


def _fsync_folder(folder):
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(src, dst):
    """Move the complete file ``src`` onto ``dst`` (same folder) so that ``dst`` is the old
    file or the new one, never a part, also after a power cut."""
    with open(src, "rb+") as written:
        os.fsync(written.fileno())
    os.replace(src, dst)
    _fsync_folder(os.path.dirname(os.path.abspath(dst)))


def copy_durably(src, dst):
    """Copy ``src`` to ``dst`` through a temporary file next to ``dst``: a kill at any moment
    leaves ``dst`` as it was or as a whole copy (and at worst a ``.*.partial`` file)."""
    folder = os.path.dirname(os.path.abspath(dst))
    fd, temp = tempfile.mkstemp(
        dir=folder, prefix=TEMP_PREFIX + os.path.basename(dst) + ".", suffix=TEMP_SUFFIX
    )
    try:
        with open(src, "rb") as source, os.fdopen(fd, "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)
            target.flush()
            os.fsync(target.fileno())
        os.replace(temp, dst)
    except BaseException:
        if os.path.lexists(temp):
            os.unlink(temp)
        raise
    _fsync_folder(folder)


def leftover_temporaries(save_dir):
    """Temporary files a killed copy left in ``save_dir`` (never a checkpoint)."""
    if not os.path.isdir(save_dir):
        return []
    names = sorted(os.listdir(save_dir))
    return [os.path.join(save_dir, name) for name in names if _TEMP_NAME.match(name)]


def _in_save_dir(path):
    folder = os.path.dirname(os.path.abspath(path))
    return os.path.realpath(folder) == _installed.get("save_dir")


def _copy(src_path, dst_path, overwrite=False):
    if not (_in_save_dir(dst_path) and os.path.isfile(src_path)):
        return _installed["copy"](src_path, dst_path, overwrite=overwrite)
    if os.path.exists(dst_path) and not overwrite:
        return False
    copy_durably(src_path, dst_path)
    return True


def _rename(src, dst):
    if not _in_save_dir(dst):
        return _installed["rename"](src, dst)
    return replace_durably(src, dst)


def install(save_dir):
    """Make every checkpoint write into ``save_dir`` whole or absent (once per process; a
    second call moves the guard to the new folder). Leftover temporaries are removed."""
    from fairseq.file_io import PathManager

    for temp in leftover_temporaries(save_dir):
        os.unlink(temp)
    if not _installed:
        _installed["copy"] = PathManager.__dict__["copy"]
        _installed["rename"] = PathManager.__dict__["rename"]
        PathManager.copy = staticmethod(_copy)
        PathManager.rename = staticmethod(_rename)
        atexit.register(restore)
    _installed["save_dir"] = os.path.realpath(save_dir)


def restore():
    """Put fairseq's own ``PathManager.copy`` and ``.rename`` back, exactly."""
    if not _installed:
        return
    from fairseq.file_io import PathManager

    PathManager.copy = _installed.pop("copy")
    PathManager.rename = _installed.pop("rename")
    _installed.clear()
