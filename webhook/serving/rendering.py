"""A response rendered into memory by a worker thread, for the poller to write.

A thread never writes to a client socket: a client that does not read its answer would hold
the thread (webhook/serving/worker.py writes the bytes non-blocking instead). gunicorn's request
handling writes to what it takes for the socket; here that is a bounded buffer.
"""

from __future__ import annotations

import errno
from typing import Any

from webhook.errors import ResponseTooLargeError
from webhook.serving.connection import MAX_RESPONSE_BYTES, error_response
from webhook.serving.gunicorn_internals import NoMoreData, http


class ResponseBuffer:
    """Stands in for the socket while gunicorn writes a response: keeps up to `limit` bytes."""

    def __init__(self, limit: int = MAX_RESPONSE_BYTES) -> None:
        self.limit = limit
        self.data = bytearray()

    def sendall(self, data: bytes) -> None:
        if len(self.data) + len(data) > self.limit:
            raise ResponseTooLargeError(
                errno.EMSGSIZE, f"response exceeds the limit of {self.limit} bytes"
            )
        self.data += data

    def send(self, data: bytes) -> int:
        self.sendall(data)
        return len(data)

    def gettimeout(self) -> float:
        return 0.0  # gunicorn's write_nonblock then writes without touching blocking mode

    def shutdown(self, how: int) -> None:
        raise OSError(errno.ENOTSOCK, "a response buffer is not a socket")


class Rendering:
    """What gunicorn's handle_request takes for the connection."""

    __slots__ = ("client", "server", "sock")

    def __init__(self, sock: ResponseBuffer, client: Any, server: Any) -> None:
        self.sock, self.client, self.server = sock, client, server


def render(worker: Any, client: Any, server: Any, request: bytes) -> tuple[bytes, bool]:
    """Parse and answer one complete request with gunicorn's ThreadWorker `worker`: the
    response bytes (empty: close without an answer) and whether the connection stays open."""
    out = ResponseBuffer()
    req = None
    try:
        parser = http.get_parser(worker.cfg, [request], client)
        req = next(parser)
        keep = bool(worker.handle_request(req, Rendering(out, client, server)))
        if keep and not (parser.finish_body() and not parser.unreader.take_buffered()):
            worker.log.warning("request from %s framed ambiguously; closing", client)
            keep = False
        return bytes(out.data), keep
    except ResponseTooLargeError as exc:
        worker.log.error("response to %s refused: %s", client, exc.strerror)
        return error_response(500, f"internal error: {exc.strerror}"), False
    except NoMoreData as exc:
        worker.log.debug("request from %s ended early: %s", client, exc)
    except StopIteration as exc:  # the application failed after its headers: no answer
        worker.log.debug("closing connection to %s: %s", client, exc)
    except Exception as exc:  # gunicorn's answer to an unparsable request: 400
        out = ResponseBuffer()
        try:
            worker.handle_error(req, out, client, exc)
        except ResponseTooLargeError:
            return b"", False
        return bytes(out.data), False
    return b"", False
