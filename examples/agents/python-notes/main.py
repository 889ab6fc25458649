"""Remembers notes across runs of a thread.

    agentd threads create --agent python-notes            # prints thr_...
    agentd invoke python-notes --thread thr_... --input '{"note": "buy tea"}' --wait
    agentd invoke python-notes --thread thr_... --input '{"note": "call Ada"}' --wait
    agentd threads show thr_...                           # the state: both notes

``ctx.state`` is the thread's state as this run starts; what the handler leaves in it is
saved when it returns. A run that fails saves nothing, so the notes stay as they were.
"""

from agentd import run


def handle(ctx):
    note = (ctx.input or {}).get("note")
    if not isinstance(note, str) or not note:
        raise ValueError('give {"note": "<text>"}')
    notes = ctx.state.setdefault("notes", [])
    notes.append(note)
    ctx.log(f"{len(notes)} notes on thread {ctx.thread_id}")
    return {"notes": notes}


run(handle)
