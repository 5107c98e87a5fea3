"""``http`` steps (irx.executors.http.run_http): what docs/playbook-format.md promises for one request from
the control node, driven through httpx's MockTransport (no network). The request irx sends is asserted as
the handler receives it; a few tests go through httpx's real HTTP/1.1 transport over a Unix socket in a
temp dir (still no network) to see the bytes on the wire, which MockTransport never serializes."""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from irx.executors.base import LOCAL_HOST
from irx.executors.http import BODY_CAP, check_expectations, run_http
from irx.results import HostResult

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that keeps every request it was sent and answers with ``reply``."""

    def __init__(self, reply: Handler | httpx.Response | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.reply = reply

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if callable(self.reply):
            return self.reply(request)
        return self.reply if self.reply is not None else httpx.Response(200, text="fine")

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))

    @property
    def only(self) -> httpx.Request:
        assert len(self.requests) == 1, self.requests
        return self.requests[0]


def run(spec: dict[str, Any], reply: Handler | httpx.Response | None = None) -> tuple[HostResult, Recorder]:
    recorder = Recorder(reply)
    with recorder.client() as client:
        return run_http(spec, client), recorder


def raising(exc: type[httpx.RequestError], text: str) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc(text, request=request)

    return handler


# --- the request, sent as given ----------------------------------------------------------------------------------


def test_a_plain_get_is_the_default_and_goes_to_the_url_as_given() -> None:
    result, seen = run({"url": "http://127.0.0.1:8089/health?full=1&x=a%20b"})
    assert seen.only.method == "GET"
    assert str(seen.only.url) == "http://127.0.0.1:8089/health?full=1&x=a%20b"
    assert seen.only.content == b""
    assert result.status == "ok"
    assert result.host == LOCAL_HOST


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_every_documented_method_is_sent_as_that_method(method: str) -> None:
    result, seen = run({"url": "http://svc/x", "method": method})
    assert seen.only.method == method
    assert result.status == "ok"


def test_headers_and_a_text_body_are_sent_exactly() -> None:
    spec = {
        "url": "http://svc/api/cache",
        "method": "POST",
        "headers": {"Authorization": "Bearer s3cr3t", "X-Incident": "INC-42", "Content-Type": "text/plain"},
        "body": "flush all\nnow: é",
    }
    result, seen = run(spec)
    request = seen.only
    assert request.method == "POST"
    assert request.headers["authorization"] == "Bearer s3cr3t"
    assert request.headers["x-incident"] == "INC-42"
    assert request.headers["content-type"] == "text/plain"
    assert request.content == "flush all\nnow: é".encode()
    assert request.headers["content-length"] == str(len("flush all\nnow: é".encode()))
    assert result.status == "ok"


def test_a_json_body_is_serialized_and_typed_as_json() -> None:
    payload = {"enabled": True, "limit": 5, "ratio": 0.5, "tags": ["a", "b"], "none": None, "name": "é"}
    result, seen = run({"url": "http://svc/flags", "method": "PUT", "json": payload})
    assert seen.only.method == "PUT"
    assert seen.only.headers["content-type"] == "application/json"
    assert json.loads(seen.only.content) == payload
    assert result.status == "ok"


def test_the_step_timeout_is_the_request_timeout_and_10s_by_default() -> None:
    _, seen = run({"url": "http://svc/", "timeout": "2500ms"})
    assert seen.only.extensions["timeout"] == {"connect": 2.5, "read": 2.5, "write": 2.5, "pool": 2.5}
    _, seen = run({"url": "http://svc/"})
    assert seen.only.extensions["timeout"] == {"connect": 10.0, "read": 10.0, "write": 10.0, "pool": 10.0}


# --- hostile values are data ---------------------------------------------------------------------------------


def test_template_syntax_in_url_headers_and_bodies_is_sent_literally() -> None:
    """run_http gets an already rendered spec: whatever is left that looks like a template is data."""
    text = "{{ lookup('pipe', 'id') }} {% raw %}${HOME} $(id)"
    _, seen = run({"url": "http://svc/q?x={{x}}", "method": "POST", "headers": {"X-T": "{{ secret }}"}, "body": text})
    assert seen.only.content == text.encode()
    assert seen.only.headers["x-t"] == "{{ secret }}"
    assert seen.only.url.params["x"] == "{{x}}"
    _, seen = run({"url": "http://svc/", "method": "POST", "json": {"q": "{{ x }}", "n": ["{% if %}"]}})
    assert json.loads(seen.only.content) == {"q": "{{ x }}", "n": ["{% if %}"]}


def test_a_response_with_template_syntax_is_kept_as_text() -> None:
    result, _ = run({"url": "http://svc/"}, httpx.Response(200, text="{{ 7 * 6 }} {% for %}"))
    assert result.stdout == "{{ 7 * 6 }} {% for %}"
    assert result.extra["body"] == "{{ 7 * 6 }} {% for %}"


def test_a_crlf_in_a_header_value_is_one_header_never_a_second_one() -> None:
    """Through the mock transport the value reaches the request intact, as one header; nothing is split."""
    _, seen = run({"url": "http://svc/", "headers": {"X-Note": "a\r\nX-Injected: 1"}})
    assert seen.only.headers.get_list("x-note") == ["a\r\nX-Injected: 1"]
    assert "x-injected" not in seen.only.headers


# --- expect ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_without_expect_any_2xx_is_success(status: int) -> None:
    result, _ = run({"url": "http://svc/"}, httpx.Response(status))
    assert result.status == "ok"
    assert result.msg == ""
    assert result.extra["status_code"] == status


@pytest.mark.parametrize("status", [199, 301, 404, 500, 503])
def test_without_expect_anything_else_fails_naming_the_status(status: int) -> None:
    result, _ = run({"url": "http://svc/"}, httpx.Response(status))
    assert result.status == "failed"
    assert str(status) in result.msg
    assert "2xx" in result.msg
    assert result.extra["status_code"] == status


def test_expect_status_single_code() -> None:
    result, _ = run({"url": "http://svc/", "expect": {"status": 503}}, httpx.Response(503, text="draining"))
    assert result.status == "ok"
    result, _ = run({"url": "http://svc/", "expect": {"status": 200}}, httpx.Response(204))
    assert result.status == "failed"
    assert "204" in result.msg
    assert "200" in result.msg


def test_expect_status_list_accepts_any_of_them_and_names_them_all_when_none_matches() -> None:
    spec = {"url": "http://svc/", "expect": {"status": [200, 301, 302]}}
    for status in (200, 301, 302):
        result, _ = run(spec, httpx.Response(status))
        assert result.status == "ok", status
    result, _ = run(spec, httpx.Response(500))
    assert result.status == "failed"
    assert "500" in result.msg
    assert all(code in result.msg for code in ("200", "301", "302"))


def test_expect_json_dotted_paths_and_list_indexes() -> None:
    document = {"status": "ok", "checks": {"database": "up", "cache": {"hits": 10}}, "nodes": [{"id": "a"}]}
    spec = {"url": "http://svc/", "expect": {"json": {"status": "ok", "checks.database": "up", "nodes.0.id": "a"}}}
    result, _ = run(spec, httpx.Response(200, json=document))
    assert result.status == "ok"
    assert result.extra["json"] == document


def test_expect_json_mismatch_names_the_field_and_both_values() -> None:
    spec = {"url": "http://svc/", "expect": {"json": {"checks.database": "up"}}}
    result, _ = run(spec, httpx.Response(200, json={"checks": {"database": "down"}}))
    assert result.status == "failed"
    assert "checks.database" in result.msg
    assert "'down'" in result.msg
    assert "'up'" in result.msg


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(200, json={"checks": {}}),
        httpx.Response(200, json={"checks": "up"}),
        httpx.Response(200, json=["up"]),
        httpx.Response(200, text="not json at all"),
    ],
    ids=["absent key", "not an object", "a list", "not JSON"],
)
def test_expect_json_on_a_missing_field_fails_saying_it_is_missing(reply: httpx.Response) -> None:
    result, _ = run({"url": "http://svc/", "expect": {"json": {"checks.database": "up"}}}, reply)
    assert result.status == "failed"
    assert "checks.database" in result.msg
    assert "missing" in result.msg


def test_expect_json_compares_values_of_any_type() -> None:
    spec = {"url": "http://svc/", "expect": {"json": {"count": 3, "flags": ["a"], "ready": None}}}
    assert run(spec, httpx.Response(200, json={"count": 3, "flags": ["a"], "ready": None}))[0].status == "ok"
    assert run(spec, httpx.Response(200, json={"count": "3", "flags": ["a"], "ready": None}))[0].status == "failed"
    assert run(spec, httpx.Response(200, json={"count": 3, "flags": ["a", "b"], "ready": None}))[0].status == "failed"


def test_expect_body_is_a_regular_expression_searched_in_the_body() -> None:
    spec = {"url": "http://svc/", "expect": {"body": r"healthy \(\d+ checks\)"}}
    result, _ = run(spec, httpx.Response(200, text="<p>all healthy (12 checks)</p>"))
    assert result.status == "ok"
    result, _ = run(spec, httpx.Response(200, text="<p>degraded</p>"))
    assert result.status == "failed"
    assert "body does not match" in result.msg
    assert r"healthy \(\d+ checks\)" in result.msg


def test_status_is_checked_before_the_body() -> None:
    spec = {"url": "http://svc/", "expect": {"status": 200, "body": "healthy"}}
    result, _ = run(spec, httpx.Response(500, text="healthy"))
    assert result.status == "failed"
    assert "500" in result.msg


def test_check_expectations_alone() -> None:
    assert check_expectations({}, 200, "", None) is None
    assert check_expectations({"expect": None}, 204, "", None) is None
    assert check_expectations({"expect": {"status": [404]}}, 404, "", None) is None
    assert check_expectations({"expect": {"json": {"a.1": "y"}}}, 200, "", {"a": ["x", "y"]}) is None
    assert "missing" in (check_expectations({"expect": {"json": {"a.2": "y"}}}, 200, "", {"a": ["x", "y"]}) or "")
    assert "missing" in (check_expectations({"expect": {"json": {"a.-1": "y"}}}, 200, "", {"a": ["x", "y"]}) or "")


def test_a_dotted_path_with_a_non_ascii_digit_is_a_missing_field_not_a_crash() -> None:
    problem = check_expectations({"expect": {"json": {"items.²": 1}}}, 200, "", {"items": [1, 2, 3]})
    assert problem is not None
    assert "missing" in problem


# --- the result --------------------------------------------------------------------------------------------------


def test_the_result_carries_status_code_json_body_and_elapsed() -> None:
    result, _ = run({"url": "http://svc/"}, httpx.Response(200, json={"status": "ok", "n": [1, 2]}))
    assert result.status == "ok"
    assert result.rc is None
    assert result.extra["status_code"] == 200
    assert result.extra["json"] == {"status": "ok", "n": [1, 2]}
    assert json.loads(result.extra["body"]) == {"status": "ok", "n": [1, 2]}
    assert result.stdout == result.extra["body"]
    assert isinstance(result.extra["elapsed"], float)
    assert result.extra["elapsed"] >= 0
    assert result.duration >= 0


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(200, text="plain text"),
        httpx.Response(200, content=b""),
        httpx.Response(200, content=b"{truncated", headers={"content-type": "application/json"}),
        httpx.Response(200, content=b"\xff\xfe\x00garbage", headers={"content-type": "application/json"}),
    ],
    ids=["text", "empty", "broken JSON", "not UTF-8"],
)
def test_a_body_that_is_not_json_gives_json_null_and_still_succeeds(reply: httpx.Response) -> None:
    result, _ = run({"url": "http://svc/"}, reply)
    assert result.status == "ok"
    assert result.extra["json"] is None


def test_a_failed_expectation_still_reports_the_response() -> None:
    result, _ = run({"url": "http://svc/"}, httpx.Response(503, json={"status": "draining"}))
    assert result.status == "failed"
    assert result.extra["status_code"] == 503
    assert result.extra["json"] == {"status": "draining"}
    assert result.stdout == '{"status":"draining"}'


def test_a_huge_body_is_capped_in_stdout_and_body() -> None:
    text = "".join(f"line {i:07d}\n" for i in range(BODY_CAP // 4))  # 13 chars a line: about 3.25 x the cap
    assert len(text) > 3 * BODY_CAP
    result, _ = run({"url": "http://svc/"}, httpx.Response(200, text=text))
    assert result.status == "ok"
    assert len(result.stdout) == BODY_CAP
    assert result.stdout == text[:BODY_CAP]
    assert result.extra["body"] == result.stdout


def test_the_json_of_a_huge_body_is_the_whole_document() -> None:
    """json is "the parsed body" (docs): parsed from the whole response, not from the capped text."""
    document = {"items": [f"item-{i:06d}" for i in range(20_000)], "status": "ok"}
    result, _ = run({"url": "http://svc/", "expect": {"json": {"status": "ok"}}}, httpx.Response(200, json=document))
    assert len(result.stdout) == BODY_CAP
    assert result.extra["json"] == document
    assert result.status == "ok"


def test_deeply_nested_json_from_the_server_is_no_crash() -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    result, _ = run({"url": "http://svc/"}, httpx.Response(200, content=nested))
    assert result.status == "ok"  # a 2xx with a body irx cannot parse as JSON: its json is null
    assert result.extra["json"] is None
    assert len(result.stdout) == BODY_CAP


# --- redirects ---------------------------------------------------------------------------------------------------


def redirect(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/old":
        return httpx.Response(302, headers={"Location": "http://svc/new"})
    return httpx.Response(200, text="moved here")


def test_a_redirect_is_not_followed_and_is_no_2xx() -> None:
    result, seen = run({"url": "http://svc/old"}, redirect)
    assert [str(r.url) for r in seen.requests] == ["http://svc/old"]
    assert result.status == "failed"
    assert "302" in result.msg
    assert result.extra["status_code"] == 302


def test_a_redirect_is_success_when_expected() -> None:
    result, seen = run({"url": "http://svc/old", "expect": {"status": [301, 302]}}, redirect)
    assert len(seen.requests) == 1
    assert result.status == "ok"


class OwnClients:
    """httpx.Client as run_http makes it when given none, with a mock transport put under it."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.made: list[tuple[dict[str, Any], httpx.Client]] = []
        self.real = httpx.Client

    def __call__(self, **kwargs: Any) -> httpx.Client:
        client = self.real(transport=httpx.MockTransport(self.recorder), **kwargs)
        self.made.append((kwargs, client))
        return client


@pytest.fixture
def own_clients(monkeypatch: pytest.MonkeyPatch) -> Callable[[Handler | httpx.Response | None], OwnClients]:
    def install(reply: Handler | httpx.Response | None = None) -> OwnClients:
        clients = OwnClients(Recorder(reply))
        monkeypatch.setattr(httpx, "Client", clients)
        return clients

    return install


def test_its_own_client_follows_no_redirect_and_is_closed(own_clients: Callable[..., OwnClients]) -> None:
    clients = own_clients(redirect)
    result = run_http({"url": "http://svc/old"})
    ((kwargs, client),) = clients.made
    assert kwargs["follow_redirects"] is False
    assert [str(r.url) for r in clients.recorder.requests] == ["http://svc/old"]
    assert result.status == "failed"
    assert client.is_closed


def test_its_own_client_verifies_tls_unless_told_not_to(own_clients: Callable[..., OwnClients]) -> None:
    clients = own_clients()
    run_http({"url": "https://svc/"})
    run_http({"url": "https://svc/", "verify_tls": False})
    assert [kwargs["verify"] for kwargs, _ in clients.made] == [True, False]


def test_its_own_client_is_closed_after_an_error_too(own_clients: Callable[..., OwnClients]) -> None:
    clients = own_clients(raising(httpx.ConnectError, "[Errno 111] Connection refused"))
    result = run_http({"url": "http://svc/"})
    assert result.status == "failed"
    ((_, client),) = clients.made
    assert client.is_closed


def test_a_client_given_is_left_open_for_its_owner() -> None:
    recorder = Recorder()
    with recorder.client() as client:
        run_http({"url": "http://svc/"}, client)
        assert not client.is_closed
        run_http({"url": "http://svc/"}, client)
    assert len(recorder.requests) == 2


# --- errors are results, never exceptions ------------------------------------------------------------------------


@pytest.mark.parametrize("exc", [httpx.ReadTimeout, httpx.ConnectTimeout, httpx.WriteTimeout, httpx.PoolTimeout])
def test_a_timeout_is_timed_out_naming_the_request_and_the_limit(exc: type[httpx.TimeoutException]) -> None:
    result, _ = run({"url": "http://svc/slow", "method": "POST", "timeout": "5s"}, raising(exc, "timed out"))
    assert result.status == "timed_out"
    assert "POST http://svc/slow" in result.msg
    assert "5s" in result.msg
    assert result.host == LOCAL_HOST


def test_a_refused_connection_is_failed_with_the_reason() -> None:
    result, _ = run({"url": "http://127.0.0.1:9/"}, raising(httpx.ConnectError, "[Errno 111] Connection refused"))
    assert result.status == "failed"
    assert "GET http://127.0.0.1:9/" in result.msg
    assert "Connection refused" in result.msg


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (httpx.RemoteProtocolError, "Server disconnected without sending a response."),
        (httpx.ReadError, "[Errno 104] Connection reset by peer"),
        (httpx.ProxyError, "407 Proxy Authentication Required"),
        (httpx.DecodingError, "Error -3 while decompressing data"),
    ],
)
def test_any_other_transport_error_is_failed_with_its_text(exc: type[httpx.RequestError], text: str) -> None:
    result, _ = run({"url": "http://svc/"}, raising(exc, text))
    assert result.status == "failed"
    assert text in result.msg


@pytest.mark.parametrize(
    ("spec", "cause"),
    [
        ({"url": "http://héllo☃.invalid/"}, "IDNA"),
        ({"url": "http://127.0.0.1:9/\x01"}, "non-printable"),
        ({"url": "http://[::1/"}, "port"),
        ({"url": "http://svc/", "headers": {"X-Name": "héllo ☃"}}, "ascii"),
        ({"url": "http://svc/", "headers": {"Ünïcode": "v"}}, "ascii"),
        ({"url": "http://svc/", "method": "POST", "json": {"ratio": float("nan")}}, "JSON"),
        ({"url": None}, "url"),
    ],
    ids=["idna host", "control character", "broken ipv6", "non-ascii value", "non-ascii name",
         "nan in json", "no url"],
)  # fmt: skip
def test_an_unbuildable_request_is_failed_with_the_cause_and_sends_nothing(spec: dict[str, Any], cause: str) -> None:
    result, seen = run(spec)
    assert seen.requests == []
    assert result.status == "failed"
    assert "cannot make this request" in result.msg
    assert cause.lower() in result.msg.lower()
    assert "\n" not in result.msg
    assert "\x01" not in result.msg  # the URL is quoted (repr), a control character never reaches the terminal


@pytest.mark.parametrize("url", ["ftp://files.invalid/pub", "not a url", "/health"])
def test_an_unsupported_or_missing_scheme_fails_without_any_connection(url: str) -> None:
    """Through run_http's own client and httpx's real transport: refused before any connection is made."""
    result = run_http({"url": url})
    assert result.status == "failed"
    assert "protocol" in result.msg
    assert url.split(":")[0] in result.msg


# --- on the wire: httpx's real HTTP/1.1 transport, over a Unix socket ----------------------------------------------


class WireServer:
    """An HTTP/1.1 responder on a Unix socket: records each request's raw bytes, answers 200 ``ok``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.raw: list[bytes] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = self._read(conn)
                if data:
                    self.raw.append(data)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    @staticmethod
    def _read(conn: socket.socket) -> bytes:
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return data
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(rest) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                rest += chunk
            return head + b"\r\n\r\n" + rest
        except OSError:
            return data

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.HTTPTransport(uds=str(self.path)))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def wire() -> Iterator[WireServer]:
    directory = Path(tempfile.mkdtemp(prefix="irx-http-"))  # short: a Unix socket path has ~100 bytes
    server = WireServer(directory / "s")
    try:
        yield server
    finally:
        server.close()
        shutil.rmtree(directory, ignore_errors=True)


def test_on_the_wire_the_request_is_what_the_step_says(wire: WireServer) -> None:
    spec = {"url": "http://svc/api/flush?all=1", "method": "POST", "headers": {"X-Incident": "INC-42"},
            "body": "{{ not a template }}"}  # fmt: skip
    with wire.client() as client:
        result = run_http(spec, client)
    assert result.status == "ok"
    assert result.stdout == "ok"
    (raw,) = wire.raw
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /api/flush?all=1 HTTP/1.1"
    assert b"X-Incident: INC-42" in lines
    assert b"Host: svc" in lines
    assert body == b"{{ not a template }}"


@pytest.mark.parametrize(
    ("spec", "cause"),
    [
        ({"headers": {"X-Note": "a\r\nX-Injected: 1"}}, "header value"),
        ({"headers": {"X-Note": "a\nX-Injected: 1"}}, "header value"),
        ({"headers": {"X-Note\r\nX-Injected": "1"}}, "header name"),
        ({"method": "GET /admin HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET"}, "method"),
    ],
    ids=["crlf in value", "lf in value", "crlf in name", "crlf in method"],
)
def test_on_the_wire_a_line_break_in_a_header_or_method_is_refused_not_injected(
    wire: WireServer, spec: dict[str, Any], cause: str
) -> None:
    with wire.client() as client:
        result = run_http({"url": "http://svc/", **spec}, client)
    assert result.status == "failed"
    assert cause in result.msg.lower()
    assert not any(b"X-Injected" in raw for raw in wire.raw)


@pytest.mark.parametrize(("got", "wanted"), [(1, True), (0, False), (True, 1), ([1], [True]), ({"a": 0}, {"a": False})])
def test_json_expectations_tell_booleans_from_numbers(got: object, wanted: object) -> None:
    problem = check_expectations({"expect": {"json": {"x": wanted}}}, 200, "", {"x": got})
    assert problem is not None
    assert problem.startswith("JSON field x is ")
    assert check_expectations({"expect": {"json": {"x": got}}}, 200, "", {"x": got}) is None
