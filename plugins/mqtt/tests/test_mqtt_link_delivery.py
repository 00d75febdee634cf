"""The link's delivery promises, a ``Link`` in the test's own loop against a real mosquitto: QoS 1
messages unacknowledged when the broker goes are sent again (at least once), a full queue drops the oldest and says so
once, MQTT 5 falls back to 3.1.1 on a broker that refuses it, and a client certificate is used."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from hub_mqtt.config import MqttConfig
from hub_mqtt.link import Link
from mqtt_testing import Client, Mosquitto, secure_broker, until


def _keeper(port: int) -> Client:
    """A subscriber with a persistent session (clean_start false), as a logger of events would be."""
    keeper = Client(port, client_id="keeper", subscribe=None, clean_start=False, session_expiry=600)
    keeper.client.reconnect_delay_set(0.05, 0.5)
    keeper.sessions = []

    def connected(client, userdata, flags, reason, properties=None):
        keeper.sessions.append(flags.session_present)
    keeper.client.on_connect = connected
    keeper.client.subscribe("seq", qos=1)
    return keeper


def _numbers(client: Client) -> list[int]:
    return [int(payload) for topic, payload, _ in list(client.messages) if topic == "seq"]


@pytest.fixture
async def running():
    links = []

    def start(link: Link) -> Link:
        links.append((link, asyncio.get_running_loop().create_task(link.run())))
        return link

    yield start
    for _, task in links:
        task.cancel()
    await asyncio.gather(*(t for _, t in links), return_exceptions=True)


async def test_qos1_messages_unacknowledged_when_the_broker_goes_are_sent_again(tmp_path, running):
    # mosquitto keeps 1,000 messages at most for a subscriber that is away (max_queued_messages):
    # the keeper is away while the broker restarts, and the hub then sends its whole queue at once.
    # The broker stops in the middle of the stream with hundreds of the hub's messages unacknowledged;
    # it is stopped, not SIGKILLed: mosquitto keeps what it acknowledged only once it has saved it
    # (every autosave_interval; a SIGKILL under load lost the last hundred acknowledged messages,
    # and even with autosave_on_changes one now and then). What the broker acknowledged is the
    # broker's to keep; the hub's part, tested here, is that nothing it was not told is kept is
    # forgotten. (test_mqtt_link_robust.py kills the broker with SIGKILL under a real hub.)
    mosquitto = Mosquitto(tmp_path / "broker", extra="max_queued_messages 0").start()
    try:
        keeper = _keeper(mosquitto.port)
        # A clean restart saves the keeper's session to disk (the autosave may not have yet), so
        # the SIGKILL below cannot take it.
        await asyncio.sleep(0.2)
        mosquitto.stop()
        mosquitto.start()
        await until(lambda: keeper.sessions == [True], what="the keeper back in its session")
        link = running(Link(MqttConfig(port=mosquitto.port, node_id="seq", reconnect_max=0.5)))
        await until(lambda: link.connected, what="connected")
        total = 3000
        for n in range(total):
            link.publish("seq", str(n), qos=1)
            if n % 50 == 0:
                await asyncio.sleep(0.005)
            if n == 1000:
                mosquitto.stop()
            if n == 2000:
                mosquitto.start()
        await until(lambda: link.connected and not link.stats.queued() and not link._inflight, timeout=30,
                     what="everything sent and acknowledged")
        deadline = time.monotonic() + 15
        while set(_numbers(keeper)) != set(range(total)) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        missing = sorted(set(range(total)) - set(_numbers(keeper)))
        assert not missing, f"{len(missing)} acknowledged messages never arrived, first {missing[:10]}; {link.stats}, keeper {len(_numbers(keeper))}, sessions {keeper.sessions}"
        assert link.stats.connections == 2 and link.stats.dropped == 0 and keeper.sessions == [True, True]
        assert link.stats.resent > 0, "the broker went with nothing unacknowledged: the test tested nothing"
        keeper.close()
    finally:
        mosquitto.kill()


async def test_a_full_queue_drops_the_oldest_and_says_so_once(mosquitto, running, caplog):
    keeper = _keeper(mosquitto.port)
    await asyncio.sleep(0.2)
    mosquitto.stop()  # saves the keeper's session
    link = running(Link(MqttConfig(port=mosquitto.port, node_id="q", queue_size=10, reconnect_max=0.3)))
    caplog.set_level(logging.WARNING, logger="hub.plugins.mqtt")
    for n in range(50):
        link.publish("seq", str(n), qos=1)
    assert link.stats.dropped == 40 and link.stats.queued() == 10
    mosquitto.start()
    await until(lambda: link.connected and not link.stats.queued() and not link._inflight, what="sent")
    await until(lambda: set(_numbers(keeper)) >= set(range(40, 50)), what="the newest ten received")
    assert not set(_numbers(keeper)) & set(range(40))
    lines = [r.getMessage() for r in caplog.records if "dropped while the broker was away" in r.getMessage()]
    assert len(lines) == 1 and "40 outgoing messages" in lines[0]
    keeper.close()


async def _v311_only(target_port: int) -> tuple[asyncio.AbstractServer, int]:
    """A broker that does not speak MQTT 5, as older ones do: it answers an MQTT 5 CONNECT with
    3.1.1's "unacceptable protocol version" and passes any 3.1.1 connection to mosquitto."""

    async def pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def handle(reader, writer):
        head = await reader.readexactly(1)
        length, shift, raw = 0, 0, b""
        while True:
            byte = await reader.readexactly(1)
            raw += byte
            length |= (byte[0] & 0x7F) << shift
            shift += 7
            if not byte[0] & 0x80:
                break
        body = await reader.readexactly(length)
        if body[6] == 5:
            writer.write(b"\x20\x02\x00\x01")
            await writer.drain()
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        up_writer.write(head + raw + body)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_auto_falls_back_to_mqtt_311_once(mosquitto, mqtt_client, running, caplog):
    caplog.set_level(logging.INFO, logger="hub.plugins.mqtt")
    server, port = await _v311_only(mosquitto.port)
    watcher = mqtt_client(subscribe="ruffhub/old/#")
    link = running(Link(MqttConfig(port=port, node_id="old", reconnect_max=0.3)))
    await until(lambda: link.connected, what="connected over 3.1.1")
    assert link.protocol == "3.1.1" and link.stats.last_error is None
    link.publish("ruffhub/old/x", b"hello", qos=1)
    await asyncio.get_running_loop().run_in_executor(None, watcher.wait, "ruffhub/old/x")
    said = [r.getMessage() for r in caplog.records if "refused MQTT 5" in r.getMessage()]
    assert len(said) == 1
    server.close()


async def test_client_certificate(tmp_path, running):
    broker, files = secure_broker(tmp_path / "broker", tls=True, client_certs=True)
    broker.start()
    try:
        tls = {"ca": str(files["ca"]), "certificate": str(files["client_cert"]), "key": str(files["client_key"])}
        good = running(Link(MqttConfig(port=broker.port, node_id="cert", tls=tls, reconnect_max=0.3)))
        await until(lambda: good.connected, what="connected with the client certificate")
        bare = running(Link(MqttConfig(port=broker.port, node_id="nocert", tls={"ca": str(files["ca"])},
                                       reconnect_max=0.3)))
        await until(lambda: bare.stats.last_error is not None, what="refused without a certificate")
        assert not bare.connected and ("TLS" in bare.stats.last_error or "client certificate" in bare.stats.last_error)
        missing = running(Link(MqttConfig(port=broker.port, node_id="gone", tls={"ca": str(tmp_path / "nope.pem")},
                                          reconnect_max=0.3)))
        await until(lambda: missing.stats.last_error is not None, what="a missing CA file reported")
        assert "nope.pem" in missing.stats.last_error
    finally:
        broker.kill()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_overlapping_subscriptions_each_get_a_message_once(tmp_path, running, protocol):
    """mosquitto 2 sends a message once per matching subscription of a client: a rule on ``t/#``
    beside a part's ``t/+`` must each see one message, not two. MQTT 5 subscription identifiers say
    which copy is whose; with 3.1.1 (no identifiers) the link cannot tell, and says so in the docs."""
    broker = Mosquitto(tmp_path / "broker").start()
    try:
        link = running(Link(MqttConfig(port=broker.port, node_id="dup", protocol=protocol)))
        wide, narrow = [], []
        link.subscribe("t/#", lambda m: wide.append(m.payload))
        link.subscribe("t/+", lambda m: narrow.append(m.payload))
        await until(lambda: link.connected, what="connected")
        await asyncio.sleep(0.2)  # the subscriptions acknowledged
        sender = Client(broker.port, subscribe=None)
        try:
            sender.publish("t/a", b"one")
            sender.publish("t/a/b", b"two")
            await until(lambda: b"two" in wide and b"one" in narrow, what="both delivered")
            await asyncio.sleep(0.3)  # a duplicate would have arrived by now
        finally:
            sender.close()
        if protocol == "5":
            assert wide == [b"one", b"two"] and narrow == [b"one"]
        else:
            assert sorted(set(wide)) == [b"one", b"two"] and set(narrow) == {b"one"}
    finally:
        broker.kill()


async def test_a_retained_topic_takes_one_place_in_the_queue_while_the_broker_is_away(tmp_path, running):
    """A sensor changing 1,000 times during an outage must not push the other entities' states out of
    a bounded queue: a retained topic keeps only its newest message queued, and that one arrives."""
    broker = Mosquitto(tmp_path / "broker")  # not started yet: the hub is off the broker
    link = running(Link(MqttConfig(port=broker.port, node_id="co", queue_size=10, reconnect_max=0.2)))
    link.publish("state/other", b"kept", retain=True)
    for n in range(1000):
        link.publish("state/busy", str(n), retain=True)
    link.publish("event", b"not retained")
    assert link.stats.dropped == 0 and link.stats.replaced == 999
    broker.start()
    try:
        await until(lambda: link.connected, what="connected")
        await until(lambda: link.stats.queued() == 0, what="queue sent")
        late = Client(broker.port, subscribe="state/#")
        try:
            assert late.wait("state/busy") == b"999"
            assert late.wait("state/other") == b"kept"
        finally:
            late.close()
    finally:
        broker.kill()


async def test_no_local_keeps_the_hubs_own_messages_from_coming_back(mosquitto, running):
    """The peers follow ``<base>/+/state/+``, which matches the hub's own state topics too: with MQTT
    5's no-local option the broker does not send the hub what it published itself (at 10,000 states/s
    receiving them back doubled the bridge's cost), and still sends what others publish."""
    link = running(Link(MqttConfig(port=mosquitto.port, node_id="nl")))
    got = []
    link.subscribe("s/+", lambda m: got.append(m.topic), no_local=True)
    await until(lambda: link.connected, what="connected")
    await asyncio.sleep(0.2)
    link.publish("s/mine", b"1")
    other = Client(mosquitto.port, subscribe=None)
    try:
        other.publish("s/theirs", b"2")
        await until(lambda: "s/theirs" in got, what="the other client's message")
        await asyncio.sleep(0.3)
    finally:
        other.close()
    assert got == ["s/theirs"]
