"""python-deps: formats input.bytes (default 1234567) with humanize, installed from
requirements.txt, and returns {"size": "1.2 MB", "humanize": "4.9.0"}."""

from importlib.metadata import version

import humanize

from agentd import run


def handle(ctx):
    size = (ctx.input or {}).get("bytes", 1234567)
    ctx.log(f"humanize {version('humanize')} imported")
    return {"size": humanize.naturalsize(size), "humanize": version("humanize")}


run(handle)
