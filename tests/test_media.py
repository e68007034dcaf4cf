"""One way to open an image from outside: its size checked before any pixel is decoded, and every way Pillow
fails on a file that is no whole image said as one error."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from sceneforge.media import MAX_PIXELS, NotAnImage, TooManyPixels, ffmpeg_exe, open_bounded


def _png(size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buf, "PNG")
    return buf.getvalue()


def test_an_image_opens_from_a_path_or_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(_png())
    for source in (path, str(path), _png()):
        with open_bounded(source) as im:
            im.load()
            assert im.size == (64, 48)


def test_more_pixels_than_the_cap_is_refused_from_the_header() -> None:
    with pytest.raises(TooManyPixels) as err, open_bounded(_png((100, 100)), max_pixels=9_999):
        pass
    assert (err.value.width, err.value.height) == (100, 100) and "100x100 is more than 9,999 pixels" in str(err.value)
    assert MAX_PIXELS == 64_000_000


def test_pillows_bomb_guard_is_an_error_never_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64x48 is past the warning's line, not the error's
    with pytest.raises(TooManyPixels) as err, open_bounded(_png()):
        pass
    assert err.value.width is None and "more pixels than an image may have" in str(err.value)


@pytest.mark.parametrize("damage", ["html", "truncated", "bad crc"])
def test_every_broken_file_is_not_an_image(damage: str) -> None:
    data = bytearray(_png())
    if damage == "html":
        data = bytearray(b"<html>login</html>")
    elif damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data[data.index(b"IDAT") + 6] ^= 0xFF  # Pillow says SyntaxError for a bad chunk checksum
    with pytest.raises(NotAnImage), open_bounded(bytes(data)) as im:
        im.verify()
    with pytest.raises(NotAnImage):
        with open_bounded(Path("/nonexistent/x.png")):
            pass


def test_ffmpeg_is_the_bundled_one() -> None:
    assert Path(ffmpeg_exe()).is_file()
