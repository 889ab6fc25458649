#!/bin/sh
# shell-sleep: sleeps for input.seconds (a whole number, default 30), then succeeds with
# {"slept": N}. Cancellation and timeout tests kill it while it sleeps.
set -eu

doc=$(cat)

# Find input.seconds without a JSON parser: take what follows the first "input" key; when
# that is an object, look for "seconds" before its first closing brace. Anything else
# (no input, no seconds, not a whole number) falls back to the default.
seconds=
case $doc in
*'"input"'*)
    rest=${doc#*\"input\"}
    rest=${rest#*:}
    object=${rest%%\}*}
    case $object in
    *'"seconds"'*)
        value=${object#*\"seconds\"}
        value=${value#*:}
        seconds=$(printf '%s\n' "$value" | sed -n 's/^[[:space:]]*\([0-9][0-9]*\).*/\1/p')
        ;;
    esac
    ;;
esac
seconds=${seconds:-30}

echo "sleeping $seconds seconds"
printf '{"type":"log","level":"info","message":"sleeping %s seconds"}\n' "$seconds" >&3
sleep "$seconds"
printf '{"type":"output","data":{"slept":%s}}\n' "$seconds" >&3
