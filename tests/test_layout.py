"""Topic slugs keep letters of every script and can never escape the output folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from sceneforge.errors import UnsafePathError
from sceneforge.layout import TopicLayout, slugify


@pytest.mark.parametrize(
    ("topic", "slug"),
    [
        ("요즘 AI 이야기", "요즘-ai-이야기"),
        ("Why coffee wakes you up", "why-coffee-wakes-you-up"),
        ("Café — déjà vu", "café-déjà-vu"),
        ("日本語のテスト", "日本語のテスト"),
        ("a/b\\c", "a-b-c"),
        ("../../etc/passwd", "etc-passwd"),
        ("/abs/path", "abs-path"),
        ("tab\tnew\nline\x00nul", "tab-new-line-nul"),
        (".hidden", "hidden"),
    ],
)
def test_slugs(topic: str, slug: str):
    assert slugify(topic) == slug


@pytest.mark.parametrize("topic", ["", "   ", "..", "/", "../..", "\x00\x01", "---"])
def test_unusable_topics_rejected(topic: str):
    with pytest.raises(UnsafePathError):
        slugify(topic)


@pytest.mark.parametrize("topic", ["../x", "..", "a/../../b", "C:\\x", "~/x", "x" * 500, "a\u202eb"])
def test_slug_never_escapes(tmp_path: Path, topic: str):
    try:
        lay = TopicLayout.for_topic(tmp_path, topic)
    except UnsafePathError:
        return
    root = lay.root.resolve()
    assert root.parent == tmp_path.resolve()
    assert ".." not in lay.slug and "/" not in lay.slug and "\\" not in lay.slug
    assert not lay.slug.startswith(".")
    assert len(lay.slug) <= 80


def test_paths():
    lay = TopicLayout.for_topic("output", "demo")
    assert lay.audio_path(1) == Path("output/demo/audio_scene_1.mp3")
    assert lay.image_path(2) == Path("output/demo/image_scene_2.png")
    assert lay.frame_path(3, 1) == Path("output/demo/motion_scene_3/frame_0001.png")
    assert lay.state_dir == Path("output/demo/.sceneforge")
