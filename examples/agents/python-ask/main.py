"""python-ask: asks for a name, then a favourite colour, and returns both.

Each ``ctx.ask`` pauses the invocation (``waiting_for_input``) until someone answers; the
agent then runs again from the top, and the questions already answered return their
answers at once. Code before an ``ask`` therefore runs once per round: keep it free of
side effects.
"""

from agentd import run


def handle(ctx):
    name = ctx.ask({"question": "name?"})
    color = ctx.ask({"question": f"favourite colour, {name}?"})
    return {"name": name, "color": color, "attempt": ctx.attempt}


run(handle)
