"""EZSP, the NCP's end: what an EmberZNet 7.4 coordinator (protocol version 13) answers its host.

The frame layouts (command ids and parameter types) come from bellows' command tables, the same
tables Silicon Labs' UG100 lists: the emulator reads them rather than copying 266 definitions, which
ties it to the library under test for layouts only. The behaviour is ours: version negotiation
(legacy frame first, then the extended header), configuration values and policies, the stack's
NVRAM (network parameters, keys, frame counters) that survives resets and emulator restarts,
network init/form/leave with their stack status callbacks, endpoints, permit join, unicast and
broadcast sends confirmed by messageSentHandler, and incoming messages from the devices.

A command the table knows but this NCP does not model gets a well-formed all-zero answer (status
SUCCESS, empty lists), as a permissive firmware would; an unknown frame id gets invalidCommand.
"""

from __future__ import annotations

import asyncio
import logging

import bellows.types as t
from bellows.ezsp.v13.commands import COMMANDS

LOG = logging.getLogger("ezsp")

PROTOCOL_VERSION = 13
STACK_TYPE = 2
STACK_VERSION = 0x7430  # EmberZNet 7.4.3
VERSION_INFO = (0, 7, 4, 3, 0)  # build, major, minor, patch, special
BY_ID = {frame_id: name for name, (frame_id, _, _) in COMMANDS.items()}
NETWORK_UP, NETWORK_DOWN = t.EmberStatus.NETWORK_UP, t.EmberStatus.NETWORK_DOWN
CONFIG_DEFAULTS = {
    t.EzspConfigId.CONFIG_SECURITY_LEVEL: 5,
    t.EzspConfigId.CONFIG_KEY_TABLE_SIZE: 12,
    t.EzspConfigId.CONFIG_ADDRESS_TABLE_SIZE: 16,
    t.EzspConfigId.CONFIG_MULTICAST_TABLE_SIZE: 16,
    t.EzspConfigId.CONFIG_ROUTE_TABLE_SIZE: 16,
    t.EzspConfigId.CONFIG_PACKET_BUFFER_COUNT: 255,
}


def _zero(schema):
    """The all-zero value of a response schema: what an unmodelled command answers."""
    if isinstance(schema, dict):
        return t.deserialize_dict(bytes(512), schema)[0]
    return schema.deserialize(bytes(512))[0]


def encode_response(name: str, **values) -> bytes:
    _, _, schema = COMMANDS[name]
    if isinstance(schema, dict):
        fields = _zero(schema) if set(values) != set(schema) else {}
        fields.update(values)
        return b"".join(typ(fields[key]).serialize() for key, typ in schema.items())
    return _zero(schema).replace(**values).serialize()


class Ezsp:
    """The NCP above ASH. ``nvram`` is the persistent part (a :class:`Nvram`); ``radio`` the
    coordinator's side of the Zigbee network (joins, messages to devices), or None."""

    def __init__(self, nvram, radio=None) -> None:
        self.nvram = nvram
        self.radio = radio
        self.ash = None  # set by the transport glue
        self.loop = asyncio.get_running_loop()
        self.reset()

    # --- NCP lifecycle -----------------------------------------------------------------------
    def reset(self) -> None:
        """A reboot: RAM state gone, NVRAM kept, the network down until networkInit."""
        self.boots = getattr(self, "boots", 0) + 1
        self.eui64 = self.nvram.restored_eui64 or self.nvram.eui64
        self.extended = False  # frames use the legacy header until version 13 is agreed
        self.network_up = False
        self.config: dict[int, int] = dict(CONFIG_DEFAULTS)
        self.values: dict[int, bytes] = {}
        self.policies: dict[int, int] = {}
        self.endpoints: dict[int, object] = {}
        self.multicast: dict[int, object] = {}
        self.answered_seq = 0
        self.aps_seq = 0
        self.pending_security = None
        self.extended_timeout: dict[str, bool] = {}
        if self.radio is not None:
            self.radio.stack_reset()

    def frame(self, data: bytes) -> None:
        # The extended header (frame format version 1 in the high control byte) carries a 16-bit
        # frame id; the legacy one (only for the first version command) an 8-bit one.
        # A host that resets the NCP goes back to the legacy header until it has negotiated the
        # version again, and may send other legacy commands meanwhile (bellows' watchdog nop).
        if len(data) >= 5 and data[2] == 0x01:
            self.extended = True
            seq, frame_id, params = data[0], int.from_bytes(data[3:5], "little"), data[5:]
        elif len(data) >= 3:
            self.extended = False
            seq, frame_id, params = data[0], data[2], data[3:]
        else:
            LOG.warning("short EZSP frame %s", data.hex())
            return
        name = BY_ID.get(frame_id)
        if name is None:
            LOG.info("unknown frame id 0x%04x", frame_id)
            self._invalid(seq, t.EzspStatus.ERROR_INVALID_FRAME_ID)
            return
        _, request_schema, _ = COMMANDS[name]
        try:
            args = t.deserialize_dict(params, request_schema)[0] if request_schema else {}
        except Exception:  # noqa: BLE001  (a malformed request answers like firmware does)
            LOG.info("bad parameters for %s: %s", name, params.hex())
            self._invalid(seq, t.EzspStatus.ERROR_INVALID_VALUE)
            return
        handler = getattr(self, f"cmd_{name}", None)
        try:
            answer = handler(**args) if handler else {}
            payload = encode_response(name, **(answer or {}))
        except Exception:  # noqa: BLE001  (an emulator bug must not leave the host waiting 10 s)
            LOG.exception("%s %s failed", name, args)
            self._invalid(seq, t.EzspStatus.ERROR_INVALID_CALL)
            return
        LOG.debug("%s %s -> %s", name, args, answer)
        self._reply(seq, frame_id, payload)

    def _invalid(self, seq: int, status: t.EzspStatus) -> None:
        self._reply(seq, COMMANDS["invalidCommand"][0], encode_response("invalidCommand", status=status))

    def _header(self, seq: int, frame_id: int, callback: bool) -> bytes:
        control = 0x80 | (0x10 if callback else 0)  # response; callbackType async for callbacks
        if not self.extended:
            return bytes([seq, control, frame_id])
        return bytes([seq, control, 0x01]) + frame_id.to_bytes(2, "little")

    def _reply(self, seq: int, frame_id: int, payload: bytes) -> None:
        self.answered_seq = seq
        self.ash.send(self._header(seq, frame_id, False) + payload)

    def callback(self, name: str, **values) -> None:
        """An asynchronous callback (on a UART host they arrive unasked). It carries the sequence
        number of the last command answered, never that of one the host still waits for: bellows
        would take it for that command's answer."""
        frame_id = COMMANDS[name][0]
        LOG.debug("callback %s %s", name, values)
        self.ash.send(self._header(self.answered_seq, frame_id, True)
                      + encode_response(name, **values))

    def later(self, delay: float, fn, *args) -> None:
        """Runs ``fn`` after ``delay`` unless the NCP reboots first (its RAM, queue included, is
        gone then)."""
        boot = self.boots

        def run() -> None:
            if boot == self.boots:
                fn(*args)

        self.loop.call_later(delay, run)

    # --- version, values, configuration ------------------------------------------------------
    def cmd_version(self, desiredProtocolVersion):
        return {"protocolVersion": PROTOCOL_VERSION, "stackType": STACK_TYPE,
                "stackVersion": STACK_VERSION}

    def cmd_getValue(self, valueId):
        if valueId == t.EzspValueId.VALUE_VERSION_INFO:
            build, major, minor, patch, special = VERSION_INFO
            value = build.to_bytes(2, "little") + bytes([major, minor, patch, special])
            return {"status": t.EzspStatus.SUCCESS, "value": value}
        if valueId == t.EzspValueId.VALUE_FREE_BUFFERS:
            return {"status": t.EzspStatus.SUCCESS, "value": bytes([200])}
        if valueId in self.values:
            return {"status": t.EzspStatus.SUCCESS, "value": self.values[valueId]}
        return {"status": t.EzspStatus.ERROR_INVALID_ID, "value": b""}

    def cmd_setValue(self, valueId, value):
        if valueId == t.EzspValueId.VALUE_NWK_FRAME_COUNTER:
            self.nvram.nwk_frame_counter = int.from_bytes(value, "little")
        self.values[valueId] = bytes(value)
        return {"status": t.EzspStatus.SUCCESS}

    def cmd_getConfigurationValue(self, configId):
        if configId in self.config:
            return {"status": t.EzspStatus.SUCCESS, "value": self.config[configId]}
        return {"status": t.EzspStatus.ERROR_INVALID_ID, "value": 0}

    def cmd_setConfigurationValue(self, configId, value):
        if self.network_up:  # the stack sizes its tables once, before the network starts
            return {"status": t.EzspStatus.ERROR_INVALID_CALL}
        self.config[configId] = int(value)
        return {"status": t.EzspStatus.SUCCESS}

    def cmd_setPolicy(self, policyId, decisionId):
        self.policies[int(policyId)] = int(decisionId)
        return {"status": t.EzspStatus.SUCCESS}

    def cmd_getPolicy(self, policyId):
        return {"status": t.EzspStatus.SUCCESS, "decisionId": self.policies.get(int(policyId), 0)}

    def cmd_getMfgToken(self, tokenId):
        tokens = {
            t.EzspMfgTokenId.MFG_STRING: b"ruffsim".ljust(16, b"\xff"),
            t.EzspMfgTokenId.MFG_BOARD_NAME: b"SIM-EZSP-1".ljust(16, b"\xff"),
            t.EzspMfgTokenId.MFG_CUSTOM_EUI_64: b"\xff" * 8,  # never burnt
        }
        return {"tokenData": tokens.get(tokenId, b"")}

    # Of the NV3 tokens only the restored EUI64 is modelled: it lets a host move a network (and
    # the coordinator's IEEE address) onto a new stick, as real 7.x firmware does.
    def cmd_getTokenData(self, token, index):
        if token == t.NV3KeyId.CREATOR_STACK_RESTORED_EUI64 and index == 0:
            value = t.EUI64.convert(self.nvram.restored_eui64 or "ff:ff:ff:ff:ff:ff:ff:ff")
            return {"status": t.EmberStatus.SUCCESS, "value": value.serialize()}
        return {"status": t.EmberStatus.ERR_FATAL, "value": b""}

    def cmd_setTokenData(self, token, index, token_data):
        if token != t.NV3KeyId.CREATOR_STACK_RESTORED_EUI64 or index != 0 or len(token_data) != 8:
            return {"status": t.EmberStatus.ERR_FATAL}
        eui64 = str(t.EUI64.deserialize(bytes(token_data))[0])
        self.nvram.restored_eui64 = None if eui64 == "ff:ff:ff:ff:ff:ff:ff:ff" else eui64
        self.nvram.save()  # read at the next boot, as the stack does
        return {"status": t.EmberStatus.SUCCESS}

    def cmd_customFrame(self, payload):  # no XNCP extensions
        return {"status": t.EmberStatus.INVALID_CALL, "reply": b""}

    def cmd_readCounters(self):
        return {"values": t.List[t.uint16_t]([0] * len(t.EmberCounterType))}

    cmd_readAndClearCounters = cmd_readCounters

    def cmd_addEndpoint(self, endpoint, **descriptor):
        if self.network_up or endpoint in self.endpoints:
            return {"status": t.EzspStatus.ERROR_INVALID_CALL}
        self.endpoints[endpoint] = descriptor
        return {"status": t.EzspStatus.SUCCESS}

    def cmd_getMulticastTableEntry(self, index):
        entry = self.multicast.get(index) or t.EmberMulticastTableEntry(
            multicastId=0, endpoint=0, networkIndex=0)
        return {"status": t.EmberStatus.SUCCESS, "value": entry}

    def cmd_setMulticastTableEntry(self, index, value):
        self.multicast[index] = value
        return {"status": t.EmberStatus.SUCCESS}

    # --- the network -------------------------------------------------------------------------
    def cmd_networkState(self):
        joined = t.EmberNetworkStatus.JOINED_NETWORK
        return {"status": joined if self.network_up else t.EmberNetworkStatus.NO_NETWORK}

    def cmd_networkInit(self, networkInitBitmask):
        if self.nvram.network is None:
            return {"status": t.EmberStatus.NOT_JOINED}
        if self.network_up:
            return {"status": t.EmberStatus.INVALID_CALL}
        self.later(0.01, self._up)
        return {"status": t.EmberStatus.SUCCESS}

    def _up(self) -> None:
        self.network_up = True
        self.callback("stackStatusHandler", status=NETWORK_UP)
        if self.radio is not None:
            self.radio.network_started()

    def cmd_formNetwork(self, parameters):
        if self.network_up:
            return {"status": t.EmberStatus.INVALID_CALL}
        security = self.pending_security
        if security is None:
            return {"status": t.EmberStatus.SECURITY_CONFIGURATION_INVALID}
        self.nvram.form(parameters, security)
        self.later(0.01, self._up)
        return {"status": t.EmberStatus.SUCCESS}

    def cmd_leaveNetwork(self):
        if not self.network_up:
            return {"status": t.EmberStatus.INVALID_CALL}
        self.network_up = False
        self.nvram.leave()
        self.later(0.01, lambda: self.callback("stackStatusHandler", status=NETWORK_DOWN))
        return {"status": t.EmberStatus.SUCCESS}

    def cmd_tokenFactoryReset(self, excludeOutgoingFC, excludeBootCounter):
        self.network_up = False
        self.nvram.leave()
        return {}

    def cmd_clearKeyTable(self):
        self.nvram.link_keys.clear()
        self.nvram.save()
        return {"status": t.EmberStatus.SUCCESS}

    def cmd_setInitialSecurityState(self, state):
        if self.network_up:
            return {"status": t.EmberStatus.INVALID_CALL}
        self.pending_security = state
        return {"status": t.EmberStatus.SUCCESS}

    def cmd_getNetworkParameters(self):
        network = self.nvram.network
        if network is None or not self.network_up:
            return {"status": t.EmberStatus.NOT_JOINED}
        return {"status": t.EmberStatus.SUCCESS, "nodeType": t.EmberNodeType.COORDINATOR,
                "parameters": self.nvram.parameters()}

    def cmd_getNodeId(self):
        return {"nodeId": 0x0000 if self.network_up else 0xFFFE}

    def cmd_getEui64(self):
        return {"eui64": t.EUI64.convert(self.eui64)}

    def cmd_getCurrentSecurityState(self):
        network = self.nvram.network
        if network is None:
            return {"status": t.EmberStatus.NOT_JOINED}
        bitmask = (t.EmberCurrentSecurityBitmask.GLOBAL_LINK_KEY
                   | t.EmberCurrentSecurityBitmask.HAVE_TRUST_CENTER_LINK_KEY)
        if network["hashed_tclk"]:
            bitmask |= t.EmberCurrentSecurityBitmask.TRUST_CENTER_USES_HASHED_LINK_KEY
        return {"status": t.EmberStatus.SUCCESS,
                "state": t.EmberCurrentSecurityState(
                    bitmask=bitmask, trustCenterLongAddress=t.EUI64.convert(self.eui64))}

    def cmd_exportKey(self, context):
        network = self.nvram.network
        if network is None:
            return {"key": t.KeyData(bytes(16)), "status": t.sl_Status.NOT_FOUND}
        field = {t.SecurityManagerKeyType.NETWORK: "network_key",
                 t.SecurityManagerKeyType.TC_LINK: "tc_link_key"}.get(context.core_key_type)
        if field is None:
            return {"key": t.KeyData(bytes(16)), "status": t.sl_Status.NOT_FOUND}
        return {"key": t.KeyData(bytes.fromhex(network[field])), "status": t.sl_Status.OK}

    def cmd_getNetworkKeyInfo(self):
        network = self.nvram.network
        info = t.SecurityManagerNetworkKeyInfo(
            network_key_set=network is not None, alternate_network_key_set=False,
            network_key_sequence_number=network["key_seq"] if network else 0,
            alt_network_key_sequence_number=0,
            network_key_frame_counter=self.nvram.nwk_frame_counter)
        return {"status": t.sl_Status.OK, "network_key_info": info}

    def cmd_exportLinkKeyByIndex(self, index):
        keys = list(self.nvram.link_keys.items())
        if index >= len(keys):
            return {"status": t.sl_Status.NOT_FOUND}
        ieee, key = keys[index]
        return {"eui64": t.EUI64.convert(ieee), "plaintext_key": t.KeyData(bytes.fromhex(key)),
                "status": t.sl_Status.OK}

    def cmd_importLinkKey(self, index, address, key):
        self.nvram.link_keys[str(address)] = bytes(key).hex()
        self.nvram.save()
        return {"status": t.sl_Status.OK}

    def cmd_importTransientKey(self, eui64, plaintext_key, flags):
        return {"status": t.sl_Status.OK}

    def cmd_getChildData(self, index):
        children = self.radio.children() if self.radio is not None else []
        if index >= len(children):
            return {"status": t.EmberStatus.NOT_JOINED}
        ieee, nwk, sleepy = children[index]
        return {"status": t.EmberStatus.SUCCESS, "child_data": t.EmberChildDataV10(
            eui64=t.EUI64.convert(ieee), id=nwk, phy=0, power=0, timeout=0, timeout_remaining=0,
            type=t.EmberNodeType.SLEEPY_END_DEVICE if sleepy else t.EmberNodeType.END_DEVICE)}

    def cmd_getExtendedTimeout(self, remoteEui64):
        return {"extendedTimeout": self.extended_timeout.get(str(remoteEui64), False)}

    def cmd_setExtendedTimeout(self, remoteEui64, extendedTimeout):
        self.extended_timeout[str(remoteEui64)] = bool(extendedTimeout)
        return {}

    def cmd_getAddressTableRemoteNodeId(self, addressTableIndex):
        return {"nodeId": 0xFFFF}

    def cmd_lookupNodeIdByEui64(self, eui64):
        nwk = self.radio.nwk_of(str(eui64)) if self.radio is not None else None
        return {"nodeId": 0xFFFF if nwk is None else nwk}

    def cmd_lookupEui64ByNodeId(self, nodeId):
        ieee = self.radio.ieee_of(nodeId) if self.radio is not None else None
        if ieee is None:
            return {"status": t.EmberStatus.ERR_FATAL}
        return {"status": t.EmberStatus.SUCCESS, "eui64": t.EUI64.convert(ieee)}

    def cmd_permitJoining(self, duration):
        if not self.network_up:
            return {"status": t.EmberStatus.NETWORK_DOWN}
        if self.radio is not None:
            self.radio.permit(int(duration))
        return {"status": t.EmberStatus.SUCCESS}

    def cmd_removeDevice(self, destShort, destLong, targetLong):
        if self.radio is not None:
            self.radio.remove(str(targetLong))
        return {"status": t.EmberStatus.SUCCESS}

    def cmd_startScan(self, scanType, channelMask, duration):
        if scanType != t.EzspNetworkScanType.ENERGY_SCAN:  # no other networks around
            self.later(0.01, lambda: self.callback("scanCompleteHandler", channel=0,
                                                   status=t.EmberStatus.SUCCESS))
            return {"status": t.EmberStatus.SUCCESS}

        def results() -> None:  # a quiet house: every channel near the noise floor
            for number in t.Channels(channelMask):
                self.callback("energyScanResultHandler", channel=number,
                              maxRssiValue=-92 + (number * 7) % 11)
            self.callback("scanCompleteHandler", channel=0, status=t.EmberStatus.SUCCESS)

        self.later(0.01, results)
        return {"status": t.EmberStatus.SUCCESS}

    # --- messages ----------------------------------------------------------------------------
    def _next_aps(self) -> int:
        self.aps_seq = (self.aps_seq + 1) % 256
        return self.aps_seq

    def cmd_sendUnicast(self, type, indexOrDestination, apsFrame, messageTag, messageContents):
        if not self.network_up:
            return {"status": t.EmberStatus.NETWORK_DOWN, "sequence": 0}
        seq = self._next_aps()
        self.nvram.nwk_frame_counter += 1
        self.nvram.schedule()  # the counter must never go back after a restart
        delivered = self.radio is not None and self.radio.unicast(
            int(indexOrDestination), apsFrame, bytes(messageContents))

        def sent(status) -> None:
            self.callback("messageSentHandler", type=type, indexOrDestination=indexOrDestination,
                          apsFrame=apsFrame, messageTag=messageTag, status=status,
                          messageContents=messageContents)

        if delivered:  # the APS ack came back (before the answer, which the device sends next)
            self.later(0, sent, t.EmberStatus.SUCCESS)
        else:  # nobody there: the APS retries run out
            self.later(0.5, sent, t.EmberStatus.DELIVERY_FAILED)
        return {"status": t.EmberStatus.SUCCESS, "sequence": seq}

    def cmd_sendBroadcast(self, destination, apsFrame, radius, messageTag, messageContents):
        if not self.network_up:
            return {"status": t.EmberStatus.NETWORK_DOWN, "sequence": 0}
        seq = self._next_aps()
        self.nvram.nwk_frame_counter += 1
        if self.radio is not None:
            self.radio.broadcast(int(destination), apsFrame, bytes(messageContents))
        self.later(0.002, lambda: self.callback(
            "messageSentHandler", type=t.EmberOutgoingMessageType.OUTGOING_BROADCAST,
            indexOrDestination=destination, apsFrame=apsFrame, messageTag=messageTag,
            status=t.EmberStatus.SUCCESS, messageContents=messageContents))
        return {"status": t.EmberStatus.SUCCESS, "sequence": seq}

    def cmd_sendMulticast(self, apsFrame, hops, nonmemberRadius, messageTag, messageContents):
        if not self.network_up:
            return {"status": t.EmberStatus.NETWORK_DOWN, "sequence": 0}
        return {"status": t.EmberStatus.SUCCESS, "sequence": self._next_aps()}

    # --- from the radio (devices) to the host ------------------------------------------------
    def incoming(self, sender: int, profile: int, cluster: int, src_ep: int, dst_ep: int,
                 payload: bytes, *, broadcast: bool = False, lqi: int = 230, rssi: int = -45) -> None:
        if not self.network_up:
            return
        aps = t.EmberApsFrame(profileId=profile, clusterId=cluster, sourceEndpoint=src_ep,
                              destinationEndpoint=dst_ep, options=t.EmberApsOption.APS_OPTION_NONE,
                              groupId=0, sequence=self._next_aps())
        kind = (t.EmberIncomingMessageType.INCOMING_BROADCAST if broadcast
                else t.EmberIncomingMessageType.INCOMING_UNICAST)
        self.callback("incomingMessageHandler", type=kind, apsFrame=aps, lastHopLqi=lqi,
                      lastHopRssi=rssi, sender=sender, bindingIndex=0xFF, addressIndex=0xFF,
                      messageContents=payload)

    def joined(self, nwk: int, ieee: str, *, rejoin: bool = False) -> None:
        status = (t.EmberDeviceUpdate.STANDARD_SECURITY_SECURED_REJOIN if rejoin
                  else t.EmberDeviceUpdate.STANDARD_SECURITY_UNSECURED_JOIN)
        self.callback("trustCenterJoinHandler", newNodeId=nwk, newNodeEui64=t.EUI64.convert(ieee),
                      status=status, policyDecision=t.EmberJoinDecision.USE_PRECONFIGURED_KEY,
                      parentOfNewNodeId=0x0000)

    def left(self, nwk: int, ieee: str) -> None:
        self.callback("trustCenterJoinHandler", newNodeId=nwk, newNodeEui64=t.EUI64.convert(ieee),
                      status=t.EmberDeviceUpdate.DEVICE_LEFT,
                      policyDecision=t.EmberJoinDecision.NO_ACTION, parentOfNewNodeId=0x0000)
