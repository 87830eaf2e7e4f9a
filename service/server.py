"""The HTTP server under the app: uvicorn's h11 protocol, with limits on what one connection may hold it to.

uvicorn alone closes a connection only once it has answered a request and
then waited `timeout_keep_alive`: one that never finishes its request's head
(slow headers, a byte at a time, or nothing at all) is held for ever, and
enough of them exhaust the file descriptors. Here:

- A request's head (line and headers) must arrive within `header_timeout`
  seconds of the connection opening, or of the previous answer on it; else
  the connection is closed. An idle kept-alive connection is closed after
  `keep_alive` seconds (uvicorn's timeout_keep_alive).
- A head longer than MAX_HEAD_BYTES is answered 414 (its request line is
  that long) or 431 (its headers are), whether it arrived whole or in pieces
  (h11 checks only a head still incomplete).
- A connection answered before its request was read to the end (a refusal:
  414, 431, 400, a body over the limit) is not closed under the client's
  feet, which would reset it and lose the answer: the server stops writing,
  reads and discards what still comes for LINGER seconds at most, then closes.
"""

from __future__ import annotations

from typing import Optional

import h11
from uvicorn.protocols.http.h11_impl import STATUS_PHRASES, H11Protocol

from service.settings import Settings

# The longest request line plus headers: /similar?text= takes 20,000
# characters (some 25 KB of English once URL-encoded; more for other scripts).
MAX_HEAD_BYTES = 64 * 1024
LINGER = 2.0  # seconds


class _Connection(h11.Connection):
    """h11's server side, refusing a complete head over MAX_HEAD_BYTES as it does an incomplete one; notes why."""

    refusal: Optional[tuple[int, str]] = None  # (status, message) of the last refused request

    def next_event(self):
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as err:
            buffered, _ = self.trailing_data
            if err.error_status_hint == 431 and b"\n" not in buffered:  # h11's "receive buffer too long", in the request line
                self.refusal = (414, f"the request line is longer than {MAX_HEAD_BYTES:,} bytes")
            elif err.error_status_hint == 431:
                self.refusal = (431, f"the request's headers are longer than {MAX_HEAD_BYTES:,} bytes")
            else:
                self.refusal = (400, "Invalid HTTP request received.")
            raise
        if isinstance(event, h11.Request):
            if len(event.target) > MAX_HEAD_BYTES:
                self.refusal = (414, f"the request line is longer than {MAX_HEAD_BYTES:,} bytes")
            elif sum(len(name) + len(value) + 4 for name, value in event.headers) > MAX_HEAD_BYTES:
                self.refusal = (431, f"the request's headers are longer than {MAX_HEAD_BYTES:,} bytes")
            else:
                return event
            raise h11.RemoteProtocolError(self.refusal[1], error_status_hint=self.refusal[0])
        return event


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a time limit on request heads, a size limit on them, and lingering refusals."""

    header_timeout = 15.0  # seconds; see http_protocol()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.conn = _Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        self._head_timer = None
        self._lingering = False

    # ------------------------------------------------------------ the head's time limit

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._await_head()

    def _await_head(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # the rest of a request already answered: read, and dropped
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # a whole head arrived (or the request was refused)
            self._cancel_head_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.SEND_BODY:
            self._linger()  # answered before the body came (too large, or no token): read no more of it
        elif self.conn.their_state is h11.IDLE:
            self._await_head()  # the next request's head, within the same time

    def connection_lost(self, exc) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    # ------------------------------------------------------------ refusals

    def send_400_response(self, msg: str) -> None:
        status, message = self.conn.refusal or (400, msg)
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]
        for event in (h11.Response(status_code=status, headers=headers, reason=STATUS_PHRASES[status]),
                      h11.Data(data=message.encode("utf-8")), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self._linger()

    def _linger(self) -> None:
        """Send the answer and a FIN, then read and drop what the client still sends, LINGER seconds at most."""
        self._lingering = True
        self._cancel_head_timer()
        self._unset_keepalive_if_required()
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()  # after what is buffered: the answer goes first
        self.flow.resume_reading()
        self.loop.call_later(LINGER, self.transport.close)  # (the client's own FIN closes it sooner)


def http_protocol(header_timeout: float) -> type[GuardedH11Protocol]:
    """The protocol class for uvicorn, with this head time limit."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"header_timeout": header_timeout})


def server_options(settings: Settings) -> dict:
    """uvicorn.run's (or uvicorn.Config's) options for the settings' connection limits."""
    return {"http": http_protocol(settings.header_timeout), "timeout_keep_alive": settings.keep_alive}
