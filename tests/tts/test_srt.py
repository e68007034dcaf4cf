"""SRT text from cues (base.format_srt), and cues from the engines' timings."""

from __future__ import annotations

from sceneforge.tts.base import Cue, format_srt
from sceneforge.tts.edge import words_to_cues
from sceneforge.tts.espeak import split_segments


def test_format_srt_numbers_blocks_and_formats_times() -> None:
    cues = [Cue(0.0, 1.2345, "안녕하세요."), Cue(1.5, 62.0, " Second line "), Cue(3599.9996, 3723.5, "late")]
    assert format_srt(cues) == (
        "1\n00:00:00,000 --> 00:00:01,234\n안녕하세요.\n"
        "\n"
        "2\n00:00:01,500 --> 00:01:02,000\nSecond line\n"
        "\n"
        "3\n01:00:00,000 --> 01:02:03,500\nlate\n"
    )


def test_format_srt_empty_and_negative_times() -> None:
    assert format_srt([]) == ""
    assert format_srt([Cue(-0.01, 0.5, "x")]).startswith("1\n00:00:00,000 --> 00:00:00,500\n")


def test_word_cues_keep_punctuation_and_break_at_sentences() -> None:
    text = "Hello world. How are you?"
    words = [(0.0, 0.4, "Hello"), (0.5, 0.9, "world"), (1.2, 1.4, "How"), (1.5, 1.7, "are"), (1.8, 2.1, "you")]
    cues = words_to_cues(text, words)
    assert cues == [Cue(0.0, 0.9, "Hello world."), Cue(1.2, 2.1, "How are you?")]


def test_word_cues_wrap_long_lines_and_prefer_commas() -> None:
    text = "Second sentence here and there, and a much longer line that keeps going on and on"
    words = [(i * 0.3, i * 0.3 + 0.25, w) for i, w in enumerate(text.replace(",", "").split())]
    cues = words_to_cues(text, words, max_chars=40)
    assert [c.text for c in cues] == [
        "Second sentence here and there,",
        "and a much longer line that keeps going",
        "on and on",
    ]
    assert all(len(c.text) <= 40 for c in cues)
    assert all(a.end <= b.start for a, b in zip(cues, cues[1:]))


def test_word_cues_fall_back_to_bare_words_when_text_does_not_match() -> None:
    cues = words_to_cues("in 2024 we", [(0.0, 0.2, "in"), (0.3, 0.9, "twenty twenty-four"), (1.0, 1.2, "we")])
    assert [c.text for c in cues] == ["in twenty twenty-four we"]
    assert words_to_cues("anything", []) == []


def test_korean_sentences_become_segments() -> None:
    text = "안녕하세요. 저는 민수입니다!\n오늘은 3.14 이야기를 합니다"
    assert split_segments(text) == ["안녕하세요.", "저는 민수입니다!", "오늘은 3.14 이야기를 합니다"]


def test_long_sentences_are_cut_at_commas_only() -> None:
    text = "This is a longer test sentence, with a comma, and it goes on and on for a while."
    assert split_segments(text, max_chars=40) == [
        "This is a longer test sentence,",
        "with a comma,",
        "and it goes on and on for a while.",
    ]
    no_commas = "a " * 40 + "end."
    assert split_segments(no_commas, max_chars=40) == [" ".join(no_commas.split())]
    assert split_segments("  \n ") == []
