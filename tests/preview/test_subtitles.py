"""SRT parsing for the burned-in subtitles."""

from __future__ import annotations

from sceneforge.preview import parse_srt


def test_parse_srt() -> None:
    text = (
        "\ufeff1\r\n00:00:01,500 --> 00:00:02.25\r\n<i>안녕</i>\r\n\r\n"
        "bad block\r\n\r\n3\r\n00:00:03,000 --> 00:00:04,000\r\n끝\r\n"
    )
    assert parse_srt(text) == [(1.5, 2.25, "안녕"), (3.0, 4.0, "끝")]
