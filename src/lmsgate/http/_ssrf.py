"""The SSRF guard: customer-supplied URLs may not reach lmsgate's own network.

A linked account names the provider's URL, so whoever can link an account could otherwise
make lmsgate call its own database, a cloud metadata service or an admin port. Every
outbound request therefore resolves the host first, refuses it unless **every** address is
public, and then connects to the checked address itself (the original host still goes in
``Host`` and in TLS SNI), so DNS cannot answer differently between check and connect.

Refused: loopback, private (RFC 1918, ULA), link-local (which holds 169.254.169.254, the
metadata address of most clouds), carrier-grade NAT, multicast, reserved, unspecified, and
IPv4 addresses hidden in IPv6 forms (mapped, 6to4, Teredo). The operator may allow networks
explicitly (``LMSGATE_OUTBOUND_ALLOW_NETWORKS``, e.g. ``127.0.0.1/32`` for tests or an
on-premises LMS).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import anyio

__all__ = ["AddressGuard", "BlockedAddress", "UnresolvableHost", "classify"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"),
             ipaddress.ip_address("100.100.100.200")}
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


class BlockedAddress(Exception):
    """The URL's host is, or resolves to, an address the guard refuses."""


class UnresolvableHost(BlockedAddress):
    """The URL's host does not resolve (now); nothing can be called, nothing was refused."""


def _embedded_v4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return ip.ipv4_mapped
        if ip.sixtofour:
            return ip.sixtofour
        if ip.teredo:
            return ip.teredo[1]
    return None


def classify(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public address, or ``None`` when it is."""
    inner = _embedded_v4(ip)
    if inner is not None:
        reason = classify(inner)
        return f"{reason} (inside an IPv6 address)" if reason else None
    if ip in _METADATA:
        return "a cloud metadata address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_link_local:
        return "a link-local address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "a carrier-grade NAT address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "a reserved address"
    return None


@dataclass(frozen=True, slots=True)
class AddressGuard:
    allowed: tuple[Network, ...] = ()

    @classmethod
    def allowing(cls, networks: Iterable[str]) -> AddressGuard:
        parsed = []
        for n in networks:
            try:
                parsed.append(ipaddress.ip_network(n.strip(), strict=False))
            except ValueError as exc:
                raise ValueError(f"LMSGATE_OUTBOUND_ALLOW_NETWORKS: {n!r} is not a network: {exc}") from None
        return cls(tuple(parsed))

    def check_ip(self, ip: IPAddress, host: str) -> None:
        if any(ip in net for net in self.allowed if net.version == ip.version):
            return
        reason = classify(ip)
        if reason:
            shown = host if host == str(ip) else f"{host} ({ip})"
            raise BlockedAddress(
                f"{shown} is {reason}; lmsgate does not call such addresses unless the operator "
                "allows the network in LMSGATE_OUTBOUND_ALLOW_NETWORKS"
            )

    async def resolve(self, host: str, port: int) -> str:
        """Return one checked IP address to connect to for ``host``; every address must pass."""
        host = host.strip("[]")
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            self.check_ip(literal, host)
            return str(literal)
        try:
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise UnresolvableHost(f"{host} does not resolve: {exc}") from None
        addresses = []
        for info in infos:
            ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            self.check_ip(ip, host)
            addresses.append(ip)
        if not addresses:
            raise UnresolvableHost(f"{host} does not resolve")
        return str(addresses[0])
