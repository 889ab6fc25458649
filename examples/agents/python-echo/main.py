"""python-echo: returns its input unchanged, as {"echo": input}."""

import agentd


def handle(ctx):
    ctx.log("echoing")
    return {"echo": ctx.input}


agentd.run(handle)
