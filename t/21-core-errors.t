# What nginx itself answers in a podgen location — or, in a server with
# podgen locations, before it has chosen a location — is an OpenAI-style
# JSON error with an honest type and code (ngx_http_podgen_error_filter.c):
# 416 from the range filter on a cached hit and on an episode, 412 from the
# not_modified filter, 429 and 503 from limit_req, 413, 414, 400 for
# headers too large (nginx's 494), 404 of an internal location, and every
# other status of the filter's table through "return"; before the blocks,
# what a block cannot send: a bad request line, HTTP/2.0 over HTTP/1 (505)
# and an unknown Transfer-Encoding (501).  A location without podgen keeps
# nginx's own page.  408 (a slow body) is in t/19.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;

our $BIG_URI = '/v1/voices?' . ('a' x 2048);
our $BIG_HEADER = 'X-Big: ' . ('b' x 2048);
our $BIG_BODY = '{"topic":"' . ('c' x 4096) . '"}';

{
    my $ng = Podgen::Test::Nginx->new(
        config => 'location = /v1/voices { podgen_voices; }');
    $ng->start;
    for my $c (["GARBAGE\r\n\r\n", 400, 'invalid_request',
                'invalid_request_error', 'a bad request line'],
               ["GET /v1/voices HTTP/2.0\r\nHost: x\r\n\r\n", 505,
                'http_version_not_supported', 'server_error',
                'HTTP/2.0 over HTTP/1'],
               ["POST /v1/voices HTTP/1.1\r\nHost: x\r\n"
                . "Transfer-Encoding: gzip\r\n\r\n", 501,
                'not_implemented', 'server_error',
                'an unknown Transfer-Encoding'])
    {
        my ($raw, $status, $code, $type, $name) = @$c;
        my ($r) = parse_responses(scalar raw_request($ng, $raw));
        error_ok($r // { status => 0, headers => {}, body => '' }, $name,
                 status => $status, code => $code, type => $type,
                 request_id => 1);
    }
    $ng->stop;
    my @bad = $ng->check_error_log;
    ok(!@bad, 'raw requests: error log clean') or diag join "\n", @bad;
}

run_blocks(defaults => {
    http_config => <<'EOF',
    podgen_store store;
    client_max_body_size 1k;
    large_client_header_buffers 2 1k;
    limit_req_zone $uri zone=per_uri:1m rate=1r/m;
EOF
    config => <<'EOF',
    location = /v1/audio/speech { podgen_speech; }
    location /v1/audio/ { podgen_audio; }
    location /v1/podcasts { podgen_podcasts; }
    location = /v1/scripts { podgen_scripts; }
    location = /v1/voices { podgen_voices; }
    location = /v1/limited/429 {
        limit_req zone=per_uri;
        limit_req_status 429;
        podgen_voices;
    }
    location = /v1/limited/503 { limit_req zone=per_uri; podgen_voices; }
    location = /v1/internal { internal; podgen_voices; }
    location = /v1/r405 { podgen_voices; return 405; }
    location = /v1/r411 { podgen_voices; return 411; }
    location = /v1/r418 { podgen_voices; return 418; }
    location = /v1/r431 { podgen_voices; return 431; }
    location = /v1/r500 { podgen_voices; return 500; }
    location = /v1/r501 { podgen_voices; return 501; }
    location = /v1/r502 { podgen_voices; return 502; }
    location = /v1/r504 { podgen_voices; return 504; }
    location = /v1/r507 { podgen_voices; return 507; }
    location = /v1/r599 { podgen_voices; return 599; }
    location = /plain { return 404; }
EOF
    no_error_log => "still running at exit\nleaked (refs",
});

__DATA__

=== 416: a range past the end of a cached speech hit
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"A range too far.","voice":"alloy"}
--- more_headers
Content-Type: application/json
Range: bytes=99999999-
--- then
POST /v1/audio/speech
{"model":"tts-1","input":"A range too far.","voice":"alloy"}
--- api_error: 416 code=range_not_satisfiable type=invalid_request_error
--- response_headers_like
Content-Range: ^bytes \*/\d+$
X-Request-Id: ^[0-9a-f]{32}$

=== 416: a range past the end of an episode
--- request
POST /v1/podcasts
{"format":"mp3","segments":[{"speaker":"A","text":"A short episode."}]}
--- more_headers
Content-Type: application/json
Range: bytes=99999999-
--- request_code: 202
--- wait_status: completed
--- then
GET /v1/podcasts/{id}/audio
--- api_error: 416 code=range_not_satisfiable type=invalid_request_error
--- response_headers_like
Content-Range: ^bytes \*/\d+$
X-Request-Id: ^[0-9a-f]{32}$

=== 412: If-Unmodified-Since before the episode was made
--- request
POST /v1/podcasts
{"format":"mp3","segments":[{"speaker":"A","text":"An older episode."}]}
--- more_headers
Content-Type: application/json
If-Unmodified-Since: Mon, 01 Jan 1990 00:00:00 GMT
--- request_code: 202
--- wait_status: completed
--- then
GET /v1/podcasts/{id}/audio
--- api_error: 412 code=precondition_failed type=invalid_request_error

=== 429: limit_req with limit_req_status 429
--- request
GET /v1/limited/429
--- then
GET /v1/limited/429
--- api_error: 429 code=rate_limit_exceeded type=requests
--- response_headers_like
X-Request-Id: ^[0-9a-f]{32}$

=== 503: limit_req with its default status
--- request
GET /v1/limited/503
--- then
GET /v1/limited/503
--- api_error: 503 code=server_busy type=server_error

=== 413: a body over client_max_body_size
--- request eval
"POST /v1/scripts\n$main::BIG_BODY"
--- more_headers
Content-Type: application/json
--- api_error: 413 code=request_too_large type=invalid_request_error

=== 414: a request line over large_client_header_buffers (before a location)
--- request eval
"GET $main::BIG_URI"
--- api_error: 414 code=uri_too_long type=invalid_request_error
--- response_headers_like
X-Request-Id: ^[0-9a-f]{32}$

=== 400: a header over large_client_header_buffers (nginx's 494)
--- request
GET /v1/voices
--- more_headers eval
$main::BIG_HEADER
--- api_error: 400 code=invalid_request type=invalid_request_error

=== 404: an internal location asked from outside
--- request
GET /v1/internal
--- api_error: 404 code=not_found type=invalid_request_error

=== 405 from nginx
--- request
GET /v1/r405
--- api_error: 405 code=method_not_allowed type=invalid_request_error

=== 411
--- request
GET /v1/r411
--- api_error: 411 code=length_required type=invalid_request_error

=== 431
--- request
GET /v1/r431
--- api_error: 431 code=request_header_too_large type=invalid_request_error

=== a 4xx without a name of its own
--- request
GET /v1/r418
--- api_error: 418 code=invalid_request type=invalid_request_error

=== 500
--- request
GET /v1/r500
--- api_error: 500 code=server_error type=server_error

=== 501
--- request
GET /v1/r501
--- api_error: 501 code=not_implemented type=server_error

=== 502
--- request
GET /v1/r502
--- api_error: 502 code=bad_gateway type=server_error

=== 504
--- request
GET /v1/r504
--- api_error: 504 code=gateway_timeout type=server_error

=== 507
--- request
GET /v1/r507
--- api_error: 507 code=insufficient_storage type=server_error

=== a 5xx without a name of its own
--- request
GET /v1/r599
--- api_error: 599 code=server_error type=server_error

=== a location without podgen keeps nginx's page
--- request
GET /plain
--- error_code: 404
--- response_headers_like
Content-Type: ^text/html
--- response_body_like: <html>
