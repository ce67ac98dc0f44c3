"""Slow and idle connections against a real `dann web` process: headers sent one byte a second
(slowloris), a connection that sends nothing, and a body that trickles in, while normal requests
go on being served."""

import socket
import threading
import time

import httpx
import pytest

from tests.web.conftest import web_server

HEADER_TIMEOUT_S = 5.0  # the default DANN_WEB_HEADER_TIMEOUT_S


def closed_after(sock: socket.socket, send_slowly: bytes, limit_s: float) -> float:
    """Send `send_slowly` one byte a second until the server closes the connection; its seconds."""
    began = time.monotonic()
    sock.settimeout(1.0)
    for byte in send_slowly:
        assert time.monotonic() - began < limit_s, "the server kept the slow connection open"
        try:
            sock.sendall(bytes([byte]))
        except OSError:  # reset or broken pipe: closed by the server
            return time.monotonic() - began
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - began
        except TimeoutError:
            pass  # still open; a second has passed
        except OSError:
            return time.monotonic() - began
    raise AssertionError("ran out of bytes to send before the server closed the connection")


@pytest.mark.slow
def test_slow_and_idle_connections_are_closed_while_others_are_served(tmp_path):
    with web_server(tmp_path / "checkpoints", tmp_path / "web.log") as (_, url):
        port = int(url.rsplit(":", 1)[1])
        served, stop = [], threading.Event()

        def keep_asking():  # a normal visitor, all the while
            with httpx.Client(timeout=3) as client:
                while not stop.is_set():
                    began = time.monotonic()
                    assert client.get(url + "/healthz").status_code == 200
                    served.append(time.monotonic() - began)
                    time.sleep(0.2)

        visitor = threading.Thread(target=keep_asking)
        visitor.start()
        try:
            slowloris = socket.create_connection(("127.0.0.1", port))
            idle = socket.create_connection(("127.0.0.1", port))
            headers = b"GET /healthz HTTP/1.1\r\nHost: dann.test\r\nX-Padding: " + b"a" * 100
            took = closed_after(slowloris, headers, limit_s=10)
            assert HEADER_TIMEOUT_S - 1 <= took < 10, took
            idle.settimeout(5)
            assert idle.recv(1) == b""  # a connection that never said anything went too, by now
        finally:
            stop.set()
            visitor.join()
        assert len(served) >= 20 and max(served) < 1.0, served  # every normal request was served at once


@pytest.mark.slow
def test_a_trickled_body_gets_408_and_a_slow_second_request_is_cut_off(tmp_path):
    with web_server(tmp_path / "checkpoints", tmp_path / "web.log", web_body_timeout_s=2) as (_, url):
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"POST /api/generate HTTP/1.1\r\nHost: dann.test\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 40\r\n\r\n{")
            began = time.monotonic()
            sock.settimeout(10)
            answer = b""
            while chunk := sock.recv(4096):  # the server closes the connection after its answer
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive within 2 s" in answer, answer
            assert time.monotonic() - began < 8

        # Keep-alive: a first request answered at once, then a second one's headers dribbled.
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: dann.test\r\n\r\n")
            sock.settimeout(5)
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            took = closed_after(sock, b"GET /healthz HTTP/1.1\r\nHost: dann.test\r\n" + b"X: y\r\n" * 10, limit_s=10)
            assert took < 10, took
