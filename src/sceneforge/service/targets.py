"""Where a webhook may go: never back into the service, its machine or its network, unless allowed.

A caller names a webhook URL; the service then makes a request to it. Left alone, that
turns the service against itself and its neighbours (SSRF): a webhook at the service's
own ``/preview`` starts a job per job, one at another topic's ``/cancel`` cancels it,
one at ComfyUI's ``/interrupt`` on the same machine stops its work. So:

* a target that resolves to an address that is not globally routable (loopback,
  private, link-local, unspecified, shared, reserved, multicast: :attr:`ipaddress.IPv4Address.is_global`
  is false) is refused, at submit (422 naming ``options.webhook_url``) and again at
  send, after DNS, on the addresses the connection is actually made to
  (:class:`GuardedResolver`), so a name that changes its answer in between gains nothing;
* the operator may allow hosts or networks (``--webhook-allow HOST_OR_CIDR``, setting
  ``serve_webhook_allow``): a webhook receiver on the LAN, or on this machine for tests;
* the service's own address and port are refused even then;
* numeric spellings (``0x7f000001``, ``2130706433``, ``127.1``, ``[::ffff:127.0.0.1]``)
  are read the way the connection would read them: by the system resolver.

Redirects are never followed (:mod:`.webhooks`), so a public receiver cannot bounce
the request inward.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from .. import ConfigError
from ..pipeline import redact_url

__all__ = ["WebhookTargets", "GuardedResolver", "Address", "TargetRefused", "check_syntax", "address", "endpoint",
           "DEFAULT_PORTS"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_RESOLVE_TIMEOUT = 5.0
DEFAULT_PORTS = {"http": 80, "https": 443}


class TargetRefused(OSError):
    """No address of a webhook's host may be reached (what :class:`GuardedResolver` raises)."""


def address(text: str) -> Address:
    """An IP address as written (a zone, ``%eth0``, left out), an IPv4-mapped one as its IPv4 address;
    ValueError when it is none."""
    return _plain(ipaddress.ip_address(text.split("%")[0]))


def endpoint(url: str) -> tuple[str, int]:
    """The host and port a URL's connection goes to (its scheme's port when it names none)."""
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme.lower(), 80)


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_COMPATIBLE = ipaddress.ip_network("::/96")


def _plain(ip: Address) -> Address:
    """An IPv4-mapped IPv6 address as the IPv4 address it is."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _embedded(ip: Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries and reaches (6to4, Teredo, NAT64, IPv4-compatible): Python
    calls such addresses global, yet on a network that routes them they lead to the IPv4 address inside."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    found = [v4 for v4 in (ip.sixtofour, *(ip.teredo or ())) if v4 is not None]
    if any(ip in net for net in _NAT64) or (ip in _COMPATIBLE and int(ip) > 1):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def check_syntax(url: object) -> str | None:
    """What is wrong with ``url`` as a webhook URL (http or https in any case, a host, no more than 2000
    characters), or None."""
    if not isinstance(url, str) or len(url) > 2000:
        return "must be an http:// or https:// URL of at most 2000 characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    return None


class WebhookTargets:
    """The rules above for one service. ``own`` gives the service's listening addresses (known once it listens)."""

    def __init__(self, allow: Iterable[str] = (), own: Callable[[], list[tuple[str, int]]] = list) -> None:
        self.hosts: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for item in allow:
            item = item.strip().strip("[]").lower()
            try:
                self.networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                self.hosts.add(item.rstrip("."))
        self.own = own

    def _is_own(self, ip: Address, port: int) -> bool:
        for host, own_port in self.own():
            if port != own_port:
                continue
            bound = address(host)
            local = ip.is_loopback or ip.is_unspecified  # 0.0.0.0 connects to this machine
            if ip == bound or (local and (bound.is_loopback or bound.is_unspecified)) \
                    or (bound.is_unspecified and not ip.is_global):  # listening everywhere: any local address
                return True
        return False

    def refusal(self, host: str, ip: Address, port: int) -> str | None:
        """Why the address ``ip`` (that ``host`` resolved to) may not be reached on ``port``, or None."""
        ip = _plain(ip)
        if self._is_own(ip, port):
            return f"{host} is this service itself ({ip}, port {port})"
        allowed = host.lower().rstrip(".") in self.hosts or any(ip in n for n in self.networks)
        if allowed or (ip.is_global and all(v4.is_global for v4 in _embedded(ip))):
            return None
        return (f"{host} is on a loopback, private or link-local address ({ip}); the operator can allow it with "
                "--webhook-allow HOST_OR_CIDR")

    async def check(self, url: str) -> None:
        """Refuse ``url`` (ConfigError naming ``options.webhook_url``) by its syntax and where it resolves now."""
        problem = check_syntax(url)
        if problem is None:
            host, port = endpoint(url)
            try:
                addresses = await resolve(host, port)
            except OSError as exc:
                problem = f"{host} cannot be resolved ({exc.strerror or exc})"
            else:
                problem = next(filter(None, (self.refusal(host, ip, port) for ip in addresses)), None)
        if problem is not None:
            raise ConfigError(f"options.webhook_url: {redact_url(url) if isinstance(url, str) else url!r} "
                              f"{problem if problem.startswith(('must', 'is not')) else 'is refused: ' + problem}")


async def resolve(host: str, port: int) -> list[Address]:
    """Every address the system resolver gives ``host`` (IP literals in any spelling it reads), in time."""
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(loop.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM),
                                   _RESOLVE_TIMEOUT)
    return [address(str(info[4][0])) for info in infos]


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, keeping only the addresses :class:`WebhookTargets` allows (checked after DNS,
    for the very connection being made); none left is a :class:`TargetRefused` that says why."""

    def __init__(self, targets: WebhookTargets) -> None:
        self.targets = targets
        self._inner = ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        kept: list[ResolveResult] = []
        refused: list[str] = []
        for info in await self._inner.resolve(host, port, family):
            why = self.targets.refusal(host, address(info["host"]), port)
            if why:
                refused.append(why)
            else:
                kept.append(info)
        if not kept:
            raise TargetRefused(f"webhook target refused: {refused[0] if refused else host + ' has no address'}")
        return kept

    async def close(self) -> None:
        await self._inner.close()
