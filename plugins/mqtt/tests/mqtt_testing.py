"""Helpers of the MQTT plugin's tests: a real mosquitto on a free loopback port, and a plain MQTT
client (paho, as any other program on the broker would be) that records what it receives.

(A module of its own name: several test folders have a conftest.py, and only one of them can be
imported as ``conftest``.)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from hub.net.ports import free_port as _free_port

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    """Below the ephemeral range: see hub.net.ports."""
    return _free_port()


class Mosquitto:
    """mosquitto in its own process, on its own port, with a generated configuration.

    ``extra`` lines go into the configuration file (a password file, TLS listeners). ``stop()`` and
    ``start()`` again keep the port, so a hub configured for it finds it back: the broker restarting.
    """

    def __init__(self, workdir: Path, *, extra: str = "", anonymous: bool = True, port: int | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self._may_move = port is None  # until the first start succeeds
        self.conf = workdir / "mosquitto.conf"
        self.log_path = workdir / "mosquitto.log"
        self.extra = extra
        self.anonymous = anonymous
        self.proc: subprocess.Popen | None = None

    def write_conf(self) -> None:
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'true' if self.anonymous else 'false'}",
            "persistence true",
            f"persistence_location {self.workdir}/",
            "autosave_interval 1",
            f"log_dest file {self.log_path}",
            "log_type error", "log_type warning", "log_type notice",
            # Started as root (a CI container), mosquitto would drop to the "mosquitto" user, which
            # cannot read the test's files (its password file, its keys).
            "user root" if os.geteuid() == 0 else "",
            self.extra,
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 10.0) -> "Mosquitto":
        # free_port() closes the port before mosquitto binds it, and on a busy machine another
        # process can take it meanwhile: a first start on a port picked here picks another. (A
        # restart keeps its port: the hub is configured for it.)
        for attempt in range(3):
            try:
                return self._start(timeout)
            except RuntimeError as exc:
                if not (self._may_move and "in use" in str(exc) and attempt < 2):
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> "Mosquitto":
        self.write_conf()
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.proc.stderr.read().decode()} {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    self._may_move = False
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port}: {self.log()}")

    def stop(self) -> None:
        """A clean stop (SIGTERM): mosquitto saves its persistence file first."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        """The broker dies (SIGKILL): only what it saved before stays."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Client:
    """A paho client in its own network thread that records every message it gets.

    ``wait(topic, predicate)`` waits for a message on a topic (the latest one is kept per topic,
    and all of them in ``messages``)."""

    def __init__(self, port: int, *, client_id: str = "", subscribe: str | list[str] | None = "#",
                 username: str | None = None, password: str | None = None, v5: bool = True,
                 tls: dict | None = None, clean_start: bool = True, session_expiry: int | None = None) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.latest: dict[str, bytes] = {}
        self.correlation: dict[str, bytes] = {}  # the MQTT 5 correlation data last seen per topic
        self._cond = threading.Condition()
        proto = paho.MQTTv5 if v5 else paho.MQTTv311
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=proto)
        if username is not None:
            self.client.username_pw_set(username, password)
        if tls is not None:
            self.client.tls_set(**tls)
        self.client.on_message = self._on_message
        connected = threading.Event()
        self.client.on_connect = lambda *a: connected.set()
        self.port = port
        self._connect_props = None
        if v5 and session_expiry is not None:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            self._connect_props = Properties(PacketTypes.CONNECT)
            self._connect_props.SessionExpiryInterval = session_expiry
        self.client.connect("127.0.0.1", port, keepalive=30, clean_start=clean_start if v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
                            properties=self._connect_props)
        self.client.loop_start()
        if not connected.wait(10):
            raise RuntimeError("test client did not connect")
        topics = [subscribe] if isinstance(subscribe, str) else (subscribe or [])
        for topic in topics:
            self.client.subscribe(topic, qos=1)
        time.sleep(0.1)

    def _on_message(self, client, userdata, msg) -> None:
        props = getattr(msg, "properties", None)
        corr = getattr(props, "CorrelationData", None) if props is not None else None
        with self._cond:
            if corr is not None:
                self.correlation[msg.topic] = corr
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))
            self.latest[msg.topic] = msg.payload
            self._cond.notify_all()

    def publish(self, topic: str, payload: Any = b"", *, qos: int = 1, retain: bool = False,
                response_topic: str | None = None, correlation: bytes | None = None) -> None:
        """``response_topic``/``correlation``: an MQTT 5 request asking for its answer there."""
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload)
        props = None
        if response_topic is not None:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            props = Properties(PacketTypes.PUBLISH)
            props.ResponseTopic = response_topic
            if correlation is not None:
                props.CorrelationData = correlation
        self.client.publish(topic, payload, qos=qos, retain=retain, properties=props).wait_for_publish(10)

    def wait(self, topic: str, predicate: Callable[[bytes], bool] = lambda p: True, timeout: float = 10.0) -> bytes:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                payload = self.latest.get(topic)
                if payload is not None and predicate(payload):
                    return payload
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = sorted(t for t in self.latest if t.split("/")[0] == topic.split("/")[0])[:20]
                    raise AssertionError(f"no message on {topic} matching within {timeout} s; last: {payload!r}; topics seen: {seen}")
                self._cond.wait(left)

    def wait_json(self, topic: str, predicate: Callable[[Any], bool] = lambda p: True, timeout: float = 10.0) -> Any:
        def ok(payload: bytes) -> bool:
            try:
                return predicate(json.loads(payload))
            except ValueError:
                return False
        return json.loads(self.wait(topic, ok, timeout))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def until(predicate: Callable[[], Any], what: str = "condition", timeout: float = 15.0) -> Any:
    """Wait in a test's own event loop (an in-process hub or ``Link``) until ``predicate()`` is truthy;
    returns its value."""
    import asyncio

    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.02)
    return value


def hub_yaml(broker_port: int, node_id: str = "hub1", extra: str = "") -> str:
    """A configuration of the demo home plus the bridge on the test broker."""
    return (f"hub: {{}}\ndemo:\n  update_interval: 0.05\n  time_scale: 60\n  seed: 1\n"
            f"mqtt:\n  port: {broker_port}\n  node_id: {node_id}\n  reconnect_max: 1\n{extra}")


# --- a broker with a password file, and one with TLS --------------------------------------------

def password_file(workdir: Path, users: dict[str, str]) -> Path:
    """A mosquitto password file made by ``mosquitto_passwd``, as a user would make one."""
    path = workdir / "passwords"
    workdir.mkdir(parents=True, exist_ok=True)
    tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    for user, password in users.items():
        flags = ["-b"] if path.exists() else ["-c", "-b"]
        subprocess.run([tool, *flags, str(path), user, password], check=True, capture_output=True)
    return path


def make_ca(workdir: Path, name: str = "Test CA") -> tuple[Path, Any]:
    """A CA certificate (PEM at the returned path) and its key, made for this test only."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    workdir.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    path = workdir / f"{name.replace(' ', '_')}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, (cert, key)


def issue_cert(workdir: Path, ca: tuple[Path, Any], name: str, *, server: bool = True) -> tuple[Path, Path]:
    """A certificate signed by ``ca`` for 127.0.0.1 and localhost (a server's, or a client's):
    paths of the certificate and its key (PEM)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert, ca_key = ca[1]
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = workdir / f"{name}.crt", workdir / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def secure_broker(workdir: Path, *, users: dict[str, str] | None = None, tls: bool = False,
                  client_certs: bool = False) -> tuple[Mosquitto, dict[str, Path]]:
    """mosquitto with a password file (``users``) and/or TLS on its listener (a CA and a server
    certificate for 127.0.0.1 generated here). Returns the broker (not started) and the files:
    ``ca`` (what a client trusts), ``other_ca`` (a CA the broker's certificate does not chain to),
    and with ``client_certs`` a client's ``client_cert``/``client_key``."""
    files: dict[str, Path] = {}
    extra = []
    if users:
        extra.append(f"password_file {password_file(workdir, users)}")
    if tls:
        ca = make_ca(workdir / "pki", "Test CA")
        cert, key = issue_cert(workdir / "pki", ca, "broker")
        files["ca"] = ca[0]
        files["other_ca"] = make_ca(workdir / "pki", "Other CA")[0]
        extra += [f"cafile {ca[0]}", f"certfile {cert}", f"keyfile {key}"]
        if client_certs:
            files["client_cert"], files["client_key"] = issue_cert(workdir / "pki", ca, "client", server=False)
            extra.append("require_certificate true")
    return Mosquitto(workdir, extra="\n".join(extra), anonymous=not users), files
