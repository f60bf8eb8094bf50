#!/bin/sh
# Source extraction throughput (MB/s, one thread): podgen's HTML (gumbo)
# and PDF (poppler) extractors against html2text and pdftotext on the same
# files, in the same run.  Writes its section of bench/RESULTS.md when
# given --out FILE.
set -e
out_file=
[ "$1" = "--out" ] && out_file=$2
cd "$(dirname "$0")/.."
mkdir -p build/bench
cc -O2 -g -std=gnu99 -I/usr/include/opus $(pkg-config --cflags poppler-glib) \
    -Ilib -o build/bench/source_extract bench/src/source_extract.c \
    lib/pg_source.c lib/pg_source_html.c lib/pg_source_pdf.c lib/pg_script.c \
    lib/pg_script_request.c lib/pg_json.c lib/pg_text.c lib/pg_buf.c \
    lib/pg_analysis.c lib/pg_dialogue.c \
    -lgumbo $(pkg-config --libs poppler-glib cairo) -lyajl -lm
out=$(taskset -c 0 build/bench/source_extract build/bench t/data/source-*.txt)

# the tools: as many runs as fit in about 3 s, spawned each time
tool() {
    perl -MTime::HiRes=time -e 'my ($n, $t0) = (0, time);
        do { system(@ARGV) == 0 or die "@ARGV failed\n"; $n++ }
            while time - $t0 < 3;
        printf "%d %.3f\n", $n, time - $t0' "$@"
}
calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }

hsize=$(stat -c %s build/bench/long.html)
psize=$(stat -c %s build/bench/long.pdf)
pages=$(pdfinfo build/bench/long.pdf | awk '/^Pages:/ { print $2 }')
set -- $(tool taskset -c 0 sh -c 'html2text -utf8 build/bench/long.html > /dev/null')
h2t=$(calc "$hsize * $1 / $2 / 1000000")
set -- $(tool taskset -c 0 sh -c 'pdftotext build/bench/long.pdf - > /dev/null')
p2t=$(calc "$psize * $1 / $2 / 1000000")
ph=$(echo "$out" | awk '/^html/ { print $5 }')
pp=$(echo "$out" | awk '/^pdf/ { print $5 }')

section="## Source extraction throughput, one core

Measured $(date -u '+%F %H:%M') UTC with \`sh bench/source-extract.sh\` on
$(nproc) cores (pinned to one): a $((hsize / 1024)) KB HTML page and a $pages-page
PDF of $((psize / 1024)) KB (the texts of t/data eight times, made by
bench/src/source_extract.c), each read for about 3 s. podgen: the whole
extraction in process (parse, main content or page text, cleaning, the
sections). The tools are spawned once a run, on the same files.

| document | podgen | tool | tool's rate | podgen / tool |
|---|---|---|---|---|
| HTML, $((hsize / 1024)) KB | $ph MB/s | html2text -utf8 | $h2t MB/s | $(calc "$ph / $h2t")x |
| PDF, $pages pages | $pp MB/s | pdftotext | $p2t MB/s | $(calc "$pp / $p2t")x |
"
echo "$section"
if [ -n "$out_file" ]; then
    perl -0pi -e 's/## Source extraction throughput, one core.*?(?=\n## |\z)//s' "$out_file" 2>/dev/null || true
    printf '%s\n' "$section" >> "$out_file"
fi
