#!/bin/sh
# shell-wc: the run protocol by hand, no SDK. stdin holds the invocation document; events
# go to fd 3 as JSON lines. The output is {"bytes": N}, N being the size of the document.
set -eu

bytes=$(wc -c | tr -d ' ')

echo "read $bytes bytes of input"
printf '{"type":"output","data":{"bytes":%s}}\n' "$bytes" >&3
