#!/bin/sh
# Prints "tick 1" .. "tick N", one line every 0.2 s.
i=1
while [ "$i" -le "$1" ]; do
    echo "tick $i"
    i=$((i + 1))
    sleep 0.2
done
