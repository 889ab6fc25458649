#!/bin/sh
# {{name}}: greets input.name ("world" when there is none) and outputs
# {"greeting": "hello, <name>"}, speaking the run protocol by hand: the invocation
# document arrives on stdin, events leave as JSON lines on fd 3, exit 0 means success.
set -eu

doc=$(cat)

# input.name without a JSON parser: a plain string value (no quote or backslash in it)
# of a flat input object; anything else falls back to "world".
name=$(printf '%s\n' "$doc" |
    sed -n 's/.*"input"[[:space:]]*:[[:space:]]*{[^}]*"name"[[:space:]]*:[[:space:]]*"\([^"\\]*\)".*/\1/p')
name=${name:-world}

echo "greeting $name"
printf '{"type":"log","level":"info","message":"greeting %s"}\n' "$name" >&3
printf '{"type":"output","data":{"greeting":"hello, %s"}}\n' "$name" >&3
