# Configuration: directives with bad arguments make `nginx -t` fail with a
# message naming the problem; minimal and custom configurations work.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Test::More;

run_blocks();

__DATA__

=== TEST 1: podgen_max_input 0
--- http_config
podgen_max_input 0;
--- config
location = /v1/audio/speech { podgen_speech; }
--- must_die
--- error_log
podgen_max_input|must be between

=== TEST 2: podgen_max_input abc
--- http_config
podgen_max_input abc;
--- config
location = /v1/audio/speech { podgen_speech; }
--- must_die
--- error_log
podgen_max_input

=== TEST 3: podgen_max_input -5
--- http_config
podgen_max_input -5;
--- config
location = /v1/audio/speech { podgen_speech; }
--- must_die
--- error_log
podgen_max_input

=== TEST 4: podgen_max_input without an argument
--- http_config
podgen_max_input;
--- config
location = /v1/audio/speech { podgen_speech; }
--- must_die
--- error_log
podgen_max_input

=== TEST 5: podgen_voice with a missing file
--- http_config
podgen_voice ghost /nonexistent/dir/ghost.flitevox;
--- config
location = /v1/audio/speech { podgen_speech; }
--- must_die
--- error_log
podgen_voice|ghost\.flitevox

=== TEST 6: podgen_voice with a file that is not a voice
--- http_config eval
"podgen_voice junk " . Podgen::Test::repo_root() . "/t/06-config.t;"
--- config
location = /v1/audio/speech { podgen_speech; }
--- must_die
--- error_log
podgen_voice|06-config\.t

=== TEST 7: podgen_voice with an unknown builtin
--- http_config
podgen_voice robot builtin:hal9000;
--- config
location = /v1/audio/speech { podgen_speech; }
--- must_die
--- error_log
podgen_voice|hal9000

=== TEST 8: podgen_voice with a bad alias list
--- http_config
podgen_voice robot builtin:slt aliases;
--- config
location = /v1/audio/speech { podgen_speech; }
--- must_die
--- error_log
podgen_voice|aliases

=== TEST 9: podgen_voice with one argument
--- http_config
podgen_voice robot;
--- config
location = /v1/audio/speech { podgen_speech; }
--- must_die
--- error_log
podgen_voice

=== TEST 10: an unknown thread pool
--- http_config
podgen_thread_pool nosuchpool;
--- config
location = /v1/audio/speech { podgen_speech; }
--- must_die
--- error_log
nosuchpool

=== TEST 11: podgen_speech is not allowed in http{}
--- http_config
podgen_speech;
--- must_die
--- error_log
podgen_speech

=== TEST 12: podgen_speech takes no argument
--- config
location = /v1/audio/speech { podgen_speech on; }
--- must_die
--- error_log
podgen_speech

=== TEST 13: podgen_max_input is not allowed in a location
--- config
location = /v1/audio/speech { podgen_max_input 100; podgen_speech; }
--- must_die
--- error_log
podgen_max_input

=== TEST 14: only the location directives: speech works
--- config
location = /v1/audio/speech { podgen_speech; }
location = /v1/voices { podgen_voices; }
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Hello.","voice":"alloy","response_format":"wav"}
--- more_headers
Content-Type: application/json
--- error_code: 200
--- response_headers
Content-Type: audio/wav
--- response_body_like: ^RIFF
--- no_error_log
[error]
[warn]

=== TEST 15: only the location directives: voices work
--- config
location = /v1/audio/speech { podgen_speech; }
location = /v1/voices { podgen_voices; }
--- request
GET /v1/voices
--- error_code: 200
--- response_json
{"object":"list"}

=== TEST 16: a named thread pool and a larger podgen_max_input
--- main_config
thread_pool tts threads=2;
--- http_config
podgen_thread_pool tts;
podgen_max_input 10000;
--- config
location = /v1/audio/speech { podgen_speech; }
--- request eval
"POST /v1/audio/speech\n" . '{"model":"tts-1","voice":"slt","response_format":"wav","input":"'
. ('Hello there. ' x 350) . '"}'
--- more_headers
Content-Type: application/json
--- timeout: 120
--- error_code: 200
--- response_body_like: ^RIFF
--- no_error_log
[error]

=== TEST 17: a podgen_voice from a builtin with aliases
--- http_config
podgen_voice narrator builtin:awb alias=storyteller,bard;
--- config
location = /v1/audio/speech { podgen_speech; }
--- request
POST /v1/audio/speech
{"model":"tts-1","input":"Once upon a time.","voice":"bard","response_format":"wav"}
--- more_headers
Content-Type: application/json
--- error_code: 200
--- response_body_like: ^RIFF

=== TEST 18: the module in a server without any podgen location
--- config
location / { return 200 "plain"; }
--- request
GET /
--- error_code: 200
--- response_body: plain
--- response_headers
!X-Podgen-Cache

=== TEST 19: speech in two locations of the same server
--- config
location = /v1/audio/speech { podgen_speech; }
location = /api/v1/audio/speech { podgen_speech; }
--- request
POST /api/v1/audio/speech
{"model":"tts-1","input":"Hi.","voice":"nova","response_format":"wav"}
--- more_headers
Content-Type: application/json
--- error_code: 200
--- response_body_like: ^RIFF

=== TEST 20: podgen_redis ttl=0
--- http_config
podgen_redis 127.0.0.1:6379 ttl=0;
--- config
location = /v1/audio/speech { podgen_speech; }
--- must_die
--- error_log
podgen_redis: invalid parameter "ttl=0"

=== TEST 21: podgen_redis ttl with a bad unit
--- http_config
podgen_redis 127.0.0.1:6379 ttl=3parsecs;
--- config
location = /v1/audio/speech { podgen_speech; }
--- must_die
--- error_log
podgen_redis: invalid parameter "ttl=3parsecs"

=== TEST 22: podgen_redis timeout=0
--- http_config
podgen_redis 127.0.0.1:6379 timeout=0;
--- config
location = /v1/audio/speech { podgen_speech; }
--- must_die
--- error_log
podgen_redis: invalid parameter "timeout=0"

=== TEST 23: podgen_redis with an unknown parameter
--- http_config
podgen_redis 127.0.0.1:6379 colour=blue;
--- config
location = /v1/audio/speech { podgen_speech; }
--- must_die
--- error_log
podgen_redis: invalid parameter "colour=blue"

=== TEST 24: podgen_redis twice
--- http_config
podgen_redis 127.0.0.1:6379;
podgen_redis 127.0.0.1:6380;
--- config
location = /v1/audio/speech { podgen_speech; }
--- must_die
--- error_log
is duplicate
