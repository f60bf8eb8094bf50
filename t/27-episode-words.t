# Word timings: every segment of an episode carries when each of its words
# is said (flite's Segment ends, kept in the segment's WAV artifact), the
# transcript JSON places them in the episode, transcript.srt is captions
# timed by them.  Checked against the audio itself: the words are in
# order, inside their segment, and the last word of a segment ends within
# 50 ms of where its sound ends in the decoded episode (voices at 8 and
# 16 kHz, speed 1.25, a segment whose artifact a speech request made
# first).

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;
use File::Temp ();
use JSON::PP;
use MIME::Base64 ();

skip_rest('ffmpeg is not installed') unless which('ffmpeg');
skip_rest('ffprobe is not installed') unless which('ffprobe');

my $STORE = File::Temp::tempdir('podgen-words-XXXXXX', TMPDIR => 1,
                                CLEANUP => 1);
chmod 0777, $STORE;

my $ng = Podgen::Test::Nginx->new(
    workers => 1,
    http_config => "podgen_store $STORE;",
    config => 'location /v1/podcasts { podgen_podcasts; }
               location /v1/audio/ { podgen_audio; }
               location = /v1/audio/speech { podgen_speech; }');
$ng->start;

sub tmpfile {
    my ($data, $ext) = @_;
    my ($fh, $f) = File::Temp::tempfile('podgen-t27-XXXXXX', TMPDIR => 1,
                                        UNLINK => 1, SUFFIX => ".$ext");
    binmode $fh;
    print {$fh} $data;
    close $fh;
    return $f;
}

# the decoded audio: s16 mono samples at $rate
sub decode {
    my ($bytes, $ext, $rate) = @_;
    my $f = tmpfile($bytes, $ext);
    open my $fh, '-|', 'ffmpeg', '-nostdin', '-v', 'error', '-i', $f,
        '-f', 's16le', '-ac', '1', '-ar', $rate, '-' or die "ffmpeg: $!";
    binmode $fh;
    local $/;
    my $raw = <$fh> // '';
    close $fh;
    return [ unpack 's<*', $raw ];
}

# where the sound ends within [from, to) s: the end of the last 10 ms
# window over -40 dBFS
sub audible_end {
    my ($pcm, $rate, $from, $to) = @_;
    my $win = $rate / 100;
    my $a = int($from * $rate);
    my $i = int($to * $rate);
    $i = @$pcm if $i > @$pcm;
    for (; $i - $win >= $a; $i -= $win) {
        my $e = 0;
        $e += $_ * $_ for @$pcm[$i - $win .. $i - 1];
        return $i / $rate if $e / $win > 300 * 300;
    }
    return undef;
}

sub srt_secs {
    my ($t) = @_;
    my ($h, $m, $s, $ms) = $t =~ /^(\d\d+):(\d\d):(\d\d),(\d\d\d)$/
        or return undef;
    return $h * 3600 + $m * 60 + $s + $ms / 1000;
}

my @SEGS = (
    { speaker => 'Ada', voice => 'alloy',
      text => 'Welcome back. Today, it costs $20 to fix a radio from 1952!' },
    { speaker => 'Kal', voice => 'kal',
      text => 'That is cheap. The valves alone cost more, surely?' },
    { speaker => 'Ada', voice => 'alloy',
      text => 'Not when you find them at a flea market on Sunday.' },
);

# the third segment's artifact is made by a speech request first
{
    my $r = request($ng, 'POST', '/v1/audio/speech',
        headers => { 'Content-Type' => 'application/json' },
        body => encode_json({ model => 'tts-1', voice => 'alloy',
                              input => $SEGS[2]{text},
                              response_format => 'wav' }));
    is($r->{status}, 200, 'speech wav: 200');
    my $r2 = request($ng, 'POST', '/v1/audio/speech',
        headers => { 'Content-Type' => 'application/json' },
        body => encode_json({ model => 'tts-1', voice => 'alloy',
                              input => $SEGS[2]{text},
                              response_format => 'wav' }));
    like($r2->{headers}{'x-podgen-cache'} // '', qr/^HIT/,
         'speech wav again: from the cache');
    my $f = tmpfile($r2->{body}, 'wav');
    my $d = `ffprobe -v error -show_entries format=duration -of csv=p=0 $f`;
    chomp $d;
    my $samples = @{ decode($r->{body}, 'wav', 16000) };
    ok($d > 1 && abs($d - $samples / 16000) < 0.01,
       "the cached WAV (with its word chunk) reads as its audio ($d s)");
}

for my $case ([ 'wav', 1.0 ], [ 'opus', 1.25 ]) {
    my ($fmt, $speed) = @$case;
    my $name = "$fmt at speed $speed";

    my $id = new_podcast($ng, { segments => \@SEGS, format => $fmt,
                                speed => $speed, title => 'Radios' }, $name)
        or next;
    my $st = wait_job($ng, $id, 60);
    is($st->{status}, 'completed', "$name: completed") or next;

    my ($tr, $t) = get($ng, "/v1/podcasts/$id/transcript.json");
    is($tr->{status}, 200, "$name: transcript.json");
    my ($ar) = get($ng, "/v1/podcasts/$id/audio");
    my $rate = 16000;
    my $pcm = decode($ar->{body}, $fmt, $rate);

    my ($prev, $all_in, $all_mono, $count) = (0, 1, 1, 0);
    for my $i (0 .. $#SEGS) {
        my $s = $t->{segments}[$i];
        my $w = $s->{words} // [];
        my @tokens = split ' ', $SEGS[$i]{text};
        is_deeply([ map { $_->{word} } @$w ], \@tokens,
                  "$name: segment $i: its words, as written");
        for my $x (@$w) {
            $all_mono &&= $x->{start} >= $prev && $x->{end} >= $x->{start};
            $all_in &&= $x->{start} >= $s->{start} && $x->{end} <= $s->{end};
            $prev = $x->{end};
            $count++;
        }
        next unless @$w;
        my $heard = audible_end($pcm, $rate, $s->{start}, $s->{end});
        my $last = $w->[-1]{end};
        ok(defined $heard && abs($heard - $last) <= 0.05,
           sprintf("$name: segment %d: the last word ends at %.3f s, its "
                   . "sound at %.3f s", $i, $last, $heard // -1));
        cmp_ok($w->[0]{start} - $s->{start}, '<', 0.4,
               "$name: segment $i: the first word starts near its start");
    }
    ok($all_mono && $count > 20, "$name: $count words, in order");
    ok($all_in, "$name: every word inside its segment");

    # SubRip
    my ($sr) = get($ng, "/v1/podcasts/$id/transcript.srt");
    is($sr->{status}, 200, "$name: transcript.srt");
    like($sr->{headers}{'content-type'} // '', qr{^application/x-subrip},
         "$name: SubRip's type");
    my @cues = grep { /\S/ } split /\n\n/, $sr->{body};
    my ($n, $ok, $last, @text) = (0, 1, 0);
    for my $c (@cues) {
        my ($num, $timing, @lines) = split /\n/, $c;
        my ($a, $b) = ($timing // '') =~ /^(\S+) --> (\S+)$/;
        $ok &&= ($num // '') eq ++$n && defined srt_secs($a // '')
                && srt_secs($a) >= $last - 0.0005
                && srt_secs($b) >= srt_secs($a) && @lines == 1;
        $last = srt_secs($b // '') // 0;
        push @text, @lines;
    }
    ok($ok && @cues >= 5, "$name: " . scalar(@cues) . " cues numbered, "
       . "timed in order, a line each") or diag $sr->{body};
    my $joined = join ' ', @text;
    $joined =~ s/(?:Ada|Kal): //g;
    is($joined, join(' ', map { $_->{text} } @SEGS),
       "$name: the cues say the script");
    like($text[0], qr/^Ada: Welcome back\.$/,
         "$name: a sentence ends a caption, the speaker named");
    my $vtt = tmpfile($sr->{body}, 'srt');
    is(system("ffmpeg -nostdin -v error -i $vtt -f webvtt - >/dev/null"), 0,
       "$name: ffmpeg reads the SubRip");
}

# ---- POST /v1/audio/speech with "timestamps": true ----------------------------

{
    my $input = 'Good morning, listeners. The weather is fine; bring a hat!';
    my $r = request($ng, 'POST', '/v1/audio/speech',
        headers => { 'Content-Type' => 'application/json' },
        body => encode_json({ model => 'tts-1', voice => 'alloy',
                              input => $input, response_format => 'mp3',
                              stream_format => 'sse',
                              timestamps => JSON::PP::true }));
    is($r->{status}, 200, 'timestamps: 200');
    is($r->{headers}{'x-podgen-cache'}, 'BYPASS',
       'timestamps: synthesized, the cache not read');
    my @ev = map { decode_json($_) } $r->{body} =~ /^data: (.*)$/mg;
    my @types = map { $_->{type} } @ev;
    is($types[-1], 'speech.audio.done', 'timestamps: done last');
    my @ts = grep { $_->{type} eq 'speech.audio.timestamps' } @ev;
    ok(@ts >= 1, 'timestamps: ' . scalar(@ts) . ' timestamps events');
    my $first_ts = (grep { $types[$_] eq 'speech.audio.timestamps' } 0 .. $#types)[0] // 0;
    is($types[$first_ts - 1] // '', 'speech.audio.delta',
       'timestamps: words come after the audio they are in');
    my @w = map { @{ $_->{words} } } @ts;
    is_deeply([ map { $_->{word} } @w ], [ split ' ', $input ],
              'timestamps: every word once, as written');
    my ($mono, $prev) = (1, 0);
    for (@w) {
        $mono &&= $_->{start} >= $prev && $_->{end} >= $_->{start};
        $prev = $_->{end};
    }
    ok($mono, 'timestamps: in order');
    my $audio = join '', map { MIME::Base64::decode_base64($_->{audio}) }
                         grep { $_->{type} eq 'speech.audio.delta' } @ev;
    my $pcm = decode($audio, 'mp3', 16000);
    # (an mp3 plays lame's delay and the decoder's first: 69 ms at 16 kHz)
    my $heard = audible_end($pcm, 16000, 0, @$pcm / 16000);
    my $last = $w[-1]{end} + 0.069;
    ok(defined $heard && abs($heard - $last) <= 0.05,
       sprintf('timestamps: the last word ends at %.3f s (+ mp3 delay), '
               . 'the sound at %.3f s', $last, $heard // -1));

    for my $bad ([ { timestamps => JSON::PP::true }, 'invalid_value',
                   'without sse' ],
                 [ { timestamps => 'yes', stream_format => 'sse' },
                   'invalid_type', 'not a boolean' ]) {
        my ($extra, $code, $what) = @$bad;
        my $b = request($ng, 'POST', '/v1/audio/speech',
            headers => { 'Content-Type' => 'application/json' },
            body => encode_json({ model => 'tts-1', voice => 'alloy',
                                  input => 'Hi.', %$extra }));
        error_ok($b, "timestamps $what", status => 400, code => $code,
                 param => 'timestamps');
    }
}

# the record keeps the words: after a restart they are still there
{
    my ($lr, $list) = get($ng, '/v1/podcasts');
    my $id = $list->{data}[0]{id};
    my (undef, $before) = get($ng, "/v1/podcasts/$id/transcript.json");
    $ng->stop;
    $ng->start;
    my (undef, $after) = get($ng, "/v1/podcasts/$id/transcript.json");
    ok(@{ $after->{segments}[0]{words} // [] } > 5
       && JSON::PP->new->canonical->encode($after)
          eq JSON::PP->new->canonical->encode($before),
       'the words are in the record: the same after a restart')
        or diag(encode_json($list), "\n", encode_json($after));
}

unlike($ng->error_log, qr/\[(?:alert|crit|error|emerg)\]/,
       'no errors in the log');

done_testing();
