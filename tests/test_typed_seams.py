"""No bare ``Any`` in the signatures of the public API and of the backend seams.

Walked: every name in ``sceneforge.__all__`` (functions; classes and the classes of
instances such as the registries, with their public methods, ``__init__`` and
``__call__``, inherited ones included when sceneforge defines them), every built-in
backend class of the three registries (so the ComfyUI base they share too), the
backend base, its resources, the pool protocol and the pipeline's steps.

Annotations are read as written (``from __future__ import annotations`` keeps them
strings) and parsed with :mod:`ast`, so nothing imported only for type checking has
to resolve. ``Any`` is bare when it is the annotation itself or one member of a union
(``Any | None``, ``Optional[Any]``, ``Annotated[Any, ...]``); ``Any`` inside a
container (``dict[str, Any]``: a JSON payload) is allowed, and so is ``**data: Any``
(a keyword payload: the event data a reporter carries).
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable, Iterator
from typing import Any, Union, get_args, get_origin

import sceneforge
from sceneforge.backend import Backend, BackendResources, KeyedRequest, ServerPool
from sceneforge.images.base import image_registry
from sceneforge.motion.base import motion_registry
from sceneforge.pipeline import steps
from sceneforge.tts.base import tts_registry

_UNIONS = {"Optional", "Union", "Annotated"}


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _bare_any_expr(node: ast.expr) -> bool:
    """``Any`` itself, or ``Any`` as a member of a union (``|``, Optional, Union, Annotated's type)."""
    if _name(node) == "Any":
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _bare_any_expr(node.left) or _bare_any_expr(node.right)
    if isinstance(node, ast.Subscript) and _name(node.value) in _UNIONS:
        members = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if _name(node.value) == "Annotated":
            members = members[:1]
        return any(_bare_any_expr(m) for m in members)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a quoted forward reference
        return bare_any(node.value)
    return False


def bare_any(annotation: object) -> bool:
    """Whether an annotation (a string as written, or an object) is a bare ``Any``."""
    if annotation is inspect.Parameter.empty:
        return False
    if isinstance(annotation, str):
        return _bare_any_expr(ast.parse(annotation, mode="eval").body)
    if annotation is Any:
        return True
    return get_origin(annotation) is Union and any(bare_any(a) for a in get_args(annotation))


def signature_offenders(label: str, fn: Callable[..., object]) -> list[str]:
    """``label(param): annotation`` for each parameter or return annotated with a bare ``Any``."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature
        return []
    found = [f"{label}({p.name}): {p.annotation}" for p in sig.parameters.values()
             if p.kind is not inspect.Parameter.VAR_KEYWORD and bare_any(p.annotation)]
    if bare_any(sig.return_annotation):
        found.append(f"{label} -> {sig.return_annotation}")
    return found


def _ours(obj: object) -> bool:
    return getattr(obj, "__module__", "").startswith("sceneforge")


def class_callables(cls: type) -> Iterator[tuple[str, Callable[..., object]]]:
    """``(Class.method, function)`` for each public method, ``__init__`` and ``__call__`` sceneforge defines
    on ``cls`` or a base; properties by their getter."""
    seen: set[str] = set()
    for klass in cls.__mro__:
        if not _ours(klass):
            continue
        for name, attr in vars(klass).items():
            if name in seen or (name.startswith("_") and name not in ("__init__", "__call__")):
                continue
            seen.add(name)
            raw = attr.fget if isinstance(attr, property) else getattr(attr, "__func__", attr)
            if inspect.isfunction(raw) and _ours(raw):
                yield f"{cls.__name__}.{name}", raw


def seam_classes() -> list[type]:
    """The public API's classes and the backend seams, each once."""
    found: list[type] = []
    for name in sceneforge.__all__:
        obj = getattr(sceneforge, name)
        if not inspect.isclass(obj) and not inspect.isfunction(obj) and _ours(type(obj)):
            obj = type(obj)  # a registry: its methods are the API
        if inspect.isclass(obj):
            found.append(obj)
    found += [Backend, BackendResources, ServerPool, KeyedRequest, steps.Step, *steps.STEPS.values()]
    for registry in (tts_registry, image_registry, motion_registry):
        found += [registry.get(n) for n in registry.names()]
    return list(dict.fromkeys(found))


def all_offenders() -> list[str]:
    offenders = []
    for name in sceneforge.__all__:
        obj = getattr(sceneforge, name)
        if inspect.isfunction(obj):
            offenders += signature_offenders(name, obj)
    for cls in seam_classes():
        for label, fn in class_callables(cls):
            offenders += signature_offenders(f"{fn.__module__}:{label}", fn)
    return sorted(set(offenders))


def test_no_bare_any_in_public_and_backend_signatures() -> None:
    classes = seam_classes()
    names = {c.__name__ for c in classes}
    assert {"EspeakBackend", "ComfyImageBackend", "WanBackend", "KenBurnsBackend", "AudioStep"} <= names
    offenders = all_offenders()
    assert not offenders, f"{len(offenders)} signatures with a bare Any:\n" + "\n".join(offenders)


# --- the checker itself -------------------------------------------------------------------


def test_the_checker_tells_bare_any_from_payloads() -> None:
    for bare in ["Any", "typing.Any", "Any | None", "Optional[Any]", "Union[int, Any]", "Annotated[Any, 1]",
                 "'Any'"]:
        assert bare_any(bare), bare
    for fine in ["dict[str, Any]", "list[Any]", "Callable[..., Any]", "int | None", "Annotated[int, Any]",
                 "Anything"]:
        assert not bare_any(fine), fine
    assert bare_any(Any) and bare_any(Union[int, Any]) and not bare_any(dict[str, Any])

    def payload(kind: str, **data: Any) -> None: ...

    def loose(request: Any, *, other: int | Any = 0) -> Any: ...

    assert signature_offenders("payload", payload) == []
    assert signature_offenders("loose", loose) == ["loose(request): Any", "loose(other): int | Any", "loose -> Any"]
