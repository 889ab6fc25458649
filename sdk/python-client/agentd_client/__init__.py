"""agentd_client: call an agentd server from an application (standard library only).

    from agentd_client import Client

    client = Client()  # AGENTD_API_URL, AGENTD_API_KEY
    client.agents.deploy("examples/agents/python-echo")
    run = client.invoke("python-echo", {"hello": "world"}, wait=30)
    print(run["status"], run["output"])

See README.md for the whole surface.
"""

from .bundle import BundleError, pack_dir, slugify
from .client import SETTLED, TERMINAL, Agents, Client, Invocations, Keys, Threads, __version__
from .errors import (
    AgentdError,
    APIError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    StreamError,
    TransportError,
    Unauthorized,
    UnprocessableEntity,
)
from .sse import Message, SSEParser

__all__ = [
    "__version__",
    "Client",
    "Agents",
    "Invocations",
    "Threads",
    "Keys",
    "TERMINAL",
    "SETTLED",
    "AgentdError",
    "APIError",
    "BadRequest",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "Conflict",
    "PayloadTooLarge",
    "UnprocessableEntity",
    "RateLimited",
    "ServerError",
    "ServiceUnavailable",
    "TransportError",
    "StreamError",
    "BundleError",
    "pack_dir",
    "slugify",
    "SSEParser",
    "Message",
]
