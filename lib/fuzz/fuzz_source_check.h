/*
 * What every source extractor promises (the fuzz targets fuzz_source,
 * fuzz_html, fuzz_pdf share it).
 */

#ifndef FUZZ_SOURCE_CHECK_H
#define FUZZ_SOURCE_CHECK_H

#define check(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_source: %s:%d: %s\n",                      \
                    __FILE__, __LINE__, #cond);                              \
            abort();                                                         \
        }                                                                    \
    } while (0)


static void
fuzz_source_check(const char *data, size_t size, pg_source_type_t type,
    const char *charset)
{
    size_t            i, words;
    pg_buf_t          json;
    pg_error_t        err;
    pg_source_doc_t   doc, back;

    memset(&err, 0, sizeof(pg_error_t));

    if (pg_source_extract(data, size, type, charset, &doc, &err) != 0) {
        check(err.status == 400 || err.status == 413 || err.status == 415
              || err.status == 422 || err.status == 500);
        check(err.code != NULL && err.message[0] != '\0');
        check(doc.nsections == 0 && doc.title == NULL);
        return;
    }

    check(doc.nsections > 0 && doc.word_count > 0);

    if (doc.title) {
        check(pg_utf8_valid(doc.title, strlen(doc.title)));
        check(strlen(doc.title) <= PG_SOURCE_TITLE_MAX);
    }

    words = 0;

    for (i = 0; i < doc.nsections; i++) {
        check(doc.sections[i].text != NULL && doc.sections[i].text[0]);
        check(pg_utf8_valid(doc.sections[i].text,
                            strlen(doc.sections[i].text)));

        if (doc.sections[i].title) {
            check(pg_utf8_valid(doc.sections[i].title,
                                strlen(doc.sections[i].title)));
        }

        words += strlen(doc.sections[i].text) > 0;
    }

    check(words == doc.nsections);

    memset(&json, 0, sizeof(pg_buf_t));
    check(pg_source_to_json(&doc, "src_0", "text/plain", NULL, &json) == 0);
    check(pg_source_from_json((char *) json.data, json.len, &back) == 0);
    check(back.nsections == doc.nsections);
    check(back.word_count == doc.word_count);
    check((back.title == NULL) == (doc.title == NULL));

    for (i = 0; i < doc.nsections; i++) {
        check(strcmp(back.sections[i].text, doc.sections[i].text) == 0);
    }

    pg_buf_free(&json);
    pg_source_doc_free(&back);
    pg_source_doc_free(&doc);
}

#endif /* FUZZ_SOURCE_CHECK_H */
