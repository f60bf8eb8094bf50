# Cost bounds and admission control.
#
#   podgen_max_audio T   a speech request, or a podcast episode, that would
#                        make more than T of audio (estimated from the
#                        normalized text and the speed, before any work) is
#                        400 audio_too_long (an episode: the job fails so)
#   podgen_max_queue T   a worker that already has T of audio to make turns
#                        new speech away: 503 server_busy with a Retry-After
#                        estimated from its queue; podcast segments wait
#
#   podgen_max_jobs N    a POST that would give a worker (in Redis mode:
#                        the fleet's stream) more than N unfinished jobs is
#                        429 too_many_jobs with Retry-After
#
# Before: 4,096 characters of digits at speed 0.25 streamed for over a
# minute (56 minutes of audio), and 200 cold requests were all taken in.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;
use JSON::PP;
use IO::Socket::IP;
use IO::Select;
use Time::HiRes qw(time sleep);

$SIG{PIPE} = 'IGNORE';

our $JSON = JSON::PP->new->canonical;

# ---- the queue bound, with concurrent requests -------------------------------

{
    my $ng = Podgen::Test::Nginx->new(
        workers => 1,
        main_config => 'thread_pool default threads=1 max_queue=4096;',
        http_config => 'podgen_max_queue 60s; podgen_tts_parallelism 1;',
        config => 'location = /v1/audio/speech { podgen_speech; }');
    $ng->start;

    # ~2,000 characters: about two minutes of audio, estimated over the
    # 60 s bound alone, so it is taken only by an idle worker
    my $long = join ' ', map { "Queued sentence $_ keeps the only synthesis "
                               . "thread of this worker busy for a while." }
                         1 .. 24;
    my $body = speech_body(input => $long);
    my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $ng->port)
        or die "connect: $!";
    print $s "POST /v1/audio/speech HTTP/1.1\r\nHost: localhost\r\n"
             . "Content-Type: application/json\r\nConnection: close\r\n"
             . 'Content-Length: ' . length($body) . "\r\n\r\n$body";
    my $head = '';
    my $sel = IO::Select->new($s);
    my $end = time + 30;
    while (time < $end && $head !~ /\r\n\r\n/ && $sel->can_read($end - time)) {
        sysread($s, $head, 4096, length $head) or last;
    }
    like($head, qr/^HTTP\/1\.1 200/, 'queue: an idle worker takes a long job');

    my $r = speech($ng, input => 'A second, different request while it runs.',
                   timeout => 10);
    error_ok($r, 'queue: a new request beyond podgen_max_queue',
             status => 503, code => 'server_busy', type => 'server_error');
    like($r->{headers}{'retry-after'} // '', qr/^[1-9]\d*$/,
         'queue: Retry-After says when, in seconds: '
         . ($r->{headers}{'retry-after'} // 'none'));

    # the long one finishes; then there is room again
    my $rest = '';
    $end = time + 120;
    while (time < $end && $sel->can_read($end - time)) {
        sysread($s, $rest, 65536, length $rest) or last;
    }
    close $s;
    ok(wait_for(sub {
           speech($ng, input => 'A second, different request while it runs.',
                  timeout => 30)->{status} == 200
       }, 20), 'queue: once the worker is done, it is taken');

    $ng->stop;
    my @bad = $ng->check_error_log;
    ok(!@bad, 'queue: error log clean') or diag join "\n", @bad;
}

# ---- a podcast episode over the bound fails before any synthesis -------------

{
    my $ng = Podgen::Test::Nginx->new(
        http_config => 'podgen_max_audio 1m; podgen_store store;',
        config => 'location /v1/podcasts { podgen_podcasts; }');
    $ng->start;
    my @segs = map { { speaker => 'Ann', text => join ' ', ("Segment $_ goes "
                       . "on and on about very little indeed.") x 4 } } 1 .. 8;
    my $id = new_podcast($ng, { segments => \@segs }, 'episode over 1m');
    my $j = wait_job($ng, $id, 30);
    is($j->{status}, 'failed', 'episode over 1m: the job fails');
    is($j->{error}{code}, 'audio_too_long', 'episode over 1m: audio_too_long')
        or diag explain $j;
    is($j->{progress}{done}, 0, 'episode over 1m: nothing was synthesized');
    $id = new_podcast($ng, { segments => [ { speaker => 'Ann',
                                             text => 'Short and sweet.' } ] },
                      'a short episode');
    is(wait_job($ng, $id, 60)->{status}, 'completed',
       'a short episode completes under the same bound');
    $ng->stop;
}

# ---- bounded job creation -----------------------------------------------------

{
    my $ng = Podgen::Test::Nginx->new(
        http_config => 'podgen_max_jobs 2; podgen_jobs 1; podgen_store store;',
        config => 'location /v1/podcasts { podgen_podcasts; }
                   location /v1/batch { podgen_batch; }');
    $ng->start;
    my $long = join ' ', ('This job keeps the only runner of the worker '
                          . 'busy for a little while.') x 6;
    my @ids = map { new_podcast($ng, { segments => [ { speaker => 'Ann',
                                                       text => "$long $_" } ] },
                                "podgen_max_jobs 2: job $_") } 1 .. 2;
    my ($r) = post_podcast($ng, { segments => [ { speaker => 'Ann',
                                                  text => 'One too many.' } ] });
    error_ok($r, 'podgen_max_jobs 2: the third unfinished job',
             status => 429, code => 'too_many_jobs', type => 'rate_limit_error');
    is($r->{headers}{'retry-after'}, '5', 'podgen_max_jobs: Retry-After');
    ($r) = post($ng, '/v1/batch', { async => JSON::PP::true, requests => [
                    { type => 'speech', body => { model => 'tts-1',
                                                  voice => 'alloy',
                                                  input => 'Hello.' } } ] });
    is($r->{status}, 429, 'podgen_max_jobs 2: an async batch is refused too');
    my ($r2, $b) = post($ng, '/v1/batch', { requests => [
                    { type => 'podcast', body => { segments => [
                        { speaker => 'Ann', text => 'In a batch.' } ] } } ] });
    is($b->{results}[0]{status}, 429,
       'podgen_max_jobs 2: a podcast item of a batch is refused in its place');
    is($b->{results}[0]{error}{code}, 'too_many_jobs',
       'podgen_max_jobs 2: the item says too_many_jobs');
    is(wait_job($ng, $_, 60)->{status}, 'completed', "job $_ completes")
        for @ids;
    ($r) = post_podcast($ng, { segments => [ { speaker => 'Ann',
                                               text => 'Room again.' } ] });
    is($r->{status}, 202, 'podgen_max_jobs: once they finished, 202 again');
    $ng->stop;
}

run_blocks(defaults => {
    config => 'location = /v1/audio/speech { podgen_speech; }',
    more_headers => 'Content-Type: application/json',
});

__DATA__

=== 4,096 digits at speed 0.25: refused before any work (default bound, 30m)
--- request eval
"POST /v1/audio/speech\n"
. $main::JSON->encode({ model => 'tts-1', voice => 'alloy',
                        speed => 0.25, input => '7' x 4096 })
--- api_error: 400 code=audio_too_long param=input type=invalid_request_error
--- max_time: 2

=== the same digits at speed 1 are fine by the default bound
--- request eval
"POST /v1/audio/speech\n"
. $main::JSON->encode({ model => 'tts-1', voice => 'alloy',
                        response_format => 'pcm', input => '7' x 300 })
--- error_code: 200

=== podgen_max_audio 30s: a paragraph is too long
--- http_config
podgen_max_audio 30s;
--- request eval
"POST /v1/audio/speech\n"
. $main::JSON->encode({ model => 'tts-1', voice => 'alloy',
                        input => join ' ', ('A sentence of about fifty characters in all, say.') x 20 })
--- api_error: 400 code=audio_too_long param=input

=== podgen_max_audio 30s: one sentence is fine
--- http_config
podgen_max_audio 30s;
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy","input":"Just this."}
--- error_code: 200

=== podgen_max_audio 0: no bound
--- http_config
podgen_max_audio 0;
--- request eval
"POST /v1/audio/speech\n"
. $main::JSON->encode({ model => 'tts-1', voice => 'alloy', speed => 4,
                        response_format => 'pcm',
                        input => join ' ', ('Fast.') x 100 })
--- error_code: 200

=== podgen_max_jobs takes a number
--- http_config
podgen_max_jobs many;
--- must_die

=== podgen_max_queue takes a time
--- http_config
podgen_max_queue lots;
--- must_die
