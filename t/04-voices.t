# GET /v1/voices: the list of voices and their OpenAI aliases; GET
# /v1/models and /v1/models/{id}: OpenAI's list of the models podgen takes.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Test::More;

my @BUILTIN = qw(slt rms awb kal kal16);
my @OPENAI = qw(alloy ash ballad cedar coral echo fable marin onyx nova sage
                shimmer verse);
my %RATE = (slt => 16000, rms => 16000, awb => 16000, kal => 8000,
            kal16 => 16000);

my $CONFIG = <<'EOF';
location = /v1/voices { podgen_voices; }
location = /v1/audio/speech { podgen_speech; }
location /v1/models { podgen_models; }
EOF

# --- the contract, checked in detail ---------------------------------------

{
    my $ng = Podgen::Test::Nginx->new(config => $CONFIG);
    $ng->start;
    my $r = request($ng, 'GET', '/v1/voices');
    is($r->{status}, 200, 'GET /v1/voices: 200');
    like($r->{headers}{'content-type'} // '', qr{^application/json\b},
         'Content-Type application/json');
    my $j = eval { $JSON->decode($r->{body}) };
    ok($j, 'the body is JSON') or diag "$@\n$r->{body}";
    $j ||= {};
    is($j->{object}, 'list', 'object: list');
    my $data = ref $j->{data} eq 'ARRAY' ? $j->{data} : [];
    ok(ref $j->{data} eq 'ARRAY', 'data is an array');

    my (%by_id, %alias_of);
    for my $v (@$data) {
        my $id = ref $v eq 'HASH' ? $v->{id} : undef;
        ok(defined $id && !ref $id && length $id, 'voice has a string id')
            or do { diag explain $v; next };
        ok(!$by_id{$id}++, "voice $id: listed once");
        is($v->{name}, $id, "voice $id: name") if exists $v->{name};
        ok(exists $v->{name}, "voice $id: has a name");
        ok(defined $v->{sample_rate} && $v->{sample_rate} =~ /^\d+$/
           && $v->{sample_rate} >= 8000, "voice $id: sample_rate is a number")
            or diag explain $v->{sample_rate};
        ok(ref $v->{aliases} eq 'ARRAY', "voice $id: aliases is an array");
        ok(JSON::PP::is_bool($v->{builtin}), "voice $id: builtin is a boolean");
        is_deeply($v->{languages}, ['en'],
                  "voice $id: speaks English (a language else is a 400)");
        for my $a (@{ ref $v->{aliases} eq 'ARRAY' ? $v->{aliases} : [] }) {
            ok(!ref $a, "voice $id: alias is a string");
            ok(!$alias_of{$a}, "alias $a belongs to one voice only")
                or diag "$a: $alias_of{$a} and $id";
            $alias_of{$a} = $id;
        }
    }
    my %v = map { $_->{id} => $_ } grep { ref eq 'HASH' && defined $_->{id} } @$data;
    for my $b (@BUILTIN) {
        ok($v{$b}, "built-in voice $b is listed") or next;
        ok($v{$b}{builtin}, "$b: builtin true");
        is($v{$b}{sample_rate}, $RATE{$b}, "$b: sample_rate $RATE{$b}");
    }
    for my $a (@OPENAI) {
        ok($alias_of{$a}, "OpenAI voice $a is an alias") or next;
        ok($v{ $alias_of{$a} }, "alias $a points at a listed voice");
    }
    ok(!grep({ $by_id{$_} } keys %alias_of), 'no alias is also a voice id');

    # every alias listed speaks, with the voice it belongs to
    for my $a (sort keys %alias_of) {
        my $s = request($ng, 'POST', '/v1/audio/speech',
            body => $JSON->encode({ model => 'tts-1', input => 'Hi.',
                                    voice => $a, response_format => 'wav' }),
            headers => { 'Content-Type' => 'application/json' });
        is($s->{status}, 200, "alias $a: speech 200");
    }

    # HEAD
    my $h = request($ng, 'HEAD', '/v1/voices');
    is($h->{status}, 200, 'HEAD /v1/voices: 200');
    is($h->{body}, '', 'HEAD: no body');
    like($h->{headers}{'content-type'} // '', qr{^application/json\b},
         'HEAD: Content-Type');

    $ng->stop;
    my @bad = $ng->check_error_log;
    ok(!@bad, 'error log clean') or diag join "\n", @bad;
}

# --- a configured voice appears in the list ------------------------------

{
    my $ng = Podgen::Test::Nginx->new(
        http_config => 'podgen_voice narrator builtin:rms alias=storyteller,bard;',
        config => $CONFIG);
    $ng->start;
    my $r = request($ng, 'GET', '/v1/voices');
    is($r->{status}, 200, 'with podgen_voice: 200');
    my $j = eval { $JSON->decode($r->{body}) } || {};
    my ($n) = grep { ref eq 'HASH' && ($_->{id} // '') eq 'narrator' }
              @{ $j->{data} || [] };
    ok($n, 'podgen_voice narrator is listed') or diag $r->{body};
    if ($n) {
        is_deeply([ sort @{ $n->{aliases} || [] } ], [qw(bard storyteller)],
                  'narrator: its aliases');
        is($n->{sample_rate}, 16000, 'narrator: sample rate of rms');
    }
    for my $b (@BUILTIN) {
        ok(scalar(grep { ref eq 'HASH' && ($_->{id} // '') eq $b } @{ $j->{data} || [] }),
           "with podgen_voice: $b still listed");
    }
    for my $voice (qw(narrator bard storyteller)) {
        my $s = request($ng, 'POST', '/v1/audio/speech',
            body => $JSON->encode({ model => 'tts-1', input => 'Once upon a time.',
                                    voice => $voice, response_format => 'wav' }),
            headers => { 'Content-Type' => 'application/json' });
        is($s->{status}, 200, "voice $voice: speech 200")
            or diag "$s->{status} $s->{body}";
        like($s->{body}, qr/^RIFF/, "voice $voice: WAV");
    }
    $ng->stop;
    my @bad = $ng->check_error_log;
    ok(!@bad, 'error log clean') or diag join "\n", @bad;
}

run_blocks(defaults => { config => $CONFIG });

__DATA__

=== TEST 1: GET /v1/voices
--- request
GET /v1/voices
--- error_code: 200
--- response_headers_like
Content-Type: ^application/json\b
--- response_json
{"object":"list"}
--- no_error_log
[error]

=== TEST 2: slt is listed first-class
--- request
GET /v1/voices
--- error_code: 200
--- response_body_like: "id"\s*:\s*"slt"
--- no_error_log
[error]

=== TEST 3: POST is not allowed
--- request
POST /v1/voices
{}
--- more_headers
Content-Type: application/json
--- error_code: 405
--- response_headers
Allow: GET, HEAD
--- response_headers_like
Content-Type: ^application/json\b
--- response_json
{"error":{"type":"invalid_request_error","code":"method_not_allowed"}}
--- no_error_log
[error]

=== TEST 4: DELETE is not allowed
--- request
DELETE /v1/voices
--- error_code: 405
--- response_headers
Allow: GET, HEAD
--- response_json
{"error":{"code":"method_not_allowed"}}

=== TEST 5: a query string is ignored
--- request
GET /v1/voices?limit=1&foo=bar
--- error_code: 200
--- response_json
{"object":"list"}

=== TEST 6: voices after a reload
--- request
GET /v1/voices
--- reload
--- error_code: 200
--- response_json
{"object":"list"}

=== TEST 7: GET /v1/models: OpenAI's list of model objects
--- request
GET /v1/models
--- error_code: 200
--- response_headers_like
Content-Type: ^application/json\b
--- response_json
{"object":"list","data":[{"id":"tts-1","object":"model","created":1681940951,"owned_by":"podgen"},{"id":"tts-1-hd","object":"model","created":1699046015,"owned_by":"podgen"},{"id":"gpt-4o-mini-tts","object":"model","created":1742403959,"owned_by":"podgen"},{"id":"flite","object":"model","created":1597363200,"owned_by":"podgen"},{"id":"tts-1-1106","object":"model","created":1699053241,"owned_by":"podgen"},{"id":"tts-1-hd-1106","object":"model","created":1699053533,"owned_by":"podgen"},{"id":"gpt-4o-mini-tts-2025-03-20","object":"model","created":1742428800,"owned_by":"podgen"},{"id":"gpt-4o-mini-tts-2025-12-15","object":"model","created":1765756800,"owned_by":"podgen"}]}
--- no_error_log
[error]

=== TEST 8: GET /v1/models/{id} of a listed model
--- request
GET /v1/models/tts-1-hd
--- error_code: 200
--- response_json
{"id":"tts-1-hd","object":"model","owned_by":"podgen"}

=== TEST 9: GET /v1/models/{id} of a dated snapshot not listed
--- request
GET /v1/models/gpt-4o-mini-tts-2026-07-01
--- error_code: 200
--- response_json
{"id":"gpt-4o-mini-tts-2026-07-01","object":"model","created":1782864000}

=== TEST 10: an unknown model is 404 model_not_found
--- request
GET /v1/models/gpt-9
--- api_error: 404 code=model_not_found param=model
--- response_body_like: 'gpt-9'

=== TEST 11: a model id of odd bytes is 404, without echoing them
--- request
GET /v1/models/%3Cscript%3E%FF
--- api_error: 404 code=model_not_found param=model
--- response_body_unlike: script

=== TEST 12: POST /v1/models is not allowed
--- request
POST /v1/models
{}
--- more_headers
Content-Type: application/json
--- error_code: 405
--- response_headers
Allow: GET, HEAD
--- response_json
{"error":{"code":"method_not_allowed"}}

=== TEST 13: a voice object and a snapshot speak
--- request
POST /v1/audio/speech
{"model":"gpt-4o-mini-tts-2025-12-15","voice":{"id":"marin"},"input":"Hi.","response_format":"wav"}
--- more_headers
Content-Type: application/json
--- error_code: 200
--- response_headers
Content-Type: audio/wav

=== TEST 14: a snapshot with an impossible date is an unknown model
--- request
POST /v1/audio/speech
{"model":"gpt-4o-mini-tts-2025-02-40","voice":"alloy","input":"Hi."}
--- more_headers
Content-Type: application/json
--- api_error: 400 code=invalid_value param=model
