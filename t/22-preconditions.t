# Conditional requests on POST (RFC 9110, 13.1 and 13.2).  A POST answer
# is never a 304: only GET and HEAD may get one.  Preconditions of a POST
# are evaluated before its body is read, against the target resource, not
# against the answer (whose ETag names the audio made, another resource):
# /v1/audio/speech, /v1/scripts and /v1/batch have no representation (GET
# is 405), /v1/podcasts has its list, without an entity tag.  So:
#   If-None-Match: a tag list is true (the POST is performed); "*" is
#     true but on /v1/podcasts, where it is false: 412;
#   If-Match: false (412 precondition_failed, nothing done) but "*" on
#     /v1/podcasts;
#   If-Modified-Since and If-Unmodified-Since: ignored.
# GET keeps its 304 (If-None-Match on an artifact).

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;

my $LOCATIONS = <<'EOF';
    location = /v1/audio/speech { podgen_speech; }
    location /v1/audio/ { podgen_audio; }
    location /v1/podcasts { podgen_podcasts; }
    location = /v1/scripts { podgen_scripts; }
    location = /v1/batch { podgen_batch; }
    location = /metrics { podgen_metrics; }
EOF

# what a block cannot say: the ETag of a cached hit, sent back with POST
{
    my $ng = Podgen::Test::Nginx->new(http_config => 'podgen_store store;',
                                      config => $LOCATIONS);
    $ng->start;
    my %b = (input => 'The tag of this hit names its audio.');
    speech($ng, %b);
    my $hit = speech($ng, %b);
    is(cache_tag($hit), 'HIT-L1', 'a cached hit');
    my $etag = $hit->{headers}{etag} // '';
    like($etag, qr/^"[0-9a-f]{32}"$/, 'with an ETag');

    my $r = speech($ng, %b, headers => { 'If-None-Match' => $etag });
    is($r->{status}, 200, 'POST with If-None-Match of the hit: 200, not 304');
    ok($r->{body} eq $hit->{body}, 'POST with If-None-Match: the audio');

    $r = speech($ng, %b, headers => { 'If-Match' => $etag });
    error_ok($r, 'POST with If-Match of the hit', status => 412,
             code => 'precondition_failed');

    my $url = $hit->{headers}{'x-podgen-audio-url'} // '/none';
    $r = request($ng, 'GET', $url, headers => { 'If-None-Match' => $etag });
    is($r->{status}, 304, 'GET of the artifact with If-None-Match: 304');
    $r = request($ng, 'GET', $url, headers => { 'If-Match' => $etag });
    is($r->{status}, 200, 'GET of the artifact with If-Match: 200');

    # a refused POST made nothing: no synthesis for a new text
    $r = speech($ng, input => 'Never synthesized.',
                headers => { 'If-Match' => '*' });
    error_ok($r, 'POST with If-Match: *', status => 412,
             code => 'precondition_failed');
    is(cache_tag(speech($ng, input => 'Never synthesized.')), 'MISS',
       'the refused POST made nothing');

    $ng->stop;
    my @bad = $ng->check_error_log;
    ok(!@bad, 'error log clean') or diag join "\n", @bad;
}

run_blocks(defaults => {
    http_config => 'podgen_store store;',
    config => $LOCATIONS,
    no_error_log => "still running at exit\nleaked (refs",
});

__DATA__

=== If-None-Match: * on a cold speech POST is performed (it was a 304)
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"A cold star.","voice":"alloy"}
--- more_headers
Content-Type: application/json
If-None-Match: *
--- error_code: 200
--- response_headers
X-Podgen-Cache: MISS
Content-Type: audio/mpeg
--- response_body_like: ^(?:ID3|\xff)

=== If-None-Match: * on POST /v1/scripts is performed
--- request
POST /v1/scripts
{"topic":"Stars","length":"short"}
--- more_headers
Content-Type: application/json
If-None-Match: *
--- error_code: 200
--- response_body_like: "segments"

=== If-None-Match: * on POST /v1/batch is performed
--- request
POST /v1/batch
{"requests":[{"type":"script","body":{"topic":"Comets","length":"short"}}]}
--- more_headers
Content-Type: application/json
If-None-Match: *
--- error_code: 200
--- response_body_like: "object":"batch"

=== If-None-Match with a tag on POST /v1/podcasts is performed
--- request
POST /v1/podcasts
{"segments":[{"speaker":"A","text":"Tagged."}]}
--- more_headers
Content-Type: application/json
If-None-Match: "pod_01a23876df9f7d0dc1f0-1"
--- error_code: 202

=== If-None-Match: * on POST /v1/podcasts: the list exists, 412
--- request
POST /v1/podcasts
{"segments":[{"speaker":"A","text":"Only if there is nothing."}]}
--- more_headers
Content-Type: application/json
If-None-Match: *
--- api_error: 412 code=precondition_failed type=invalid_request_error

=== If-Match on POST /v1/scripts: 412, before the body is read
--- request
POST /v1/scripts
{"topic":"Planets","length":"short"}
--- more_headers
Content-Type: application/json
If-Match: "anything"
--- api_error: 412 code=precondition_failed type=invalid_request_error

=== If-Match on POST /v1/podcasts: 412, no job
--- request
POST /v1/podcasts
{"segments":[{"speaker":"A","text":"Only if it matches."}]}
--- more_headers
Content-Type: application/json
If-Match: "pod_01a23876df9f7d0dc1f0-1"
--- api_error: 412 code=precondition_failed type=invalid_request_error

=== If-Match: * on POST /v1/podcasts: the list exists, performed
--- request
POST /v1/podcasts
{"segments":[{"speaker":"A","text":"Only if the list is there."}]}
--- more_headers
Content-Type: application/json
If-Match: *
--- error_code: 202

=== If-Modified-Since on POST is ignored
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"A cold star.","voice":"alloy"}
--- more_headers
Content-Type: application/json
If-Modified-Since: Mon, 01 Jan 2035 00:00:00 GMT
--- error_code: 200

=== If-Unmodified-Since on POST is ignored
--- request
POST /v1/scripts
{"topic":"Moons","length":"short"}
--- more_headers
Content-Type: application/json
If-Unmodified-Since: Mon, 01 Jan 1990 00:00:00 GMT
--- error_code: 200

=== the request's own checks come first: a wrong Content-Type is 415
--- request
POST /v1/scripts
{"topic":"Planets","length":"short"}
--- more_headers
Content-Type: text/plain
If-Match: "anything"
--- api_error: 415 code=unsupported_media_type
