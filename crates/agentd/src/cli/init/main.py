"""{{name}}: greets input.name ("world" when there is none) and returns
{"greeting": "hello, <name>"}.

agentd.run reads the invocation from stdin, calls handle(ctx) and sends its return value
as the run's output on fd 3; an exception fails the run with its traceback in the logs.
"""

from agentd import run


def handle(ctx):
    name = ctx.input.get("name", "world") if isinstance(ctx.input, dict) else "world"
    ctx.log(f"greeting {name}")
    return {"greeting": f"hello, {name}"}


run(handle)
