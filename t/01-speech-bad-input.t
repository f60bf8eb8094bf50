# POST /v1/audio/speech: every way a request can be wrong, including hostile
# bodies.  Every error must be a JSON error object with the right status,
# code and param, Content-Type application/json and an X-Request-Id, and
# must leave the error log free of alerts, crits and sanitizer reports.
#
# Decisions where the contract leaves room (checked leniently below, in the
# imperative part, so that either reasonable behaviour passes but a crash,
# a hang or a non-JSON error does not):
#   - a lone escaped surrogate "\ud800" in a string: 400 invalid_utf8 is
#     preferred, 200 (surrogate dropped or replaced) is accepted;
#   - an escaped NUL "\u0000" or other escaped control characters in the
#     input: 200 (treated as spacing) or 400 with a JSON error;
#   - speed 1e999 / 1e-999 (overflow/underflow): 400, code invalid_value or
#     invalid_json;
#   - duplicate keys: last one wins (200) or 400, no crash.
# A raw (unescaped) NUL or control byte inside a JSON string is not JSON:
# 400 invalid_json, checked strictly.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;

my $CONFIG = <<'EOF';
location = /v1/audio/speech { client_max_body_size 8m; podgen_speech; }
location = /small/v1/audio/speech { client_max_body_size 1k; podgen_speech; }
location = /v1/voices { podgen_voices; }
EOF

# Size of the huge-array cases.  Under the sanitizers (PODGEN_PRELOAD set)
# it is smaller: yajl's tree parser grows arrays with realloc() one element
# at a time, which ASan's allocator makes quadratic (100,000 elements take
# ~30 s there; 1,000,000 with glibc take a fraction of a second).
our $BIG_N = ($ENV{PODGEN_PRELOAD} || $ENV{PODGEN_VALGRIND}) ? 20_000 : 1_000_000;

# used by "--- request eval" sections
sub chunked_body {
    my ($data, $size) = @_;
    $size ||= 7;
    my $out = '';
    while (length $data) {
        my $piece = substr $data, 0, $size, '';
        $out .= sprintf("%x\r\n", length $piece) . $piece . "\r\n";
    }
    return $out . "0\r\n\r\n";
}

my %JSON_CT = ('Content-Type' => 'application/json');

# --- lenient hostile inputs and raw-socket cases ----------------------------

{
    my $ng = Podgen::Test::Nginx->new(config => $CONFIG);
    $ng->start;

    my $lenient = sub {
        my ($name, $body, %o) = @_;
        my $res = request($ng, 'POST', '/v1/audio/speech', body => $body,
                          headers => \%JSON_CT);
        my @ok = @{ $o{statuses} || [200, 400] };
        ok((grep { $res->{status} == $_ } @ok),
           "$name: status is one of @ok") or diag "got $res->{status} "
           . ($res->{error} // '') . " $res->{body}";
        if ($res->{status} == 200) {
            like($res->{headers}{'content-type'} // '', qr{^audio/wav$},
                 "$name: audio/wav");
            like($res->{body}, qr/^RIFF/, "$name: a WAV body");
        } elsif ($res->{status} >= 400) {
            error_ok($res, $name, type => 'invalid_request_error',
                     request_id => 1, code => $o{codes});
        }
        return $res;
    };

    my $res = $lenient->('lone escaped high surrogate',
        '{"model":"tts-1","input":"Hello \ud800 world.","voice":"alloy","response_format":"wav"}',
        codes => ['invalid_utf8']);
    note "lone \\ud800: $res->{status}";
    $lenient->('lone escaped low surrogate',
        '{"model":"tts-1","input":"Hello \udc00 world.","voice":"alloy","response_format":"wav"}',
        codes => ['invalid_utf8']);
    $lenient->('high surrogate followed by a non-surrogate escape',
        '{"model":"tts-1","input":"Hello \ud800\u0041 world.","voice":"alloy","response_format":"wav"}',
        codes => ['invalid_utf8']);
    $lenient->('lone surrogate in an unknown field',
        '{"model":"tts-1","input":"Hello.","voice":"alloy","response_format":"wav","x":"\udfff"}',
        codes => ['invalid_utf8']);
    $lenient->('escaped NUL inside the input',
        '{"model":"tts-1","input":"Hello\u0000world.","voice":"alloy","response_format":"wav"}',
        codes => [qw(invalid_value invalid_utf8 invalid_json empty_input)]);
    $lenient->('input that is only an escaped NUL',
        '{"model":"tts-1","input":"\u0000","voice":"alloy","response_format":"wav"}',
        codes => [qw(empty_input invalid_value invalid_utf8 invalid_json)]);
    $lenient->('escaped control characters in the input',
        '{"model":"tts-1","input":"Hi\u0001\u0007\u001b[31m\u001f there.\b\f","voice":"alloy","response_format":"wav"}',
        codes => [qw(invalid_value invalid_json invalid_utf8)]);
    $lenient->('escaped NUL inside a voice name',
        '{"model":"tts-1","input":"Hi.","voice":"alloy\u0000x","response_format":"wav"}',
        statuses => [400], codes => [qw(invalid_value invalid_json)]);
    $lenient->('speed 1e999 (overflow)',
        '{"model":"tts-1","input":"Hi.","voice":"alloy","response_format":"wav","speed":1e999}',
        statuses => [400], codes => [qw(invalid_value invalid_json)]);
    $lenient->('speed -1e999',
        '{"model":"tts-1","input":"Hi.","voice":"alloy","response_format":"wav","speed":-1e999}',
        statuses => [400], codes => [qw(invalid_value invalid_json)]);
    $lenient->('speed 1e-999 (underflow)',
        '{"model":"tts-1","input":"Hi.","voice":"alloy","response_format":"wav","speed":1e-999}',
        statuses => [400], codes => [qw(invalid_value invalid_json)]);
    $lenient->('speed with 400 digits',
        '{"model":"tts-1","input":"Hi.","voice":"alloy","response_format":"wav","speed":1'
        . ('0' x 400) . '}',
        statuses => [400], codes => [qw(invalid_value invalid_json)]);
    $lenient->('huge integer in an unknown field',
        '{"model":"tts-1","input":"Hi.","voice":"alloy","response_format":"wav","n":123456789012345678901234567890}',
        codes => [qw(invalid_json)]);
    $lenient->('duplicate keys, the last valid',
        '{"model":"tts-1","input":"Hi.","voice":"nobody","voice":"alloy","response_format":"wav"}',
        codes => [qw(invalid_value invalid_json duplicate_key)]);
    $lenient->('duplicate keys, the last invalid',
        '{"model":"tts-1","input":"Hi.","voice":"alloy","voice":"nobody","response_format":"wav"}',
        codes => [qw(invalid_value invalid_json duplicate_key)]);
    $lenient->('duplicate keys with different types',
        '{"model":"tts-1","input":"Hi.","input":5,"input":{"a":[1]},"input":"Hi again.","voice":"alloy","response_format":"wav"}',
        codes => [qw(invalid_type invalid_json duplicate_key)]);

    # No Content-Type at all: the contract says "other than
    # application/json -> 415"; a missing header is accepted as JSON (200)
    # or refused with 415, both are fine.
    {
        my $r = request($ng, 'POST', '/v1/audio/speech',
                        body => speech_body(input => 'Hi.', response_format => 'wav'));
        ok($r->{status} == 200 || $r->{status} == 415,
           'no Content-Type: 200 or 415') or diag "got $r->{status}";
        if ($r->{status} == 415) {
            error_ok($r, 'no Content-Type', type => 'invalid_request_error',
                     request_id => 1, code => ['unsupported_media_type']);
        } else {
            like($r->{body}, qr/^RIFF/, 'no Content-Type: accepted as JSON');
        }
    }

    # pipelining on one keep-alive connection: errors must not break the
    # connection's framing (bodies of rejected requests must be discarded).
    my $bad = '{"model":"tts-1","input":';
    my $good = speech_body(input => 'Hi.', response_format => 'wav');
    my $form = 'a=1&b=2';
    my $raw =
        "POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        . "Content-Length: " . length($bad) . "\r\n\r\n$bad"
        . "POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        . "Content-Length: " . length($form) . "\r\n\r\n$form"
        . "GET /v1/audio/speech HTTP/1.1\r\nHost: x\r\n\r\n"
        . "POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        . "Content-Length: " . length($good) . "\r\nConnection: close\r\n\r\n$good";
    my ($out, $err) = raw_request($ng, $raw, timeout => 30);
    my @r = parse_responses($out, methods => [qw(POST POST GET POST)]);
    is(scalar @r, 4, 'pipelined: four responses') or diag $err // '';
    is($r[0]{status}, 400, 'pipelined: bad JSON is 400');
    like($r[0]{body}, qr/"invalid_json"/, 'pipelined: invalid_json');
    is($r[1]{status}, 415, 'pipelined: form body is 415');
    is($r[2]{status}, 405, 'pipelined: GET is 405');
    is($r[3]{status}, 200, 'pipelined: good request after them is 200');
    like($r[3]{headers}{'content-type'} // '', qr{^audio/wav$}, 'pipelined: audio/wav');
    like($r[3]{body} // '', qr/^RIFF/, 'pipelined: WAV body');
    ok(!$r[3]{incomplete}, 'pipelined: last response complete')
        or diag $r[3]{incomplete};

    # bad request, then a good one, written in small pieces with pauses
    my $pieces = [ map { substr($raw, $_ * 50, 50) } 0 .. int(length($raw) / 50) ];
    ($out) = raw_request($ng, $pieces, pause => 0.005, timeout => 30);
    @r = parse_responses($out, methods => [qw(POST POST GET POST)]);
    is(join(' ', map { $_->{status} } @r), '400 415 405 200',
       'pipelined in 50-byte pieces: statuses');

    # a chunked request body
    my $res2 = request($ng, 'POST', '/v1/audio/speech',
        body => chunked_body($good),
        headers => [ 'Content-Type' => 'application/json',
                     'Transfer-Encoding' => 'chunked' ]);
    is($res2->{status}, 200, 'chunked request body: 200');
    like($res2->{body}, qr/^RIFF/, 'chunked request body: WAV');

    # the client goes away while sending the body: nothing must break
    my ($o3) = raw_request($ng,
        "POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        . "Content-Length: 1000\r\n\r\n{\"model\":\"tts-1\",", half_close => 1,
        timeout => 10);
    $res2 = request($ng, 'POST', '/v1/audio/speech', body => $good,
                    headers => \%JSON_CT);
    is($res2->{status}, 200, 'after a truncated body, a request works');

    $ng->stop;
    my @bad = $ng->check_error_log;
    ok(!@bad, 'error log clean after the lenient and raw cases')
        or diag join "\n", @bad;
    unlike($ng->error_log, qr/\[error\]/,
           'no [error] lines for client errors');
}

run_blocks(defaults => {
    config => $CONFIG,
    more_headers => 'Content-Type: application/json',
    response_headers_like => "Content-Type: ^application/json\\b\n"
                           . "X-Request-Id: ^[0-9a-f]{32}\$",
    response_body_like => '"message"\s*:\s*"[^"]+"',
    no_error_log => '[error]',
});

__DATA__

=== TEST 1: truncated JSON
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hello
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":null,"code":"invalid_json"}}

=== TEST 2: single-quoted pseudo-JSON
--- request
POST /v1/audio/speech
{'model':'tts-1','input':'Hello','voice':'alloy'}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":null,"code":"invalid_json"}}

=== TEST 3: garbage after the object
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hi.","voice":"alloy"} x
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":null,"code":"invalid_json"}}

=== TEST 4: two objects
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hi.","voice":"alloy"}{"model":"tts-1"}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":null,"code":"invalid_json"}}

=== TEST 5: JSON array instead of an object
--- request
POST /v1/audio/speech
[{"model":"tts-1","input":"Hi.","voice":"alloy"}]
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":null,"code":"invalid_json"}}

=== TEST 6: JSON string instead of an object
--- request
POST /v1/audio/speech
"Hello world"
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":null,"code":"invalid_json"}}

=== TEST 7: JSON null instead of an object
--- request
POST /v1/audio/speech
null
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":null,"code":"invalid_json"}}

=== TEST 8: JSON number instead of an object
--- request
POST /v1/audio/speech
42
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":null,"code":"invalid_json"}}

=== TEST 9: empty body
--- request
POST /v1/audio/speech
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":null,"code":"invalid_json"}}

=== TEST 10: whitespace-only body
--- request eval
"POST /v1/audio/speech\n \r\n\t \n"
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":null,"code":"invalid_json"}}

=== TEST 11: nesting 41 deep in an unknown field
--- request eval
"POST /v1/audio/speech\n"
. '{"model":"tts-1","input":"Hi.","voice":"alloy","x":' . ('[' x 40) . (']' x 40) . '}'
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","code":"nesting_too_deep"}}

=== TEST 12: nesting of objects 100 deep
--- request eval
"POST /v1/audio/speech\n" . ('{"a":' x 100) . '1' . ('}' x 100)
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","code":"nesting_too_deep"}}

=== TEST 13: 1 MB of "["
--- request eval
"POST /v1/audio/speech\n" . ('[' x (1024 * 1024))
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","code":"nesting_too_deep"}}

=== TEST 14: nesting 30 deep is fine
--- request eval
"POST /v1/audio/speech\n"
. '{"model":"tts-1","input":"Hi.","voice":"alloy","response_format":"wav","x":'
. ('[' x 29) . (']' x 29) . '}'
--- error_code: 200
--- response_headers_like
Content-Type: ^audio/wav$
X-Request-Id: ^[0-9a-f]{32}$
--- response_body_like: ^RIFF

=== TEST 15: a top-level array of 1,000,000 elements
--- request eval
"POST /v1/audio/speech\n[" . join(',', (0) x $main::BIG_N) . "]"
--- error_code: 400
--- timeout: 60
--- response_json
{"error":{"type":"invalid_request_error","param":null,"code":"invalid_json"}}

=== TEST 16: an unknown field holding 1,000,000 elements is ignored
--- request eval
"POST /v1/audio/speech\n"
. '{"model":"tts-1","input":"Hi.","voice":"alloy","response_format":"wav","x":['
. join(',', (1) x $main::BIG_N) . ']}'
--- timeout: 60
--- error_code: 200
--- response_headers_like
Content-Type: ^audio/wav$
--- response_body_like: ^RIFF

=== TEST 17: invalid UTF-8 byte in the input
--- request eval
qq{POST /v1/audio/speech\n{"model":"tts-1","input":"caf\xff au lait","voice":"alloy"}}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","code":"invalid_utf8"}}

=== TEST 18: overlong UTF-8 (\xc0\xaf) in the input
--- request eval
qq{POST /v1/audio/speech\n{"model":"tts-1","input":"a\xc0\xafb","voice":"alloy"}}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","code":"invalid_utf8"}}

=== TEST 19: truncated UTF-8 sequence at the end of the input
--- request eval
qq{POST /v1/audio/speech\n{"model":"tts-1","input":"price \xe2\x82","voice":"alloy"}}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","code":"invalid_utf8"}}

=== TEST 20: UTF-8 encoded surrogate (CESU-8) in the input
--- request eval
qq{POST /v1/audio/speech\n{"model":"tts-1","input":"x\xed\xa0\x80y","voice":"alloy"}}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","code":"invalid_utf8"}}

=== TEST 21: invalid UTF-8 in the key of an unknown field
--- request eval
qq{POST /v1/audio/speech\n{"model":"tts-1","input":"Hi.","voice":"alloy","k\xfe\xff":1}}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","code":"invalid_utf8"}}

=== TEST 22: invalid UTF-8 outside any string
--- request eval
qq{POST /v1/audio/speech\n{"model":"tts-1","input":"Hi.","voice":"alloy"}\x80}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error"}}

=== TEST 23: code point above U+10FFFF (\xf4\x90\x80\x80)
--- request eval
qq{POST /v1/audio/speech\n{"model":"tts-1","input":"a\xf4\x90\x80\x80","voice":"alloy"}}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","code":"invalid_utf8"}}

=== TEST 24: raw NUL byte inside a string is not JSON
--- request eval
qq{POST /v1/audio/speech\n{"model":"tts-1","input":"Hello\x00world","voice":"alloy"}}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":null,"code":"invalid_json"}}

=== TEST 25: raw control characters inside a string are not JSON
--- request eval
qq{POST /v1/audio/speech\n{"model":"tts-1","input":"Hello\x01\x1b world\ttab","voice":"alloy"}}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":null,"code":"invalid_json"}}

=== TEST 26: valid escaped surrogate pair and raw UTF-8 are fine
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Smile \ud83d\ude00, caf\u00e9, naïve, 東京.","voice":"alloy","response_format":"wav"}
--- error_code: 200
--- response_headers_like
Content-Type: ^audio/wav$
--- response_body_like: ^RIFF

=== TEST 27: missing model
--- request
POST /v1/audio/speech
{"input":"Hello.","voice":"alloy"}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"model","code":"missing_required_parameter"}}

=== TEST 28: missing input
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy"}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"input","code":"missing_required_parameter"}}

=== TEST 29: missing voice
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hello."}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"voice","code":"missing_required_parameter"}}

=== TEST 30: empty object
--- request
POST /v1/audio/speech
{}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","code":"missing_required_parameter"}}

=== TEST 31: input is a number
--- request
POST /v1/audio/speech
{"model":"tts-1","input":5,"voice":"alloy"}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"input","code":"invalid_type"}}

=== TEST 32: input is an object
--- request
POST /v1/audio/speech
{"model":"tts-1","input":{"text":"Hello."},"voice":"alloy"}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"input","code":"invalid_type"}}

=== TEST 33: input is null
--- request
POST /v1/audio/speech
{"model":"tts-1","input":null,"voice":"alloy"}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"input","code":"invalid_type"}}

=== TEST 34: voice is an array
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hello.","voice":[]}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"voice","code":"invalid_type"}}

=== TEST 35: speed is a word
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hello.","voice":"alloy","speed":"fast"}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"speed","code":"invalid_type"}}

=== TEST 36: speed is a numeric string
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hello.","voice":"alloy","speed":"1.0"}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"speed","code":"invalid_type"}}

=== TEST 37: speed is the string "NaN"
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hello.","voice":"alloy","speed":"NaN"}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"speed","code":"invalid_type"}}

=== TEST 38: bare NaN is not JSON
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hello.","voice":"alloy","speed":NaN}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":null,"code":"invalid_json"}}

=== TEST 39: bare Infinity is not JSON
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hello.","voice":"alloy","speed":-Infinity}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":null,"code":"invalid_json"}}

=== TEST 40: model is null
--- request
POST /v1/audio/speech
{"model":null,"input":"Hello.","voice":"alloy"}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"model","code":"invalid_type"}}

=== TEST 41: response_format is a number
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hello.","voice":"alloy","response_format":5}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"response_format","code":"invalid_type"}}

=== TEST 42: instructions is a number
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hello.","voice":"alloy","instructions":5}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"instructions","code":"invalid_type"}}

=== TEST 43: stream_format is a boolean
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hello.","voice":"alloy","stream_format":true}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"stream_format","code":"invalid_type"}}

=== TEST 44: empty input
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"","voice":"alloy"}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"input","code":"empty_input"}}

=== TEST 45: whitespace-only input
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"  \n\t \r\n  ","voice":"alloy"}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"input","code":"empty_input"}}

=== TEST 46: input of 4097 characters (default limit 4096)
--- request eval
"POST /v1/audio/speech\n" . '{"model":"tts-1","voice":"alloy","input":"' . ('abcd ' x 819) . 'ab"}'
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"input","code":"string_above_max_length"}}

=== TEST 47: unknown voice
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hello.","voice":"bob"}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"voice","code":"invalid_value"}}

=== TEST 48: empty voice
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hello.","voice":""}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"voice","code":"invalid_value"}}

=== TEST 49: unknown model
--- request
POST /v1/audio/speech
{"model":"tts-2","input":"Hello.","voice":"alloy"}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"model","code":"invalid_value"}}

=== TEST 50: unknown response_format
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hello.","voice":"alloy","response_format":"ogg"}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"response_format","code":"invalid_value"}}

=== TEST 51: m4a is for episodes, not speech (aac is, as ADTS: t/02)
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hello.","voice":"alloy","response_format":"m4a"}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"response_format","code":"invalid_value"}}

=== TEST 52: speed below 0.25
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hello.","voice":"alloy","speed":0.1}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"speed","code":"invalid_value"}}

=== TEST 53: speed above 4.0
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hello.","voice":"alloy","speed":4.01}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"speed","code":"invalid_value"}}

=== TEST 54: speed 0
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hello.","voice":"alloy","speed":0}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"speed","code":"invalid_value"}}

=== TEST 55: negative speed
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hello.","voice":"alloy","speed":-1}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"speed","code":"invalid_value"}}

=== TEST 56: speed 0.25 (lower bound) is fine
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hi.","voice":"alloy","speed":0.25,"response_format":"wav"}
--- error_code: 200
--- response_headers_like
Content-Type: ^audio/wav$
--- response_body_like: ^RIFF

=== TEST 57: speed 4 (upper bound, as an integer) is fine
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hi.","voice":"alloy","speed":4,"response_format":"wav"}
--- error_code: 200
--- response_headers_like
Content-Type: ^audio/wav$
--- response_body_like: ^RIFF

=== TEST 58: bad stream_format
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hello.","voice":"alloy","stream_format":"websocket"}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"stream_format","code":"invalid_value"}}

=== TEST 59: GET is not allowed
--- request
GET /v1/audio/speech
--- more_headers
--- error_code: 405
--- response_headers
Allow: POST
--- response_json
{"error":{"type":"invalid_request_error","code":"method_not_allowed"}}

=== TEST 60: PUT is not allowed
--- request
PUT /v1/audio/speech
{"model":"tts-1","input":"Hello.","voice":"alloy"}
--- error_code: 405
--- response_headers
Allow: POST
--- response_json
{"error":{"type":"invalid_request_error","code":"method_not_allowed"}}

=== TEST 61: DELETE is not allowed
--- request
DELETE /v1/audio/speech
--- more_headers
--- error_code: 405
--- response_headers
Allow: POST
--- response_json
{"error":{"type":"invalid_request_error","code":"method_not_allowed"}}

=== TEST 62: text/plain body
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hello.","voice":"alloy"}
--- more_headers
Content-Type: text/plain
--- error_code: 415
--- response_json
{"error":{"type":"invalid_request_error","code":"unsupported_media_type"}}

=== TEST 63: a form body
--- request
POST /v1/audio/speech
model=tts-1&input=Hello&voice=alloy
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 415
--- response_json
{"error":{"type":"invalid_request_error","code":"unsupported_media_type"}}

=== TEST 64: application/jsonx is not application/json
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hello.","voice":"alloy"}
--- more_headers
Content-Type: application/jsonx
--- error_code: 415
--- response_json
{"error":{"type":"invalid_request_error","code":"unsupported_media_type"}}

=== TEST 65: application/json with a charset is fine
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hi.","voice":"alloy","response_format":"wav"}
--- more_headers
Content-Type: application/json; charset=utf-8
--- error_code: 200
--- response_headers_like
Content-Type: ^audio/wav$
X-Request-Id: ^[0-9a-f]{32}$
--- response_body_like: ^RIFF

=== TEST 66: body larger than client_max_body_size
--- request eval
"POST /small/v1/audio/speech\n" . '{"model":"tts-1","voice":"alloy","input":"' . ('x' x 2000) . '"}'
--- error_code: 413
--- no_error_log
[alert]
--- response_json
{"error":{"type":"invalid_request_error","code":"request_too_large"}}

=== TEST 67: chunked body larger than client_max_body_size
--- request eval
"POST /small/v1/audio/speech\n" . main::chunked_body('{"model":"tts-1","voice":"alloy","input":"' . ('x' x 2000) . '"}', 500)
--- more_headers
Content-Type: application/json
Transfer-Encoding: chunked
--- error_code: 413
--- no_error_log
[alert]
--- response_json
{"error":{"type":"invalid_request_error","code":"request_too_large"}}

=== TEST 68: a sane X-Request-Id is echoed on errors
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hello.","voice":"bob"}
--- more_headers
Content-Type: application/json
X-Request-Id: test-req-42.A_b
--- error_code: 400
--- response_headers
X-Request-Id: test-req-42.A_b
--- response_headers_like
Content-Type: ^application/json\b
--- response_json
{"error":{"param":"voice","code":"invalid_value"}}

=== TEST 69: an insane X-Request-Id is replaced
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hello.","voice":"bob"}
--- more_headers eval
"Content-Type: application/json\nX-Request-Id: " . ('<script>"' x 40)
--- error_code: 400
--- response_headers_like
Content-Type: ^application/json\b
X-Request-Id: ^[0-9a-f]{32}$
--- response_json
{"error":{"param":"voice","code":"invalid_value"}}

=== TEST 70: unknown extra fields are ignored
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hi.","voice":"alloy","response_format":"wav","foo":1,"bar":{"x":[1,2,{"y":null}]},"baz":"qux","instructions":"Speak calmly."}
--- error_code: 200
--- response_headers_like
Content-Type: ^audio/wav$
X-Request-Id: ^[0-9a-f]{32}$
X-Podgen-Cache: ^(?:MISS|HIT-L1)$
--- response_body_like: ^RIFF

=== TEST 71: a chunked request body is read
--- request eval
"POST /v1/audio/speech\n" . main::chunked_body('{"model":"tts-1","input":"Hi.","voice":"alloy","response_format":"wav"}', 5)
--- more_headers
Content-Type: application/json
Transfer-Encoding: chunked
--- error_code: 200
--- response_headers_like
Content-Type: ^audio/wav$
--- response_body_like: ^RIFF

=== TEST 72: input over a small podgen_max_input
--- http_config
podgen_max_input 10;
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hello world","voice":"alloy"}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"input","code":"string_above_max_length"}}

=== TEST 73: the limit counts characters, not bytes (10 chars, 13 bytes)
--- http_config
podgen_max_input 10;
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"ça va déjà","voice":"alloy","response_format":"wav"}
--- error_code: 200
--- response_headers_like
Content-Type: ^audio/wav$
--- response_body_like: ^RIFF

=== TEST 74: the limit applies after trimming
--- http_config
podgen_max_input 10;
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"   Hi there.  \n ","voice":"alloy","response_format":"wav"}
--- error_code: 200
--- response_headers_like
Content-Type: ^audio/wav$
--- response_body_like: ^RIFF

=== TEST 75: 11 multibyte characters are over a limit of 10
--- http_config
podgen_max_input 10;
--- request eval
"POST /v1/audio/speech\n" . '{"model":"tts-1","input":"' . ("\xc3\xa9" x 11) . '","voice":"alloy"}'
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"input","code":"string_above_max_length"}}

=== TEST 76: a language no voice speaks is a 400 unsupported_language
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Guten Tag.","voice":"alloy","language":"de"}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"language","code":"unsupported_language"}}

=== TEST 77: English in any region and case is spoken
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Good day.","voice":"alloy","language":"EN-gb","response_format":"wav"}
--- error_code: 200
--- response_headers_like
Content-Type: ^audio/wav$
--- response_body_like: ^RIFF

=== TEST 78: a podcast in a language no voice speaks is refused at once
--- http_config
podgen_store store;
--- config
location /v1/podcasts { podgen_podcasts; }
--- request
POST /v1/podcasts
{"topic":"Brot","language":"de"}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"language","code":"unsupported_language"}}

=== TEST 79: and an edited script's too
--- http_config
podgen_store store;
--- config
location /v1/podcasts { podgen_podcasts; }
--- request
POST /v1/podcasts
{"language":"pt-BR","segments":[{"speaker":"A","text":"Bom dia."}]}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"language","code":"unsupported_language"}}
