"""Files to and from a ComfyUI server: ``/upload/image`` and checked ``/view`` downloads.

A mixin of :class:`~sceneforge.comfy.client.ComfyClient`, which sets the limits
(``max_download_bytes``, ``download_timeout``, ``verify_downloads``) in its constructor.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

from ...errors import AssetMissingError, PermanentError, TransientError
from ..protocol.errors_map import status_error
from .download import check_file_ref, check_server_name, check_view_status, download_checked
from .http import ComfyHTTP

__all__ = ["ComfyFiles", "UPLOAD_MEMORY"]

#: How long a content-addressed upload is trusted to still be on the server (seconds). A server's
#: input folder survives restarts; the limit only bounds how stale the memory may get.
UPLOAD_MEMORY = 300.0


class ComfyFiles(ComfyHTTP):
    """Uploads and downloads over the client's session."""

    _uploads: dict[str, tuple[asyncio.Future[str], float]]  # content-addressed name -> (its upload, when)

    max_download_bytes: int = 1024 * 1024 * 1024
    download_timeout: float = 600.0
    verify_downloads: bool = True

    async def upload_image(
        self, path: Path | str, *, name: str | None = None, subfolder: str = "", overwrite: bool = False,
        content_addressed: bool = False,
    ) -> str:
        """Upload a local file to the server's ``input`` folder (multipart ``/upload/image``).

        Returns the value for ``LoadImage.image``: the server's final name (it may add
        `` (1)`` when a different file already has that name), prefixed with
        ``subfolder/`` when a subfolder is used. With ``content_addressed`` (``name`` is
        derived from the bytes, as :func:`sceneforge.comfy.backend.upload_name` makes it) a
        name this client uploaded in the last :data:`UPLOAD_MEMORY` seconds is not sent
        again: a reference image shared by twenty scenes goes up once.
        """
        path = Path(path)
        name = check_server_name(name or path.name, "upload name", allow_slash=False)
        if not content_addressed:
            return await self._upload(path, name, subfolder, overwrite)
        key, now = f"{subfolder}/{name}", time.monotonic()
        known = self._uploads.get(key)
        if known is None or now - known[1] >= UPLOAD_MEMORY or (known[0].done() and known[0].exception()):
            # Shared by the jobs that need the same bytes at the same time: one request goes out.
            task = asyncio.ensure_future(self._upload(path, name, subfolder, overwrite))
            known = self._uploads[key] = (task, now)
        return await asyncio.shield(known[0])

    async def _upload(self, path: Path, name: str, subfolder: str, overwrite: bool) -> str:
        if subfolder:
            check_server_name(subfolder, "upload subfolder", allow_slash=True)
        try:
            content = path.read_bytes()
        except FileNotFoundError:
            raise AssetMissingError(f"cannot upload {path}: the file does not exist") from None
        form = aiohttp.FormData()
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        form.add_field("image", content, filename=name, content_type=ctype)
        form.add_field("type", "input")
        form.add_field("subfolder", subfolder)
        form.add_field("overwrite", "true" if overwrite else "false")
        what = f"upload {name}"
        status, body = await self._request("POST", "upload/image", what=what, data=form)
        if status == 400:
            # The same request will be rejected again.
            raise PermanentError(f"ComfyUI at {self.server} rejected the upload of {name} (HTTP 400)", status=400)
        if status != 200:
            raise status_error(status, body.decode("utf-8", "replace"), self.server, what)
        try:
            answer = json.loads(body)
            final = check_server_name(answer["name"], "upload name", allow_slash=False)
            sub = check_server_name(answer.get("subfolder") or "", "upload subfolder", allow_slash=True)
        except (ValueError, KeyError, TypeError):
            raise TransientError(f"ComfyUI at {self.server}: odd answer to {what}") from None
        return f"{sub}/{final}" if sub else final

    async def download(
        self,
        file_ref: Mapping[str, Any],
        dest: Path | str,
        *,
        max_bytes: int | None = None,
        timeout: float | None = None,
    ) -> Path:
        """Fetch one output file (a history file ref) into ``dest``, atomically.

        The local name is always ``dest``; the server's names are only query
        parameters and are refused (:class:`UnsafePathError`) before any request when
        they could traverse. A body that is short, longer than ``max_bytes``
        (default ``max_download_bytes``), slower than ``timeout`` in all (default
        ``download_timeout``) or that does not decode as the image/video its name
        says raises :class:`DownloadError` (retryable) and leaves nothing at
        ``dest``; a 404 raises :class:`GenerationError` naming the file.
        """
        filename, subfolder, kind = check_file_ref(dict(file_ref))
        label = f"{subfolder}/{filename}" if subfolder else filename
        params = {"filename": filename, "subfolder": subfolder, "type": kind}
        return await download_checked(
            lambda read_timeout: self._http().get(self._url("view"), params=params, headers=self._headers,
                                                  timeout=read_timeout),
            Path(dest), name=filename, label=label, server=self.server, where=f"ComfyUI at {self.server}: /view",
            http_timeout=self.http_timeout, deadline=float(timeout or self.download_timeout),
            max_bytes=int(max_bytes or self.max_download_bytes), verify=self.verify_downloads,
            check=lambda resp: check_view_status(resp, label, self.server, f"download {label}"))
