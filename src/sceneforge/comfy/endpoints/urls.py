"""Which kind of pool member a URL names, and where its API is.

* ``http(s)://HOST:PORT[/prefix]``: a ComfyUI server;
* ``runpod://ENDPOINT_ID``: RunPod's API at ``https://api.runpod.ai/v2/ENDPOINT_ID``;
  ``runpod+https://HOST/PATH`` / ``runpod+http://HOST:PORT/PATH``: the same protocol at that base
  (a self-hosted or compatible control plane; the tests' fake);
* ``comfyui-api+http(s)://HOST:PORT``: SaladTechnologies' comfyui-api in front of a ComfyUI.

The name a member is shown (and journaled) under is the URL as given, credentials redacted.
"""

from __future__ import annotations

import re
from typing import Literal, cast

from ...config import MEMBER_KINDS, redact_url
from ...errors import ConfigError

__all__ = ["MemberKind", "member_kind", "endpoint_base", "RUNPOD_API"]

MemberKind = Literal["comfyui", "runpod", "comfyui-api"]
#: RunPod's queue-based endpoint API.
RUNPOD_API = "https://api.runpod.ai/v2"
_ENDPOINT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def member_kind(url: str) -> MemberKind:
    """``comfyui``, ``runpod`` or ``comfyui-api`` by the URL's scheme."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    return cast(MemberKind, MEMBER_KINDS.get(scheme, "comfyui"))


def endpoint_base(url: str) -> str:
    """The http(s) base URL of an endpoint member's API."""
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme == "runpod":
        endpoint = rest.strip("/")
        if not _ENDPOINT_ID.fullmatch(endpoint):
            raise ConfigError(f"runpod://ENDPOINT_ID needs an endpoint id (letters, digits, - and _): {redact_url(url)}")
        return f"{RUNPOD_API}/{endpoint}"
    inner = scheme.split("+", 1)[1] if "+" in scheme else ""
    if inner not in ("http", "https") or not rest.split("/", 1)[0]:
        raise ConfigError(f"not an endpoint URL: {redact_url(url)}")
    if "?" in rest or "@" in rest.split("/", 1)[0]:
        raise ConfigError(f"an endpoint URL carries no credentials or query (the key comes from the environment): "
                          f"{redact_url(url)}")
    return f"{inner}://{rest}".rstrip("/")
