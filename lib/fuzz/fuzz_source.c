/*
 * libFuzzer target for lib/pg_source.c, the Markdown and plain text
 * reader: the first byte picks text/plain or text/markdown (and a
 * charset), the rest is the document.  Checked: an answer is a 4xx or a
 * document whose title and sections are valid UTF-8, whose every section
 * has words, and which goes to JSON and back unchanged.
 *
 *   make build/fuzz/fuzz_source && build/fuzz/fuzz_source t/fuzz/source
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_source.h"
#include "pg_text.h"
#include "fuzz_source_check.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pg_source_type_t  type;
    const char       *charset;

    if (size == 0) {
        return 0;
    }

    type = (data[0] & 1) ? PG_SOURCE_MARKDOWN : PG_SOURCE_TEXT;
    charset = (data[0] & 2) ? "iso-8859-1" : "";

    fuzz_source_check((const char *) data + 1, size - 1, type, charset);

    return 0;
}
