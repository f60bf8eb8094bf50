# nginx's own answers around podgen, with its modules in front of podgen
# locations (limit_req, limit_conn, auth_request, deny, a proxy, return),
# are OpenAI-style JSON errors with fitting codes, so that an SDK shows
# the right error (RateLimitError for 429, PermissionDeniedError for 403,
# NotFoundError for 404); and so is any answer of nginx for a path under
# /v1/ in a server with podgen locations, whichever location it fell into
# (an unknown endpoint caught by the web UI's "location /").  Outside /v1/
# nginx's own pages stay.  ngx_http_podgen_error_filter.c.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;
use IO::Socket::INET;

# limit_conn: a connection still sending its body holds the one slot
{
    my $ng = Podgen::Test::Nginx->new(
        http_config => <<'EOF',
    limit_conn_zone $binary_remote_addr zone=one_conn:1m;
EOF
        config => <<'EOF');
    location = /v1/audio/speech {
        limit_conn one_conn 1;
        limit_conn_status 429;
        podgen_speech;
    }
EOF
    $ng->start;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ng->port, Timeout => 5)
        or die "connect: $!";
    print $s "POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\n"
        . "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{";
    select undef, undef, undef, 0.3;
    my $r = request($ng, 'POST', '/v1/audio/speech',
        body => '{"model":"tts-1","input":"Hi.","voice":"alloy"}',
        headers => { 'Content-Type' => 'application/json' });
    error_ok($r, 'limit_conn 429 while another connection is open',
             status => 429, code => 'rate_limit_exceeded',
             request_id => 1);
    close $s;
    $ng->stop;
    my @bad = $ng->check_error_log;
    ok(!@bad, 'limit_conn: error log clean') or diag join "\n", @bad;
}

run_blocks(defaults => {
    http_config => <<'EOF',
    limit_req_zone $uri zone=per_uri:1m rate=1r/m;
EOF
    config => <<'EOF',
    limit_req zone=per_uri;
    limit_req_status 429;
    location = /v1/audio/speech { podgen_speech; }
    location = /v1/voices { podgen_voices; }
    location /v1/models { podgen_models; }
    location = /v1/denied { deny all; podgen_voices; }
    location = /v1/keyed-401 {
        auth_request /auth-401;
        podgen_voices;
    }
    location = /v1/keyed-403 {
        auth_request /auth-403;
        podgen_voices;
    }
    location = /v1/keyed-ok {
        auth_request /auth-ok;
        podgen_voices;
    }
    location = /auth-401 { internal; return 401; }
    location = /auth-403 { internal; return 403; }
    location = /auth-ok { internal; return 204; }
    location /v1/admin/ { deny all; }
    location /v1/upstream/ { proxy_pass http://127.0.0.1:1; }
    location = /v1/teapot { return 503; }
    location /v1/proxied/ {
        proxy_pass http://127.0.0.1:$server_port/json-404/;
    }
    location /json-404/ {
        default_type application/json;
        return 404 '{"error":{"message":"the upstream\'s own","code":"x"}}';
    }
    location / { root html; }
EOF
    no_error_log => "[alert]\nleaked (refs",
});

__DATA__

=== 404: an unknown endpoint under /v1/ caught by "location /"
--- request
GET /v1/chat/completions
--- api_error: 404 code=not_found type=invalid_request_error
--- response_headers_like
X-Request-Id: ^[0-9a-f]{32}$

=== 404: an unknown endpoint under /v1/ with no location of its own
--- config
location = /v1/voices { podgen_voices; }
--- request
GET /v1/embeddings
--- api_error: 404 code=not_found type=invalid_request_error

=== 404: outside /v1/ nginx's own page stays
--- request
GET /nothing-here.html
--- error_code: 404
--- response_headers_like
Content-Type: ^text/html
--- response_body_like: <html>

=== 404: a path that only starts like /v1 stays nginx's
--- request
GET /v10/voices
--- error_code: 404
--- response_headers_like
Content-Type: ^text/html

=== 403: deny in a podgen location
--- request
GET /v1/denied
--- api_error: 403 code=forbidden type=invalid_request_error

=== 403: deny in a location of its own under /v1/
--- request
GET /v1/admin/users
--- api_error: 403 code=forbidden type=invalid_request_error

=== 401: auth_request in front says no
--- request
GET /v1/keyed-401
--- api_error: 401 code=invalid_api_key type=invalid_request_error

=== 403: auth_request in front forbids
--- request
GET /v1/keyed-403
--- api_error: 403 code=forbidden type=invalid_request_error

=== 200: auth_request in front lets the request through
--- request
GET /v1/keyed-ok
--- error_code: 200
--- response_json
{"object":"list"}

=== 429: limit_req of the server in front of a podgen location
--- request
GET /v1/voices
--- then
GET /v1/voices
--- api_error: 429 code=rate_limit_exceeded type=requests
--- response_headers_like
X-Request-Id: ^[0-9a-f]{32}$

=== 429: limit_req in front of the speech endpoint (a POST)
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Once.","voice":"alloy","response_format":"wav"}
--- more_headers
Content-Type: application/json
--- then
POST /v1/audio/speech
{"model":"tts-1","input":"Twice.","voice":"alloy","response_format":"wav"}
--- api_error: 429 code=rate_limit_exceeded type=requests

=== 413: a body over client_max_body_size
--- http_config
    limit_req_zone $uri zone=per_uri:1m rate=1r/m;
    client_max_body_size 16;
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Too long a body.","voice":"alloy"}
--- more_headers
Content-Type: application/json
--- api_error: 413 code=request_too_large type=invalid_request_error

=== 502: a proxied location under /v1/ whose upstream is down
--- request
GET /v1/upstream/anything
--- api_error: 502 code=bad_gateway type=server_error

=== 404 of a proxied server under /v1/ passes untouched
--- request
GET /v1/proxied/thing
--- error_code: 404
--- response_json
{"error":{"message":"the upstream's own","code":"x"}}

=== 503 from "return" under /v1/
--- request
GET /v1/teapot
--- api_error: 503 code=server_busy type=server_error
