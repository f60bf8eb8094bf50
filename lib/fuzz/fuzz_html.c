/*
 * libFuzzer target for lib/pg_source_html.c: the input is the document
 * (text/html, read as UTF-8 or per its <meta charset>); the promises checked are those of
 * fuzz_source_check.h (a 4xx, or clean UTF-8 sections with words that go
 * to JSON and back).
 *
 *   make build/fuzz/fuzz_html && build/fuzz/fuzz_html t/fuzz/html
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
    fuzz_source_check((const char *) data, size, PG_SOURCE_HTML, "");

    return 0;
}
