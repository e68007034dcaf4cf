"""``GET /fonts/noto-sans-cjk.otf``: the CJK font the review page's CSS uses for Korean text.

A browser on a machine without a Korean font draws Hangul as empty boxes, and the
page may not load anything from the internet, so the service serves the font that
sceneforge already depends on for its drawn text (``noto-cjk-sans-jp-regular``,
Hangul included; see :func:`sceneforge.fonts.cjk_font_path`). It is about
16 MB: the page's ``@font-face`` limits it to CJK code points (a page without them
never loads it), and the answer may be kept by the browser for a week (with an
``ETag`` to check it after). The font holds no data of anyone's, so like the page
itself it needs no token.
"""

from __future__ import annotations

import os

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from .. import AssetMissingError
from ..pipeline import cjk_font_path

__all__ = ["router", "FONT_URL", "FONT_CACHE"]

FONT_URL = "/fonts/noto-sans-cjk.otf"
FONT_CACHE = "public, max-age=604800"

router = APIRouter()


@router.get(FONT_URL, tags=["service"], summary="The CJK web font of the review page",
            responses={200: {"content": {"font/otf": {}}}, 404: {"description": "The font package is missing"}})
async def cjk_font() -> FileResponse:
    """Noto Sans CJK (Hangul, kana, kanji), cached by the browser for a week."""
    try:
        path = cjk_font_path()
    except AssetMissingError as exc:
        raise HTTPException(404, detail=str(exc)) from None
    return FileResponse(path, media_type="font/otf", stat_result=os.stat(path),
                        headers={"Cache-Control": FONT_CACHE, "X-Content-Type-Options": "nosniff"})


router.add_api_route(FONT_URL, cjk_font, methods=["HEAD"], include_in_schema=False)
