/* temporary */
#include "pg_source.h"

int
pg_source_html(const char *data, size_t len, const char *charset,
    pg_source_doc_t *doc, pg_error_t *err)
{
    pg_error_set(err, 415, "Content-Type", "unsupported_media_type",
                 "HTML is not supported yet");
    return -1;
}

int
pg_source_pdf(const char *data, size_t len, pg_source_doc_t *doc,
    pg_error_t *err)
{
    pg_error_set(err, 415, "Content-Type", "unsupported_media_type",
                 "PDF is not supported yet");
    return -1;
}
