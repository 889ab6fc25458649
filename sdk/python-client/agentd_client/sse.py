"""A Server-Sent Events parser (the WHATWG rules), fed bytes as they arrive."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional


@dataclass
class Message:
    """One dispatched SSE message."""

    event: str
    data: str
    id: Optional[str]


class SSEParser:
    """Incremental parser: :meth:`feed` bytes, get the messages they completed.

    Lines end with CRLF, LF or CR; a line starting with ``:`` is a comment; ``field: value``
    loses one space after the colon; ``data`` lines are joined with ``\\n``; a blank line
    dispatches; a message with no ``data`` is dropped; ``event`` defaults to ``message``.
    ``last_event_id`` keeps the last ``id`` seen, as a browser's ``EventSource`` does.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._pending_cr = False
        self._event = ""
        self._data: List[str] = []
        self._id: Optional[str] = None
        self.last_event_id: Optional[str] = None

    def feed(self, chunk: bytes) -> List[Message]:
        out: List[Message] = []
        buffer = self._buffer + chunk
        start = 0
        i = 0
        n = len(buffer)
        while i < n:
            byte = buffer[i]
            if self._pending_cr:
                # A CR was the end of the previous line: skip the LF of a CRLF pair.
                self._pending_cr = False
                if byte == 0x0A:
                    i += 1
                    start = i
                    continue
            if byte == 0x0A or byte == 0x0D:
                self._line(buffer[start:i].decode("utf-8", errors="replace"), out)
                if byte == 0x0D:
                    self._pending_cr = True
                i += 1
                start = i
                continue
            i += 1
        self._buffer = buffer[start:]
        return out

    def _line(self, line: str, out: List[Message]) -> None:
        if line == "":
            if self._data:
                out.append(Message(self._event or "message", "\n".join(self._data), self._id))
            self._event = ""
            self._data = []
            return
        if line.startswith(":"):
            return
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id":
            if "\x00" not in value:
                self._id = value
                self.last_event_id = value
        # `retry` and unknown fields are ignored: the client has its own backoff.
