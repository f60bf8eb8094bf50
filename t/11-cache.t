# The L1 cache and single flight: a repeated request is served whole from
# shared memory (Content-Length, ETag, Range), identical concurrent
# cold requests over several workers cause exactly one synthesis, and a
# client that leaves does not cancel work others wait for.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;
use POSIX ();
use Time::HiRes qw(time sleep);

my $TEXT = join ' ', map {
    "Sentence number $_ of the cache test is spoken by a patient voice."
} 1 .. 12;

my $ng = Podgen::Test::Nginx->new(
    workers => 2,
    config => 'location = /v1/audio/speech { podgen_speech; }
               location = /metrics { podgen_metrics; }');
$ng->start;

# ---- hits -----------------------------------------------------------------

my $b = speech_body(input => "Hello from the cache. $TEXT",
                    response_format => 'mp3');
my $r1 = speech($ng, body => $b);
is($r1->{status}, 200, 'cold: 200');
is($r1->{headers}{'x-podgen-cache'}, 'MISS', 'cold: MISS');
ok(!defined $r1->{headers}{'content-length'}, 'cold: streamed, no length');

my $r2 = speech($ng, body => $b);
is($r2->{headers}{'x-podgen-cache'}, 'HIT-L1', 'again: HIT-L1');
is($r2->{headers}{'content-length'}, length $r2->{body}, 'hit: Content-Length');
ok(scalar stored_is_streamed($r2->{body}, $r1->{body}, 'mp3'),
   'hit: the bytes of the stream, made whole (its Info frame filled in)');
like($r2->{headers}{etag} // '', qr/^"[0-9a-f]{32}"$/, 'hit: strong ETag');

# the alias and the voice it names share the entry
my $r3 = speech($ng, input => "Hello from the cache. $TEXT",
                response_format => 'mp3', voice => 'slt');
is($r3->{headers}{'x-podgen-cache'}, 'HIT-L1', 'slt and alloy share entries');

# unknown fields do not change the key; speed and format do
is(speech($ng, input => "Hello from the cache. $TEXT",
           response_format => 'mp3', instructions => 'calm',
           extra => [1])->{headers}{'x-podgen-cache'},
   'HIT-L1', 'ignored fields are not part of the key');
is(speech($ng, input => "Hello from the cache. $TEXT",
           response_format => 'mp3', speed => 1.5)
       ->{headers}{'x-podgen-cache'},
   'MISS', 'another speed is another entry');

# a POST is never a 304 (RFC 9110 13.1.2; t/22): the tag names the audio
# at /v1/audio/{key}, whose GET gives 304 (t/13)
my $nm = speech($ng, body => $b,
                headers => { 'If-None-Match' => $r2->{headers}{etag} });
is($nm->{status}, 200, 'POST with If-None-Match: 200, not 304');
ok($nm->{body} eq $r2->{body}, 'POST with If-None-Match: the audio');

my $rg = speech($ng, body => $b, headers => { Range => 'bytes=10-109' });
is($rg->{status}, 206, 'Range: 206');
is(length $rg->{body}, 100, 'Range: 100 bytes');
ok($rg->{body} eq substr($r2->{body}, 10, 100), 'Range: the right bytes of the stored file');
like($rg->{headers}{'content-range'} // '', qr{^bytes 10-109/\d+$},
     'Content-Range');

# a cached wav has its real sizes in the header
my $wb = speech_body(input => "A wave file. $TEXT", response_format => 'wav');
my $w1 = speech($ng, body => $wb);
my $w2 = speech($ng, body => $wb);
is($w2->{headers}{'x-podgen-cache'}, 'HIT-L1', 'wav: HIT-L1');
is(unpack('V', substr($w2->{body}, 4, 4)), length($w2->{body}) - 8,
   'cached wav: RIFF size is right');
# (after the samples, a "pgwt" chunk: the words' timings)
my $wdata = unpack('V', substr($w2->{body}, 40, 4));
is($wdata, length($w1->{body}) - 44,
   'cached wav: data size is right');
is(substr($w2->{body}, 44, $wdata), substr($w1->{body}, 44),
   'cached wav: the same samples');
is(substr($w2->{body}, 44 + $wdata, 4), 'pgwt',
   'cached wav: then the word timings');

# ---- single flight --------------------------------------------------------

sub concurrent {
    my ($n, $body, %o) = @_;
    return in_parallel($n, sub {
        my $r = speech($ng, body => $body);
        return ($r->{status} == 200 ? 1 : 0, $r->{headers}{'x-podgen-cache'},
                length $r->{body});
    }, stagger => $o{stagger});
}

my $audio0 = metric($ng, 'podgen_tts_audio_seconds_total');
my $sb = speech_body(input => "Twenty at once. $TEXT",
                     response_format => 'opus');
my @res = concurrent(20, $sb);

is(scalar(grep { $_->[0] } @res), 20, 'single flight: 20 answers, all 200');
is(scalar(grep { $_->[1] eq 'MISS' } @res), 1, 'one of them made the audio');
is(scalar(grep { $_->[1] eq 'COALESCED' } @res), 19,
   'the other 19 waited for it');
my %len = map { $_->[2] => 1 } @res;
is(scalar(keys %len), 1, 'all got the same number of bytes');

my $one = speech($ng, body => $sb);
is($one->{headers}{'x-podgen-cache'}, 'HIT-L1', 'and it is cached');
my $d = audio_duration($one->{body}, 'opus');
my $audio1 = metric($ng, 'podgen_tts_audio_seconds_total');
ok(abs(($audio1 - $audio0) - $d) < 0.15 * $d,
   sprintf('audio synthesized once: %.1f s for %.1f s of audio',
           $audio1 - $audio0, $d));
is(metric($ng, 'podgen_coalesced_requests_total{kind="audio"}'), 19,
   'podgen_coalesced_requests_total counts them');

# the maker leaves; the others still get the whole audio
my $lb = speech_body(
    input => "The first client leaves. $TEXT $TEXT $TEXT $TEXT",
    response_format => 'wav');
my $quitter = fork // die;
if (!$quitter) {
    # leaves after its first chunk, once the others are surely waiting
    stream_request($ng, 'POST', '/v1/audio/speech', $lb,
                   { 'Content-Type' => 'application/json' },
                   on_chunk => sub { sleep 0.6 },
                   abort_after_chunks => 1, timeout => 30);
    POSIX::_exit(0);
}
sleep 0.2;
my @left = concurrent(3, $lb);
waitpid $quitter, 0;
cmp_ok(metric($ng, 'podgen_errors_total{type="client_gone"}'), '>=', 1,
       'the maker did leave before the end');
is(scalar(grep { $_->[0] && $_->[1] eq 'COALESCED' } @left), 3,
   'after the maker left, 3 waiters got the audio')
    or diag explain \@left;
my $full = speech($ng, body => $lb);
is($full->{headers}{'x-podgen-cache'}, 'HIT-L1', 'the orphaned work was cached');
my ($fd) = audio_duration($full->{body}, 'wav');
ok($fd && $fd > 10, sprintf('and it is complete: %.1f s', $fd // 0));

# a maker that leaves with nobody waiting stops, and the next one makes it
my $ab = speech_body(input => "Nobody waits for this one. $TEXT $TEXT",
                     response_format => 'mp3');
stream_request($ng, 'POST', '/v1/audio/speech', $ab,
               { 'Content-Type' => 'application/json' },
               abort_after_chunks => 1, timeout => 30);
sleep 0.3;
my $again = speech($ng, body => $ab);
is($again->{status}, 200, 'after an abandoned request: 200');
is($again->{headers}{'x-podgen-cache'}, 'MISS',
   'its marker was released: made again, no wait');

$ng->stop;
my @bad = $ng->check_error_log;
ok(!@bad, 'error log clean') or diag join "\n", @bad;

done_testing;
