"""The market's invariants over random sequences of every transaction type, reorganisations
included (a hypothesis state machine; bounded example counts: the suite shares 2 cores).

After every block and every reorganisation: no token is created or lost (balances + open calls'
escrow + channels' remaining deposits == ``meta.supply``, which moves by block rewards only), the
state root is the one a from-scratch build gives, a reverted state is exactly the one before, and
a node replaying the surviving blocks reaches the same state."""

from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from hub.chain.protocol import statetree
from hub.chain.protocol.constants import RUFF
from hub.chain.protocol.market import escrow_total
from hub.chain.protocol.rules import REWARDED_TYPES
from hub.chain.protocol.state import NAMESPACES
from hub.chain.protocol.transition import apply_block

from tests.chain.chainkit import Sim, Wallet, addr, bind, handover, key, make_genesis
from tests.chain.marketkit import cheque, consent
from tests.chain.test_device_properties import _mangled

PRODUCERS = [key(f"producer{i}") for i in range(3)]
USERS = [key(f"market-user{i}") for i in range(3)]
DEVICES = [key(f"market-device{i}") for i in range(2)]
START = {u: 20 * RUFF for u in USERS}
# Short periods, so that random sequences of blocks (500 ms each) reach refunds, challenges' ends
# and reviews' ends.
RULES = {"PRODUCERS": 3, "REFUND_TIMEOUT": 1000, "CHALLENGE_PERIOD": 1500, "REVIEW_PERIOD": 3000}

KINDS = ["transfer", "handover", "offer", "offer", "call", "call", "call", "return", "return", "review",
         "settle", "settle", "settle", "refund", "refund"]
op = st.tuples(st.sampled_from(KINDS), st.integers(0, 2), st.integers(0, 2), st.integers(0, 50),
               st.integers(0, 400), st.booleans())


def _pick(items, k):
    items = sorted(items)
    return items[k % len(items)] if items else None


def _user(public_key: bytes):
    return next((u for u in USERS if u.public_key == public_key), USERS[0])


def _payload(sim: Sim, kind: str, i: int, j: int, k: int, amount: int, flag: bool):
    """(sender, type, payload) of one random transaction, mostly well-formed, often refused."""
    state, net = sim.state, sim
    user, other = USERS[i], USERS[j]
    if kind == "transfer":
        return user, "transfer", {"to": addr(other), "amount": amount + 1}
    if kind == "handover":
        device = DEVICES[k % 2].public_key
        controller, seq = state.get("dev", device)[:2]
        return _user(controller), "bind_device", handover(_user(controller), device, other.public_key, seq, net)
    if kind == "offer":
        device = DEVICES[k % 2].public_key
        owner = user if flag else _user(state.get("dev", device)[0])
        terms = ({"kind": "prepaid", "price": 1 + amount % 40, "window": 500 * (1 + k % 3), "max_duration": 2000}
                 if amount % 2 else
                 {"kind": "metered", "rate": 1 + k % 5, "meter": "energy" if k % 3 else "", "interval": 0 if k % 3 else 500,
                  "deposit": amount % 60, "max_duration": 1500})
        return owner, "create_contract", {"device": device, "commands": ["outlet.turn_on"], "terms": terms}
    if kind == "call":
        contract = _pick(state.ns["contract"], k)
        if contract is None:
            return None
        return user, "call", {"contract": contract, "deposit": amount if not flag or i == 2 else 0}
    if kind in ("return", "review"):
        wanted = "open" if kind == "return" else "returned"  # mostly one that can be returned or reviewed
        call_id = _pick([c for c, v in state.ns["call"].items() if v[6] == wanted or i == 2], k)
        if call_id is None:
            return None
        contract_id, renter, _deposit, chan_id = state.get("call", call_id)[:4]
        device, controller = state.get("contract", contract_id)[:2]
        if kind == "review":
            return (_user(renter) if not flag else user), "review", {"call": call_id, "comment": "bad"}
        signed_cheque = None
        if chan_id:
            signed_cheque = cheque(_user(renter), chan_id, contract_id, call_id, amount, net,
                                   call_amount=min(amount, amount // 2 + j * 40))
        return (_user(controller) if j else user), "return", {
            "call": call_id, "used": amount % 50 // (1 + i), "consent": consent(_user(controller), contract_id, call_id, device, net),
            "cheque": signed_cheque}
    if kind == "settle":
        chan_id = _pick(state.ns["chan"], k)
        if chan_id is None:
            return None
        renter, payee = state.get("chan", chan_id)[:2]
        sender = (_user(payee), _user(renter), user)[j]
        calls = [c for c, v in sorted(state.ns["call"].items()) if v[3] == chan_id]
        body = None
        if calls and (i or not flag):
            c = calls[amount % len(calls)]
            body = cheque(_user(renter), chan_id, state.get("call", c)[0], c, amount, net)
        return sender, "settle", {"channel": chan_id, "cheque": body, "close": flag}
    # refund: a call (by its renter, mostly) or a channel (by anyone)
    if flag:
        target = _pick(state.ns["chan"], k)
        return (user, "refund", {"target": target}) if target else None
    call_id = _pick(state.ns["call"], k)
    if call_id is None:
        return None
    renter = state.get("call", call_id)[1]
    return (_user(renter) if i else user), "refund", {"target": call_id}


def _entries(state):
    return ((ns, k, v) for ns in NAMESPACES for k, v in state.ns[ns].items())


def _setup_blocks(sim: Sim):
    """The first two blocks' transactions: the devices bound, then one prepaid and one
    time-metered offer of the plug and an energy-metered offer of the pile."""
    yield [Wallet(USERS[n], sim).tx("bind_device", bind(d, USERS[n].public_key, 0, sim)) for n, d in enumerate(DEVICES)]
    offers = [
        (0, 0, {"kind": "prepaid", "price": 30, "window": 1000, "max_duration": 3000}),
        (0, 0, {"kind": "metered", "rate": 2, "meter": "", "interval": 500, "deposit": 50, "max_duration": 2000}),
        (1, 1, {"kind": "metered", "rate": 300, "meter": "energy", "deposit": 0, "max_duration": 2000})]
    yield [Wallet(USERS[n], sim).tx("create_contract", {"device": DEVICES[d].public_key, "commands": ["outlet.turn_on"],
                                                        "terms": t}, nonce=2 + (n == 0 and d == 0 and t["kind"] == "metered"))
           for n, d, t in offers]


class MarketMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.genesis = make_genesis(PRODUCERS, START, **RULES)
        self.sim = Sim(self.genesis, PRODUCERS)
        self.applied: list = []
        self.snapshots = [self._snapshot()]
        for txs in _setup_blocks(self.sim):
            self._block(txs)
        self.setup = len(self.applied)

    def _snapshot(self):
        s = self.sim.state
        return s.digest(), s.state_root(), s.head

    def _block(self, txs, skip: int = 0) -> None:
        applied = self.sim.next_block(txs, skip=skip, strict=False)
        self.applied.append(applied)
        self.snapshots.append(self._snapshot())
        for t in applied.txs:
            event(f"accepted {t.type}")

    @rule(ops=st.lists(op, min_size=1, max_size=6), skip=st.integers(0, 1))
    def block(self, ops, skip) -> None:
        txs, nonces = [], {}
        for o in ops:
            made = _payload(self.sim, *o)
            if made is None:
                continue
            sender, tx_type, payload = made
            nonce = self.sim.state.nonce(addr(sender)) + 1 + nonces.get(sender.public_key, 0)
            nonces[sender.public_key] = nonces.get(sender.public_key, 0) + 1
            txs.append(Wallet(sender, self.sim).tx(tx_type, payload, nonce=nonce, fee=RUFF // 100))
        self._block(txs, skip)

    @rule(count=st.integers(1, 4))
    def idle(self, count) -> None:
        for _ in range(count):
            self._block([])

    @rule(depth=st.integers(1, 3))
    def reorg(self, depth) -> None:
        """Step back up to ``depth`` blocks (never the setup's); other blocks follow."""
        for _ in range(min(depth, len(self.applied) - self.setup)):
            step = self.applied.pop()
            self.sim.state.revert(step.undo, step.parent)
            self.sim.blocks.pop()
            self.snapshots.pop()
            assert self._snapshot() == self.snapshots[-1], "a reverted block leaves the state as before it"
        event(f"reorg of {depth}")

    @invariant()
    def no_token_created_or_lost(self) -> None:
        state = self.sim.state
        balances = sum(bal for bal, _ in state.ns["acct"].values())
        assert balances + escrow_total(state) == state.meta("supply")
        rewarded = sum(any(t.type in REWARDED_TYPES for t in a.txs) for a in self.applied)
        assert state.meta("supply") == sum(START.values()) + rewarded * state.constants.BLOCK_REWARD
        for renter, payee, deposit, withdrawn, closing, _at, _opened, _closed in state.ns["chan"].values():
            assert 0 <= withdrawn <= deposit and closing <= deposit

    @invariant()
    def root_is_a_rebuilds(self) -> None:
        assert self.sim.state.state_root() == statetree.build(_entries(self.sim.state)).root()

    def teardown(self) -> None:
        replica = self.genesis.state()  # a node that only saw the surviving blocks
        for block in self.sim.blocks:
            apply_block(replica, block)
        assert replica.digest() == self.sim.state.digest() and replica.head == self.sim.state.head


MarketMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None,
                                           suppress_health_check=[HealthCheck.too_slow])
TestMarketMachine = MarketMachine.TestCase


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_malformed_market_payloads_are_refused_with_a_reason_never_an_exception(data):
    """Whatever a market payload's fields hold (as they come off the wire), the transaction is
    refused with a reason and changes nothing, or applies."""
    from hub.chain.protocol.errors import TxRejected
    from hub.chain.protocol.rules import BlockContext, apply_tx
    from hub.chain.protocol.transition import signature_verifier

    sim = Sim(make_genesis(PRODUCERS, START, **RULES), PRODUCERS)
    for txs in _setup_blocks(sim):  # two bound devices, three offers
        sim.next_block(txs)
    state = sim.state
    owner, renter = USERS[0], USERS[2]
    offers = sorted(state.ns["contract"])
    device = DEVICES[0].public_key
    chan = b"\x0c" * 32
    valid = {
        "create_contract": {"device": device, "commands": ["outlet.turn_on"],
                            "terms": {"kind": "metered", "rate": 3, "meter": "energy", "deposit": 5, "max_duration": 9}},
        "call": {"contract": offers[0], "deposit": 100},
        "return": {"call": b"\x0a" * 32, "used": 1, "consent": consent(owner, offers[0], b"\x0a" * 32, device, sim),
                   "cheque": cheque(renter, chan, offers[0], b"\x0a" * 32, 5, sim)},
        "review": {"call": b"\x0a" * 32, "comment": "x"},
        "settle": {"channel": chan, "cheque": cheque(renter, chan, offers[0], b"\x0a" * 32, 5, sim), "close": True},
        "refund": {"target": chan},
    }
    tx_type = data.draw(st.sampled_from(sorted(valid)))
    payload = _mangled(valid[tx_type], data)
    try:
        tx = Wallet(owner, sim).tx(tx_type, payload, nonce=state.nonce(addr(owner)) + 1)
    except Exception:  # noqa: BLE001 - not encodable as CBOR: nothing to send
        return
    before = state.digest()
    state.begin()
    try:
        apply_tx(state, tx, BlockContext(3, state.head.timestamp + 500, 1, frozenset()), signature_verifier(state.network))
    except TxRejected as exc:
        assert exc.reason and state.digest() == before
    state.commit()
