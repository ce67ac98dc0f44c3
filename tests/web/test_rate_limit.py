"""Who a client is behind proxies, and the per-client and global limits."""

from urllib.parse import urlsplit

import httpx
import pytest

from tests.servers import SlowLink, needs_redis
from web.rate_limit import RateLimits, client_key, networks

PROXY = networks(["10.0.0.2", "172.16.0.0/12"])


def test_an_untrusted_peers_forwarded_for_is_ignored():
    assert client_key("127.0.0.1", "1.2.3.4", []) == "127.0.0.1"  # no proxies trusted: loopback is no exception
    assert client_key("203.0.113.9", "1.2.3.4", PROXY) == "203.0.113.9"  # a peer that is not a proxy


def test_behind_a_trusted_proxy_the_client_is_the_last_untrusted_hop():
    assert client_key("10.0.0.2", "198.51.100.7", PROXY) == "198.51.100.7"
    # The client made up the first entry; the proxy appended the address it really saw.
    assert client_key("10.0.0.2", "6.6.6.6, 198.51.100.7", PROXY) == "198.51.100.7"
    # Two trusted proxies in a row (one in 172.16/12) are both skipped.
    assert client_key("10.0.0.2", "6.6.6.6, 198.51.100.7, 172.20.1.1", PROXY) == "198.51.100.7"
    # Nothing forwarded, or nonsense from the proxy: the proxy itself is the client.
    assert client_key("10.0.0.2", None, PROXY) == "10.0.0.2"
    assert client_key("10.0.0.2", "bogus", PROXY) == "10.0.0.2"
    assert client_key("10.0.0.2", "[2001:db8::1]", PROXY) == "2001:db8::/64"


def test_ipv6_clients_are_keyed_by_their_64():
    assert client_key("2001:db8:1:2::1", None, []) == client_key("2001:db8:1:2:ffff:1:2:3", None, []) \
        == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1", None, []) != client_key("2001:db8:1:2::1", None, [])
    assert client_key("::ffff:192.0.2.5", None, []) == "192.0.2.5"  # IPv4 through a dual-stack socket
    assert client_key(None, None, []) == "unknown" and client_key("testclient", None, []) == "testclient"


def test_a_client_gets_its_minute_then_waits_for_the_window_to_move():
    limits = RateLimits(per_minute=3, global_per_minute=100)
    assert [limits.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limits.take("a")
    assert 55 < wait <= 60  # the first of the three leaves the window a minute after it came
    assert limits.take("a") > 0  # refused requests cost nothing, but do not bring the time closer either
    assert limits.take("b") == 0.0  # clients are counted apart


def test_the_global_cap_holds_across_clients():
    limits = RateLimits(per_minute=5, global_per_minute=4)
    assert [limits.take(f"c{i}") for i in range(4)] == [0.0] * 4
    assert limits.take("c9") == pytest.approx(60, abs=5)
    assert limits.take("c0") > 0


# --- replicas sharing Redis ----------------------------------------------------------------------

@pytest.mark.slow
@needs_redis
def test_two_web_processes_sharing_redis_hold_one_limit_per_client(tmp_path, redis_url):
    from tests.web.conftest import web_server

    settings = {"rate_limit_storage": redis_url, "web_rate_per_minute": 30, "web_trusted_proxies": "127.0.0.1"}
    empty = tmp_path / "no-model"  # no model: a counted request is answered 503 "still learning", a refused one 429
    with web_server(empty, tmp_path / "a.log", **settings) as (_, first), \
            web_server(empty, tmp_path / "b.log", **settings) as (_, second):
        # One address in front of both, handing each connection to the next replica in turn.
        balancer = SlowLink(urlsplit(first).port, urlsplit(second).port, delay_s=0.0)
        try:
            def ask(client):
                return httpx.post(balancer.url + "/api/generate", json={}, headers={"X-Forwarded-For": client},
                                  timeout=30)

            answers = [ask("10.0.0.7").status_code for _ in range(40)]
            other = ask("10.0.0.8").status_code
        finally:
            balancer.close()
    assert answers[:30] == [503] * 30 and answers[30:] == [429] * 10  # 30 a minute between both replicas
    assert other == 503  # another client has its own 30
    for log in ("a.log", "b.log"):  # both replicas answered
        assert "POST /api/generate" in (tmp_path / log).read_text(), log


def test_a_storage_that_cannot_be_used_is_one_line(tmp_path):
    from web.rate_limit import RateLimitError, RateLimits

    with pytest.raises(RateLimitError, match="DANN_RATE_LIMIT_STORAGE='nosuch://x' cannot be used"):
        RateLimits(30, 600, "nosuch://x")
    down = RateLimits(30, 600, "redis://:secret@127.0.0.1:1/0")  # nothing listens on port 1
    with pytest.raises(RateLimitError, match="cannot count requests in 127.0.0.1:1/0") as refused:
        down.take("10.0.0.1")
    assert "secret" not in str(refused.value)
