"""Who a web client is, and how often it may ask: a limit per client and one for everyone together.

The client is the peer's address, unless the peer is one of DANN_WEB_TRUSTED_PROXIES: then it is
the nearest address in X-Forwarded-For that is not a trusted proxy (proxies append the address they
saw, so everything left of the first untrusted entry is whatever the client chose to send). An
untrusted peer's X-Forwarded-For is ignored, so a rotating header changes nothing. IPv6 clients
are keyed by their /64, the block one subscriber gets, so one host cannot mint new buckets.

The counting is the `limits` library's moving window: it is what Flask-Limiter and slowapi build
on, handles expiry of idle clients itself (memory stays bounded by what was admitted in the last
minute), and says when the oldest request in the window leaves it, which is the Retry-After. By
default it counts in this process's memory (restarting forgives everyone); with
DANN_RATE_LIMIT_STORAGE=redis://… it counts in Redis, where every replica of the page counts the
same clients together. A Redis that cannot be reached refuses requests (503) until it is back:
an uncounted page would be an unlimited one.
"""

import ipaddress
import logging
import time

from limits import RateLimitItemPerMinute
from limits.errors import ConfigurationError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from lstm.errors import DannError

log = logging.getLogger("dann.web")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(entries: list[str]) -> list[Network]:
    """DANN_WEB_TRUSTED_PROXIES as networks (a bare address is a network of one)."""
    return [ipaddress.ip_network(entry, strict=False) for entry in entries]


def client_key(peer: str | None, forwarded_for: str | None, trusted: list[Network]) -> str:
    """The key a client is counted under: an IPv4 address, an IPv6 /64, or the peer as given
    when it is no address at all (a Unix socket, a test client)."""
    address = _address(peer)
    if address is None:
        return peer or "unknown"
    if trusted and forwarded_for and _trusted(address, trusted):
        for entry in reversed(forwarded_for.split(",")):
            hop = _address(entry.strip())
            if hop is None:
                # A proxy we trust wrote something that is not an address: count the proxy itself
                # rather than believe the rest of the header.
                log.warning("X-Forwarded-For from trusted proxy %s has %r, not an address", peer, entry.strip()[:60])
                break
            address = hop
            if not _trusted(hop, trusted):
                break
    return _key(address)


def over_https(scheme: str, peer: str | None, forwarded_proto: str | None, trusted: list[Network]) -> bool:
    """Whether the client's request came over HTTPS: to this server, or to a trusted proxy that
    says so in X-Forwarded-Proto (its last entry is the one it wrote)."""
    if scheme == "https":
        return True
    address = _address(peer)
    if address is None or not forwarded_proto or not _trusted(address, trusted):
        return False
    return forwarded_proto.split(",")[-1].strip().lower() == "https"


def _address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address((text or "").strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped  # ::ffff:1.2.3.4 from a dual-stack socket is the IPv4 client
    return address


def _trusted(address, trusted: list[Network]) -> bool:
    return any(address.version == network.version and address in network for network in trusted)


def _key(address) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class RateLimitError(DannError):
    """The rate limits' storage cannot be used: a bad DANN_RATE_LIMIT_STORAGE, or a Redis that is down."""


class RateLimits:
    """`per_minute` requests per client and `global_per_minute` for all clients together, in any
    60 seconds, counted in `storage` (a `limits` storage URI). A refused request costs nothing."""

    def __init__(self, per_minute: int, global_per_minute: int, storage: str = "memory://"):
        self.per_client = RateLimitItemPerMinute(per_minute)
        self.everyone = RateLimitItemPerMinute(global_per_minute)
        self.where = storage.split("@")[-1]  # never a password in a message
        try:
            self._limiter = MovingWindowRateLimiter(storage_from_string(storage))
        except (ConfigurationError, ValueError, ImportError) as error:
            raise RateLimitError(f"DANN_RATE_LIMIT_STORAGE={self.where!r} cannot be used: {error}") from None

    def take(self, client: str) -> float:
        """0 if `client` may go ahead now (and it is counted), otherwise the seconds until it may.
        Raises RateLimitError when the storage cannot be reached."""
        try:
            for item, key in ((self.per_client, client), (self.everyone, "*")):
                if not self._limiter.test(item, key):
                    return max(0.001, self._limiter.get_window_stats(item, key).reset_time - time.time())
            self._limiter.hit(self.per_client, client)
            self._limiter.hit(self.everyone, "*")
        except (ConnectionError, OSError) as error:
            raise RateLimitError(f"cannot count requests in {self.where}: {error}") from None
        except Exception as error:  # noqa: BLE001 - the redis client's own errors, whose module may not be installed
            if type(error).__module__.split(".")[0] != "redis":
                raise
            raise RateLimitError(f"cannot count requests in {self.where}: {error}") from None
        return 0.0
