"""The site's announcement banner on the hub's pages, read from a file.

The file (``jupyterhub_announcement_file``) holds plain text; missing or
empty means no banner. The hub calls :class:`AnnouncementFile` for every
page it renders (a callable in ``c.JupyterHub.template_vars``), which costs
one ``stat()``: the text is read again only when the file's mtime, size or
inode changed. So an admin changes the banner by rewriting the file (role
jupyterhub's tag ``announcement`` does), without restarting the hub.

The text is returned as it is: the page template prints it with
JupyterHub's Jinja autoescape, so markup in it is shown, never run.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Optional

LOG = logging.getLogger("hpcgw.branding")
# A banner is a sentence or two; a larger file is cut here.
MAX_BYTES = 2000


class AnnouncementFile:
    """The banner's text (stripped, "" for none), cached by the file's identity."""

    def __init__(self, path: str, max_bytes: int = MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._key: Optional[tuple[int, int, int]] = None
        self._text = ""

    def read(self) -> str:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._key, self._text = None, ""
            return ""
        except OSError as err:
            LOG.warning("announcement file %s: %s", self.path, err)
            return ""
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        if key == self._key:
            return self._text
        try:
            with open(self.path, "rb") as handle:
                data = handle.read(self.max_bytes)
        except OSError as err:
            LOG.warning("announcement file %s: %s", self.path, err)
            return ""
        self._key, self._text = key, data.decode("utf-8", errors="replace").strip()
        return self._text

    def __call__(self, user: Any = None) -> str:
        """Template variable: JupyterHub calls it with the page's user (unused)."""
        return self.read()
