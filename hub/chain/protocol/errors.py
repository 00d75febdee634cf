"""Why a transaction or a block is refused: a stable code for programs, a sentence for people."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # envelope
    BAD_ENCODING = "bad_encoding"
    TOO_LARGE = "too_large"
    UNKNOWN_TYPE = "unknown_type"
    TYPE_NOT_ENABLED = "type_not_enabled"
    BAD_PAYLOAD = "bad_payload"
    BAD_SIGNATURE = "bad_signature"
    FEE_TOO_LOW = "fee_too_low"
    EXPIRED = "expired"
    VALIDITY_TOO_LONG = "validity_too_long"
    NONCE_TOO_LOW = "nonce_too_low"
    NONCE_TOO_HIGH = "nonce_too_high"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    # candidates and votes
    ALREADY_CANDIDATE = "already_candidate"
    NAME_TAKEN = "name_taken"
    DISQUALIFIED = "disqualified"
    UNKNOWN_CANDIDATE = "unknown_candidate"
    TOO_MANY_VOTES = "too_many_votes"
    DUPLICATE_VOTE = "duplicate_vote"
    # polls and evidence
    NOT_A_PRODUCER = "not_a_producer"
    NOT_A_CANDIDATE = "not_a_candidate"
    POLL_EXISTS = "poll_exists"
    UNKNOWN_POLL = "unknown_poll"
    ALREADY_VOTED = "already_voted"
    BAD_EVIDENCE = "bad_evidence"
    # devices (bind_device, control_command, state_change, command_log; docs/chain.md)
    BAD_STATEMENT = "bad_statement"  # a well-formed statement that does not fit this use
    BAD_STATEMENT_SIGNATURE = "bad_statement_signature"  # not signed by the key it must be signed by
    FUTURE_TIME = "future_time"
    STALE_BINDING = "stale_binding"
    UNBOUND = "unbound"
    NOT_CONTROLLER = "not_controller"
    WRONG_SEQ = "wrong_seq"
    OFFER_EXPIRED = "offer_expired"
    WRONG_BUYER = "wrong_buyer"
    STALE_EPOCH = "stale_epoch"
    WRONG_CHAIN = "wrong_chain"
    NOT_GRANTED = "not_granted"
    GRANT_REVOKED = "grant_revoked"
    UNKNOWN_COMMAND = "unknown_command"
    ALREADY_REPORTED = "already_reported"
    LOG_GAP = "log_gap"
    LOG_OVERLAP = "log_overlap"
    # market (create_contract, call, return, review, settle, refund; docs/chain.md)
    UNKNOWN_CONTRACT = "unknown_contract"
    CONTRACT_NOT_LIVE = "contract_not_live"
    DEPOSIT_TOO_LOW = "deposit_too_low"
    UNKNOWN_CALL = "unknown_call"
    CALL_NOT_OPEN = "call_not_open"
    NOT_RENTER = "not_renter"
    USED_ABOVE_CAP = "used_above_cap"
    CONSENT_MISMATCH = "consent_mismatch"
    CHEQUE_MISMATCH = "cheque_mismatch"
    CHEQUE_NOT_RISING = "cheque_not_rising"
    REFUND_TOO_EARLY = "refund_too_early"
    UNKNOWN_TARGET = "unknown_target"
    CALL_NOT_RETURNED = "call_not_returned"
    REVIEW_PERIOD_OVER = "review_period_over"
    ALREADY_REVIEWED = "already_reviewed"
    UNKNOWN_CHANNEL = "unknown_channel"
    CHANNEL_CLOSING = "channel_closing"
    CHANNEL_NOT_CLOSING = "channel_not_closing"
    CHANNEL_CLOSED = "channel_closed"
    CHALLENGE_RUNNING = "challenge_running"
    CHALLENGE_OVER = "challenge_over"
    NOT_PAYEE = "not_payee"
    # mempool only (not consensus)
    DUPLICATE = "duplicate"
    MEMPOOL_FULL = "mempool_full"
    REPLACEMENT_FEE_TOO_LOW = "replacement_fee_too_low"
    REPLACED = "replaced"  # dropped for a transaction with the same sender and nonce and a higher fee


class TxRejected(ValueError):
    """A transaction that must not change the state; nothing was written when this is raised."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)


class BlockRejected(ValueError):
    """A block that does not follow from the state it was applied to; the state is unchanged."""

    def __init__(self, message: str, *, tx_index: int | None = None, tx_reason: Reason | None = None) -> None:
        self.tx_index = tx_index
        self.tx_reason = tx_reason
        super().__init__(message)


class ParentUnknown(BlockRejected):
    """The block's parent (or an ancestor on its branch) is not known here yet: a passing reason,
    no proof that the block is invalid; the same block may be accepted once its ancestors arrive."""
