/*
 * podgen: nginx connections around sockets that a library (curl, hiredis)
 * opens and closes itself: the library's socket callbacks wrap its
 * descriptor in an nginx connection (ngx_get_connection()) to get events,
 * and give the connection back here when the library lets go of it.
 */

#ifndef NGX_HTTP_PODGEN_FOREIGN_CONN_H
#define NGX_HTTP_PODGEN_FOREIGN_CONN_H

#include <ngx_config.h>
#include <ngx_core.h>


/*
 * The socket itself is left alone.  flags: NGX_CLOSE_EVENT when it is
 * already closed (no epoll_ctl then).
 */
void ngx_http_podgen_free_foreign_connection(ngx_connection_t *c,
    ngx_uint_t flags);


#endif /* NGX_HTTP_PODGEN_FOREIGN_CONN_H */
