/*
 * podgen: batches — POST /v1/batch, and async batches as a kind of job.
 */

#ifndef NGX_HTTP_PODGEN_BATCH_H
#define NGX_HTTP_PODGEN_BATCH_H

/* Registers the async batch with the job runner (init_process). */
void ngx_http_podgen_batch_job_init(void);

#endif /* NGX_HTTP_PODGEN_BATCH_H */
