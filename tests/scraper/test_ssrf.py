"""The address guard against hostile URLs: parser tricks, IPv6 embeddings, DNS rebinding."""

from __future__ import annotations

import socket

import pytest
import urllib3.util.connection

from scraper import import_sources
from scraper.download import Client, DownloadConfig
from scraper.errors import DownloadError
from scraper.urlcheck import check_url, forbidden_address
from storage import Store
from tests.localserver import Answer, LocalServer
from tests.scraper.helpers import jpeg

PUBLIC = "93.184.215.14"  # a globally routable address; nothing here ever connects to it

# Each of these reached 127.0.0.1 (or would have) past the old guard.
BYPASSES = [
    "http://127.0.0.1:{port}\\@public.example/a.jpg",
    "http://127.0.0.1:{port}\\\\@public.example/a.jpg",
    "http://127.0.0.1:{port} @public.example/a.jpg",
    "http://127.0.0.1:{port}\t@public.example/a.jpg",
    "http://public.example\\@127.0.0.1:{port}/a.jpg",
    "http://[::127.0.0.1]:{port}/a.jpg",
    "http://[::7f00:1]:{port}/a.jpg",
    "http://[::ffff:7f00:1]:{port}/a.jpg",
    "http://[::ffff:0:7f00:1]:{port}/a.jpg",
    "http://[64:ff9b::7f00:1]:{port}/a.jpg",
    "http://[64:ff9b::127.0.0.1]:{port}/a.jpg",
    "http://[64:ff9b:1::7f00:1]:{port}/a.jpg",
    "http://[2002:7f00:1::]:{port}/a.jpg",
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]:{port}/a.jpg",
    "http://[::]:{port}/a.jpg",
    "http://0.0.0.0:{port}/a.jpg",
    "http://[ff02::1]:{port}/a.jpg",
]


@pytest.fixture
def resolver(monkeypatch):
    """A stub DNS: ``answers[name]`` is a list of answers, one per lookup (the last repeats).

    Every other name (and every IP literal) goes to the real resolver. ``calls`` counts
    lookups per stubbed name.
    """
    real = socket.getaddrinfo
    answers: dict[str, list[str]] = {}
    calls: dict[str, int] = {}

    def getaddrinfo(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name in answers:
            n = calls.get(name, 0)
            calls[name] = n + 1
            address = answers[name][min(n, len(answers[name]) - 1)]
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (address, port or 0))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    answers["public.example"] = [PUBLIC]
    return answers, calls


@pytest.fixture
def dialed(monkeypatch) -> list[str]:
    """Addresses the client dials. Tests have no network: anything but loopback is refused."""
    real = urllib3.util.connection.create_connection
    seen: list[str] = []

    def create_connection(address, *args, **kwargs):
        seen.append(address[0])
        if address[0] not in ("127.0.0.1", "localhost"):
            raise ConnectionRefusedError(f"test network: {address[0]} is not reachable")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    return seen


@pytest.fixture
def guarded(monkeypatch) -> DownloadConfig:
    monkeypatch.delenv("STYLEBENCH_ALLOW_PRIVATE")
    return DownloadConfig(
        per_host_rps=None, retries=0, connect_timeout=0.3, read_timeout=1, total_timeout=2
    )


def test_embedded_ipv4_forms_are_judged_by_the_ipv4_address():
    for address in (
        "::127.0.0.1",
        "::8.8.8.8",
        "::ffff:0:7f00:1",
        "::ffff:0:a00:1",
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::808:808",
        "2002:7f00:1::",
        "2002:c0a8:101::1",
        "2001:0:4136:e378:8000:63bf:80ff:fffe",
        "::",
        "ff02::1",
        "0.0.0.0",
        "240.0.0.1",
    ):
        assert forbidden_address(address), address
    for address in (
        "64:ff9b::808:808",
        "::ffff:8.8.8.8",
        "2002:808:808::1",
        "2606:4700:4700::1111",
        PUBLIC,
    ):
        assert not forbidden_address(address), address


def test_url_parsers_must_agree(guarded, resolver):
    for url in (
        "http://127.0.0.1:1\\@public.example/",
        "http://a\x00b.example/",
        "http://public.example\r\nHost: x/",
    ):
        with pytest.raises(DownloadError, match="bad-url"):
            check_url(url, guarded)
    target = check_url("http://user@Public.Example./a.jpg", guarded)
    assert (target.host, target.port, target.address) == ("public.example", 80, PUBLIC)


@pytest.mark.parametrize("url", BYPASSES)
def test_bypass_forms_refused_before_connecting(server, guarded, resolver, dialed, url, probe):
    server.routes["/a.jpg"] = Answer(jpeg("coffee"))
    with pytest.raises(DownloadError) as info:
        Client(guarded).get(url.format(port=server.port))
    assert info.value.reason in ("bad-url", "private-address")
    assert sum(server.hits.values()) == 0 and dialed == []
    probe.record(f"ssrf: {url}", rejected=True, reason=str(info.value))


def test_rebinding_resolver_cannot_reach_loopback(server, guarded, resolver, dialed, probe):
    """The name resolves to a public address, then to 127.0.0.1: the connection dials the first."""
    answers, calls = resolver
    answers["rebind.example"] = [PUBLIC, "127.0.0.1"]
    server.routes["/a.jpg"] = Answer(jpeg("coffee"))
    with pytest.raises(DownloadError) as info:
        Client(guarded).get(f"http://rebind.example:{server.port}/a.jpg")
    assert info.value.reason == "connection"
    assert dialed == [PUBLIC] and calls["rebind.example"] == 1
    assert sum(server.hits.values()) == 0
    probe.record("ssrf: DNS rebinding to loopback", rejected=True, reason=str(info.value))


def test_connection_dials_the_checked_address_and_keeps_the_name(server, resolver, dialed):
    answers, calls = resolver
    answers["images.test"] = ["127.0.0.1", "10.255.255.1"]
    server.routes["/a.jpg"] = Answer(jpeg("coffee"))
    client = Client(DownloadConfig(per_host_rps=None, allow_private=True, retries=0))
    got = client.get(f"http://images.test:{server.port}/a.jpg")
    assert got.status == 200 and got.body == jpeg("coffee")
    assert calls["images.test"] == 1 and dialed == ["127.0.0.1"]
    assert server.headers["/a.jpg"]["Host"] == f"images.test:{server.port}"


def test_bypass_forms_in_redirects_refused(server, guarded, resolver, dialed, probe):
    config = DownloadConfig(
        per_host_rps=None, retries=0, connect_timeout=0.3, allow_hosts=("127.0.0.1",)
    )
    server.routes["/a.jpg"] = Answer(jpeg("coffee"))
    for i, url in enumerate(BYPASSES):
        server.routes[f"/r{i}"] = Answer(
            status=302, headers={"Location": url.format(port=server.port)}
        )
        with pytest.raises(DownloadError) as info:
            Client(config).get(server.url(f"/r{i}"))
        assert info.value.reason in ("bad-url", "private-address"), url
        assert server.hits[f"/r{i}"] == 1 and set(dialed) == {"127.0.0.1"}
        probe.record(f"ssrf via redirect: {url}", rejected=True, reason=str(info.value))
    assert server.hits["/a.jpg"] == 0


def test_bypass_forms_in_a_url_list_land_rejected(
    tmp_path, server, guarded, resolver, dialed, probe
):
    server.routes["/a.jpg"] = Answer(jpeg("coffee"))
    listing = tmp_path / "urls.txt"
    listing.write_text("\n".join(u.format(port=server.port) for u in BYPASSES) + "\n")
    store = Store(str(tmp_path / "data"))
    summary = import_sources(store, [str(listing)], "style", download=guarded)
    assert summary.accepted == 0 and summary.downloaded == 0
    assert sum(server.hits.values()) == 0 and dialed == []
    rows = store.query(
        "SELECT status, reason FROM catalog WHERE engine = 'url' ORDER BY rank"
    ).to_pylist()
    # each distinct URL as the list spells it (whitespace variants may collapse) is rejected
    assert rows and all(r["status"] == "rejected" for r in rows)
    assert all(r["reason"].startswith(("bad-url", "private-address")) for r in rows)
    probe.record(
        "ssrf: bypass forms in a URL list",
        rejected=True,
        reason=f"{len(rows)} URLs rejected, none fetched",
    )


def _self_signed(tmp_path, name: str):
    """A certificate for ``name`` (and its key), written as PEM files."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_to_a_pinned_address_verifies_the_name(tmp_path, resolver, dialed):
    """SNI and certificate checks use the host name while the socket goes to the vetted IP."""
    import ssl

    cert, key = _self_signed(tmp_path, "images.test")
    seen_sni: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: seen_sni.append(name)
    server = LocalServer(tls=context)
    server.routes["/a"] = Answer(b"ok")
    try:
        answers, calls = resolver
        answers["images.test"] = ["127.0.0.1"]
        answers["other.test"] = ["127.0.0.1"]
        port = server.port
        client = Client(DownloadConfig(per_host_rps=None, allow_private=True, retries=0))
        client._session().verify = str(cert)
        got = client.get(f"https://images.test:{port}/a")
        assert got.status == 200 and got.body == b"ok"
        assert seen_sni == ["images.test"] and dialed == ["127.0.0.1"]
        # the same address under a name the certificate does not hold: verification fails
        with pytest.raises(DownloadError, match=r"connection.*(hostname|certificate)"):
            client.get(f"https://other.test:{port}/a")
    finally:
        server.close()
