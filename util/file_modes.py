"""The mode of files written through a temporary file and a rename.

``tempfile.mkstemp`` creates its file readable by its owner only (0600), and the rename keeps
that mode; a checkpoint or an exported model written that way could not be read by another
account (a shared --checkpoints_dir, serve.py run as a service user), unlike a file written by
a plain ``open`` or ``torch.save``, which honour the umask."""
from __future__ import annotations

import os


def umask_mode(fd: int) -> None:
    """Give the open file ``fd`` the mode a plain ``open`` would have: 0666 less the umask."""
    umask = os.umask(0)   # reading the umask means setting it; put it straight back
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
