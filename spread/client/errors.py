"""libspread's error codes as a Python exception, with SP_strerror's texts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from spread.wire import client as w

if TYPE_CHECKING:
    from spread.client.messages import SpreadMessage

_TEXT = {
    w.ILLEGAL_SPREAD: "Illegal spread name provided.",
    w.COULD_NOT_CONNECT: "Could not connect.",
    w.REJECT_QUOTA: "Connection rejected, too many users.",
    w.REJECT_NO_NAME: "Connection rejected, no name was supplied.",
    w.REJECT_ILLEGAL_NAME: "Connection rejected, illegal name.",
    w.REJECT_NOT_UNIQUE: "Connection rejected, name not unique.",
    w.REJECT_VERSION: "Connection rejected, client library incompatible with daemon.",
    w.CONNECTION_CLOSED: "Connection closed by Spread.",
    w.REJECT_AUTH: "Connection rejected, authentication failed.",
    w.ILLEGAL_SESSION: "Illegal session was supplied.",
    w.ILLEGAL_SERVICE: "Illegal service request.",
    w.ILLEGAL_MESSAGE: "Illegal message.",
    w.ILLEGAL_GROUP: "Illegal group.",
    w.BUFFER_TOO_SHORT: "Buffer too short.",
    w.GROUPS_TOO_SHORT: "Groups list too short.",
    w.MESSAGE_TOO_LONG: "Message (body + group names) too large.",
    w.NET_ERROR_ON_SESSION: "Network socket error. SP_kill() the mailbox.",
    w.SP_BUG: "Internal Spread bug detected.",
    w.ILLEGAL_TIME: "Illegal time.",
}


def strerror(code: int) -> str:
    """SP_strerror."""
    return _TEXT.get(code, "Unrecognized error.")


def error_line(code: int) -> str:
    """What SP_error prints (without the newline)."""
    return f"SP_error: ({code}) {strerror(code)}"


class SpreadError(Exception):
    """A libspread error code. `code` is the negative SP_* value."""

    def __init__(self, code: int, detail: str = "") -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"({code}) {strerror(code)}" + (f": {detail}" if detail else ""))


class ShortBuffer(SpreadError):
    """GROUPS_TOO_SHORT / BUFFER_TOO_SHORT from receive.

    Without drop_recv nothing was consumed and the fields say what would be needed, as
    SP_receive reports them: `num_groups` is -(groups needed) or 0, `endian_mismatch` is
    -(data bytes needed) or 0. With drop_recv the message was consumed and `message`
    holds what fitted.
    """

    def __init__(
        self,
        code: int,
        service_type: int,
        sender: str,
        mess_type: int,
        num_groups: int,
        endian_mismatch: int,
        message: SpreadMessage | None = None,
    ) -> None:
        super().__init__(code)
        self.service_type = service_type
        self.sender = sender
        self.mess_type = mess_type
        self.num_groups = num_groups
        self.endian_mismatch = endian_mismatch
        self.message = message
