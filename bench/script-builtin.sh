#!/bin/sh
# Built-in script generator throughput (one core), against normalizing and
# splitting the same source as the baseline.  Writes its section of
# bench/RESULTS.md when given --out FILE.
set -e
cd "$(dirname "$0")/.."
mkdir -p build/bench
cc -O2 -g -std=gnu99 -I/usr/include/opus $(pkg-config --cflags poppler-glib) \
    -Ilib -o build/bench/script_builtin \
    bench/src/script_builtin.c lib/pg_script.c lib/pg_script_request.c \
    lib/pg_analysis.c lib/pg_dialogue.c lib/pg_json.c lib/pg_text.c \
    lib/pg_buf.c lib/pg_source.c lib/pg_source_html.c lib/pg_source_pdf.c \
    -lgumbo $(pkg-config --libs poppler-glib) -lyajl -lm
row=$(taskset -c 0 build/bench/script_builtin t/data/source-*.txt)
section="## Built-in script generator, one core

Measured $(date -u +%F) with \`sh bench/script-builtin.sh\`: the three texts of
t/data joined, medium length (~900 words), two hosts, 3 s each, pinned to
one core. Baseline: normalizing and sentence-splitting the same source.

| source words | generator | baseline (normalize + split) | generator / baseline |
|---|---|---|---|
$row
"
echo "$section"
if [ "$1" = "--out" ]; then
    perl -0pi -e 's/## Built-in script generator, one core.*?(?=\n## |\z)//s' "$2" 2>/dev/null || true
    printf '%s\n' "$section" >> "$2"
fi
