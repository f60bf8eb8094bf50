# CORS (podgen_cors, ngx_http_podgen_cors.c): a browser's preflight
# OPTIONS is answered 204 with the methods and headers a page may use,
# before any API key; every answer where podgen_cors is on, errors
# included, says which origin may read it and which of podgen's headers;
# a list of origins echoes the allowed one with "Vary: Origin"; no
# credentials, ever; "off" and the merge from server level.  Then a real
# browser: a page on another origin calls the API in headless Chromium.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Test::More;
use File::Temp qw(tempdir);

# a real browser: a page of http://localhost:PORT calls the API on
# http://127.0.0.1:PORT, another origin
SKIP: {
    my $js = repo_root() . '/t/js-ui';
    my $chromium = $ENV{PODGEN_CHROMIUM} || '/usr/bin/chromium';
    my $node = which('node');
    skip 'node, chromium or playwright-core (t/17-ui.t installs it) missing',
         1
        unless $node && -x $chromium
               && -f "$js/node_modules/playwright-core/package.json";
    my $port = Podgen::Test::free_port();
    my $ng = Podgen::Test::Nginx->new(port => $port, config => <<"EOF");
    location = /v1/keyed {
        podgen_cors http://localhost:$port;
        podgen_api_key sk-test-key-123;
        podgen_speech;
    }
    location /v1/models { podgen_cors *; podgen_models; }
    location = /v1/voices { podgen_voices; }
    location = /page {
        default_type text/html;
        return 200 "<!doctype html><title>another origin</title>";
    }
EOF
    $ng->start;
    my $out = `cd '$js' && '$node' cors.mjs http://localhost:$port/page http://127.0.0.1:$port 2>&1`;
    my ($line) = grep { /^\{/ } split /\n/, $out;
    my $r = ($line && eval { $JSON->decode($line) }) || {};
    ok($line, 'the browser script ran') or diag $out;
    is($r->{origin}, "http://localhost:$port", 'the page is of its own origin');
    is($r->{speech}{status}, 200, 'speech with a key from the page: 200')
        or diag explain $r->{speech};
    cmp_ok($r->{speech}{bytes} // 0, '>', 10000, 'the page reads the audio');
    like($r->{speech}{request_id} // '', qr/^[0-9a-f]{32}$/,
         'the page reads X-Request-Id');
    is($r->{speech}{cache}, 'MISS', 'the page reads X-Podgen-Cache');
    like($r->{speech}{audio_url} // '', qr{^/v1/audio/[0-9a-f]+\.wav$},
         'the page reads X-Podgen-Audio-Url');
    like($r->{speech}{server_timing} // '', qr/first-audio;dur=/,
         'the page reads Server-Timing');
    my $log = Podgen::Test::_slurp($ng->prefix . '/logs/access.log') // '';
    like($log, qr{"OPTIONS /v1/keyed HTTP/1\.1" 204 },
         'the browser sent a preflight for the keyed POST, answered 204');
    is($r->{error}{status}, 400, 'an error reply: the page reads its status');
    is($r->{error}{body}{error}{code}, 'invalid_value',
       'an error reply: the page reads the JSON error');
    is($r->{models}{body}{object}, 'list', 'GET /v1/models from the page');
    like($r->{closed}{error} // '', qr/TypeError|Failed to fetch/,
         'a location without podgen_cors stays closed to the page');
    $ng->stop;
    my @bad = $ng->check_error_log;
    ok(!@bad, 'browser: error log clean') or diag join "\n", @bad;
}

run_blocks(defaults => {
    http_config => <<'EOF',
    podgen_cors *;
EOF
    config => <<'EOF',
    location = /v1/audio/speech { podgen_speech; }
    location = /v1/voices { podgen_voices; }
    location /v1/models { podgen_models; }
    location = /v1/keyed {
        podgen_api_key sk-test-key-123;
        podgen_speech;
    }
    location = /v1/listed {
        podgen_cors https://app.example http://localhost:3000;
        podgen_voices;
    }
    location = /v1/closed { podgen_cors off; podgen_voices; }
EOF
    no_error_log => "[alert]\nleaked (refs",
});

__DATA__

=== preflight of the speech endpoint: 204, its methods and headers
--- request
OPTIONS /v1/audio/speech
--- more_headers
Origin: https://elsewhere.example
Access-Control-Request-Method: POST
Access-Control-Request-Headers: authorization, content-type
--- error_code: 204
--- response_headers
Access-Control-Allow-Origin: *
Access-Control-Allow-Methods: POST, OPTIONS
Access-Control-Max-Age: 3600
--- response_headers_like
Access-Control-Allow-Headers: ^Authorization, Content-Type\b.*authorization, content-type$
X-Request-Id: ^[0-9a-f]{32}$
!Access-Control-Allow-Credentials
!Vary

=== preflight of a location with a key needs no key
--- request
OPTIONS /v1/keyed
--- more_headers
Origin: https://elsewhere.example
Access-Control-Request-Method: POST
--- error_code: 204
--- response_headers
Access-Control-Allow-Origin: *
Access-Control-Allow-Headers: Authorization, Content-Type, Range, If-None-Match, If-Match, X-Request-Id

=== preflight asking for the SDK's own headers gets them
--- request
OPTIONS /v1/models
--- more_headers
Origin: https://elsewhere.example
Access-Control-Request-Method: GET
Access-Control-Request-Headers: x-stainless-os, x-stainless-lang
--- error_code: 204
--- response_headers
Access-Control-Allow-Methods: GET, HEAD, OPTIONS
--- response_headers_like
Access-Control-Allow-Headers: x-stainless-os, x-stainless-lang$

=== preflight asking for odd header bytes gets the fixed list only
--- request
OPTIONS /v1/models
--- more_headers
Origin: https://elsewhere.example
Access-Control-Request-Method: GET
Access-Control-Request-Headers: x-a;b=c
--- error_code: 204
--- response_headers
Access-Control-Allow-Headers: Authorization, Content-Type, Range, If-None-Match, If-Match, X-Request-Id

=== a speech reply from another origin: readable, with podgen's headers
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hello from a page.","voice":"alloy","response_format":"wav"}
--- more_headers
Content-Type: application/json
Origin: https://elsewhere.example
--- error_code: 200
--- response_headers
Access-Control-Allow-Origin: *
Timing-Allow-Origin: *
--- response_headers_like
Access-Control-Expose-Headers: \bX-Request-Id\b.*\bX-Podgen-Cache\b.*\bX-Podgen-Audio-Url\b.*\bServer-Timing\b
!Access-Control-Allow-Credentials

=== an error reply is readable too
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hi.","voice":"bob"}
--- more_headers
Content-Type: application/json
Origin: https://elsewhere.example
--- error_code: 400
--- response_headers
Access-Control-Allow-Origin: *
--- response_json
{"error":{"param":"voice","code":"invalid_value"}}

=== a 401 without the key is readable (the page learns why)
--- request
POST /v1/keyed
{"model":"tts-1","input":"Hi.","voice":"alloy"}
--- more_headers
Content-Type: application/json
Origin: https://elsewhere.example
--- error_code: 401
--- response_headers
Access-Control-Allow-Origin: *
--- response_json
{"error":{"code":"invalid_api_key"}}

=== the key works from a page
--- request
POST /v1/keyed
{"model":"tts-1","input":"Hi.","voice":"alloy","response_format":"wav"}
--- more_headers
Content-Type: application/json
Origin: https://elsewhere.example
Authorization: Bearer sk-test-key-123
--- error_code: 200
--- response_headers
Access-Control-Allow-Origin: *

=== a listed origin is echoed, with Vary: Origin
--- request
GET /v1/listed
--- more_headers
Origin: http://localhost:3000
--- error_code: 200
--- response_headers
Access-Control-Allow-Origin: http://localhost:3000
Vary: Origin

=== an origin not listed is not allowed, and Vary still says why
--- request
GET /v1/listed
--- more_headers
Origin: https://evil.example
--- error_code: 200
--- response_headers
Vary: Origin
--- response_headers_like
!Access-Control-Allow-Origin
!Access-Control-Expose-Headers

=== preflight from an origin not listed: no Allow-Origin
--- request
OPTIONS /v1/listed
--- more_headers
Origin: https://evil.example
Access-Control-Request-Method: GET
--- error_code: 204
--- response_headers_like
!Access-Control-Allow-Origin

=== podgen_cors off in a location: OPTIONS is 405 as without CORS
--- request
OPTIONS /v1/closed
--- more_headers
Origin: https://elsewhere.example
Access-Control-Request-Method: GET
--- error_code: 405
--- response_headers_like
!Access-Control-Allow-Origin
--- response_json
{"error":{"code":"method_not_allowed"}}

=== without podgen_cors nothing changes
--- http_config
--- request
GET /v1/voices
--- more_headers
Origin: https://elsewhere.example
--- error_code: 200
--- response_headers_like
!Access-Control-Allow-Origin
!Vary

=== a server-level podgen_cors reaches its locations
--- http_config
--- config
podgen_cors https://app.example;
location = /v1/voices { podgen_voices; }
--- request
GET /v1/voices
--- more_headers
Origin: https://app.example
--- error_code: 200
--- response_headers
Access-Control-Allow-Origin: https://app.example

=== an origin with a path is a configuration error
--- http_config
    podgen_cors https://app.example/;
--- must_die
--- error_log
invalid origin "https://app.example/" of podgen_cors

=== "*" with origins is a configuration error
--- http_config
    podgen_cors * https://app.example;
--- must_die
--- error_log
"\*" of podgen_cors goes alone
