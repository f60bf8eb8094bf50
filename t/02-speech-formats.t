# POST /v1/audio/speech: every response format (aac as ADTS) decodes (ffmpeg) to audio of
# the same duration as the WAV of the same input; speed changes the
# duration; every voice and alias speaks; the SSE stream carries the same
# audio.  flite's output varies a little between runs: durations are
# compared, never bytes.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;
use MIME::Base64 qw(decode_base64);

which('ffmpeg') or plan skip_all => 'ffmpeg is not installed';

my $TEXT = 'The quick brown fox jumps over the lazy dog. '
         . 'It was a bright cold day in April, and the clocks were striking thirteen. '
         . 'Podgen turns text into speech.';

my %MIME = (mp3 => 'audio/mpeg', opus => 'audio/ogg', wav => 'audio/wav',
            flac => 'audio/flac', pcm => 'audio/pcm', aac => 'audio/aac');

my $ng = Podgen::Test::Nginx->new(
    main_config => 'thread_pool default threads=4;',
    config => <<'EOF');
location = /v1/audio/speech { podgen_speech; }
location /v1/audio/ { podgen_audio; }
EOF
$ng->start;

# every request says $TEXT unless it gives an input
my @TEXT = (input => $TEXT);

sub within {
    my ($got, $want, $tol, $name) = @_;
    my $ok = defined $got && defined $want && $want > 0
          && abs($got - $want) <= $tol * $want;
    ok($ok, $name) or diag sprintf "got %s, want %s +- %d%%",
        $got // 'undef', $want // 'undef', $tol * 100;
    return $ok;
}

my %magic = (
    mp3  => qr/^(?:ID3|\xff[\xe0-\xff])/,
    opus => qr/^OggS.{20,}OpusHead/s,
    wav  => qr/^RIFF....WAVE/s,
    flac => qr/^fLaC/,
    # ADTS: sync word, MPEG-4, no CRC; AAC LC
    aac  => qr/^\xff\xf1[\x40-\x7f]/,
);

# --- each format ------------------------------------------------------------

my %dur;
for my $fmt (qw(wav mp3 opus flac pcm aac)) {
    my $r = speech($ng, @TEXT, response_format => $fmt);
    is($r->{status}, 200, "$fmt: 200") or diag show($r);
    is($r->{headers}{'content-type'}, $MIME{$fmt}, "$fmt: Content-Type");
    ok($r->{chunked}, "$fmt: chunked transfer encoding");
    like($r->{headers}{'x-request-id'} // '', qr/^[0-9a-f]{32}$/,
         "$fmt: X-Request-Id");
    is($r->{headers}{'x-podgen-cache'}, 'MISS', "$fmt: X-Podgen-Cache: MISS");
    like($r->{body}, $magic{$fmt}, "$fmt: file signature") if $magic{$fmt};
    if ($fmt eq 'pcm') {
        is(length($r->{body}) % 2, 0, 'pcm: whole 16-bit samples');
        unlike(substr($r->{body}, 0, 4), qr/^(?:RIFF|ID3|OggS|fLaC)/,
               'pcm: raw samples, no container');
    }
    my ($d, $err) = audio_duration($r->{body}, $fmt);
    ok(defined $d, "$fmt: ffmpeg decodes it") or diag $err;
    $dur{$fmt} = $d;
    note sprintf "%s: %d bytes, %.3f s", $fmt, length $r->{body}, $d // -1;
}

# aac again: a cached hit comes whole, and from its content address
{
    my $r = speech($ng, @TEXT, response_format => 'aac');
    is($r->{headers}{'x-podgen-cache'}, 'HIT-L1', 'aac again: HIT-L1');
    is($r->{headers}{'content-length'}, length $r->{body},
       'aac hit: Content-Length');
    my $g = request($ng, 'GET', $r->{headers}{'x-podgen-audio-url'} // '/');
    is($g->{status}, 200, 'GET /v1/audio/{key}.aac: 200');
    is($g->{headers}{'content-type'}, 'audio/aac', 'GET .aac: audio/aac');
    ok($g->{body} eq $r->{body}, 'GET .aac: the same bytes');
}

cmp_ok($dur{wav} // 0, '>', 3, 'the WAV lasts more than 3 s');
cmp_ok($dur{wav} // 99, '<', 30, 'the WAV lasts less than 30 s');
for my $fmt (qw(mp3 opus flac pcm aac)) {
    within($dur{$fmt}, $dur{wav}, 0.10, "$fmt: duration within 10% of the WAV's");
}

# default format: mp3
{
    my $r = speech($ng, @TEXT, response_format => undef);
    is($r->{status}, 200, 'no response_format: 200') or diag show($r);
    is($r->{headers}{'content-type'}, 'audio/mpeg', 'no response_format: mp3');
    within(scalar audio_duration($r->{body}, 'mp3'), $dur{wav}, 0.10,
           'default mp3: duration');
}

# --- speed --------------------------------------------------------------------

for my $case ([2.0, 0.4, 0.65], [0.5, 1.6, 2.5], [1, 0.9, 1.1]) {
    my ($speed, $lo, $hi) = @$case;
    my $r = speech($ng, @TEXT, response_format => 'wav', speed => $speed);
    is($r->{status}, 200, "speed $speed: 200") or diag show($r);
    my $d = audio_duration($r->{body}, 'wav');
    my $ratio = ($d // 0) / ($dur{wav} || 1);
    ok($ratio >= $lo && $ratio <= $hi,
       "speed $speed: duration ratio $lo..$hi")
        or diag sprintf "ratio %.3f (%.3f s vs %.3f s)", $ratio, $d // -1,
                        $dur{wav} // -1;
}

# --- models -------------------------------------------------------------------

for my $model (qw(tts-1 tts-1-hd gpt-4o-mini-tts flite)) {
    my $r = speech($ng, model => $model, input => 'Testing the model name.',
                   response_format => 'wav',
                   instructions => 'Speak like a pirate.');
    is($r->{status}, 200, "model $model: 200") or diag show($r);
    like($r->{body}, $magic{wav}, "model $model: WAV");
}

# --- voices -------------------------------------------------------------------

my @builtin = qw(slt rms awb kal kal16);
my @openai = qw(alloy ash ballad coral echo fable onyx nova sage shimmer verse);
for my $v (@builtin, @openai) {
    my $r = speech($ng, voice => $v, input => 'Hello there, how are you today?',
                   response_format => 'wav');
    is($r->{status}, 200, "voice $v: 200") or diag show($r);
    is($r->{headers}{'content-type'}, 'audio/wav', "voice $v: audio/wav");
    my ($d, $err) = audio_duration($r->{body}, 'wav');
    ok(defined $d && $d > 0.5 && $d < 10, "voice $v: 0.5 s < duration < 10 s")
        or diag sprintf "duration %s %s", $d // 'undef', $err // '';
    # not silence
    my ($pcm) = decode_audio($r->{body}, 'wav');
    my $peak = 0;
    if (defined $pcm) {
        for my $s (unpack 's<*', $pcm) { my $a = abs $s; $peak = $a if $a > $peak }
    }
    cmp_ok($peak, '>', 1000, "voice $v: not silent");
}

# --- request id ---------------------------------------------------------------

{
    my $r = speech($ng, input => 'Hi.', response_format => 'wav',
                   headers => { 'X-Request-Id' => 'client-id-123' });
    is($r->{status}, 200, 'client X-Request-Id: 200');
    is($r->{headers}{'x-request-id'}, 'client-id-123',
       'a sane client X-Request-Id is echoed');
}

# --- SSE ----------------------------------------------------------------------

sub parse_sse {
    my ($body) = @_;
    my @ev;
    my $ok = 1;
    for my $block (split /\n\n/, $body) {
        next if $block eq '';
        my @data;
        for my $line (split /\n/, $block) {
            if ($line =~ /^data: ?(.*)$/) { push @data, $1 }
            elsif ($line =~ /^(?::|event:|id:|retry:)/) { }
            else { $ok = 0 }
        }
        push @ev, join "\n", @data;
    }
    return ($ok, @ev);
}

for my $fmt (qw(mp3 wav pcm aac)) {
    # a text of its own: a cold request streams, a cached one comes whole
    my $input = "Server sent events, in $fmt. $TEXT";
    my $r = speech($ng, response_format => $fmt, stream_format => 'sse',
                   input => $input);
    is($r->{status}, 200, "sse $fmt: 200") or diag show($r);
    like($r->{headers}{'content-type'} // '', qr{^text/event-stream\b},
         "sse $fmt: text/event-stream");
    like($r->{headers}{'x-request-id'} // '', qr/^[0-9a-f]{32}$/,
         "sse $fmt: X-Request-Id");
    ok($r->{chunked}, "sse $fmt: chunked");
    like($r->{body}, qr/\n\n\z/, "sse $fmt: ends with a blank line");
    my ($wellformed, @ev) = parse_sse($r->{body});
    ok($wellformed, "sse $fmt: only data lines");
    my @j = map { scalar eval { $JSON->decode($_) } } @ev;
    ok(!grep({ !defined } @j), "sse $fmt: every event is JSON");
    cmp_ok(scalar @j, '>=', 2, "sse $fmt: at least one delta and done");
    next unless @j >= 2 && !grep { !defined } @j;
    my $done = pop @j;
    is($done->{type}, 'speech.audio.done', "sse $fmt: the last event is done");
    my $u = $done->{usage} || {};
    ok($u->{input_tokens} && $u->{input_tokens} =~ /^\d+$/ && $u->{input_tokens} > 0,
       "sse $fmt: usage.input_tokens > 0") or diag explain $u;
    is($u->{output_tokens}, 0, "sse $fmt: usage.output_tokens 0");
    is($u->{total_tokens}, $u->{input_tokens}, "sse $fmt: total = input");
    ok(!grep({ ($_->{type} // '') ne 'speech.audio.delta' } @j),
       "sse $fmt: all other events are deltas");
    my $audio = join '', map { decode_base64($_->{audio} // '') } @j;
    ok(!grep({ ($_->{audio} // '') !~ m{^[A-Za-z0-9+/]*={0,2}$} } @j),
       "sse $fmt: audio is base64");
    like($audio, $magic{$fmt}, "sse $fmt: concatenated deltas have the signature")
        if $magic{$fmt};
    my ($d, $err) = audio_duration($audio, $fmt);
    ok(defined $d, "sse $fmt: decodes") or diag $err;
    my $w = speech($ng, response_format => 'wav', input => $input);
    within($d, scalar(audio_duration($w->{body}, "wav")), 0.10,
           "sse $fmt: duration within 10% of the WAV's");

    # the same request again comes from the cache, whole, same audio
    my $h = speech($ng, response_format => $fmt, stream_format => 'sse',
                   input => $input);
    is($h->{headers}{'x-podgen-cache'}, 'HIT-L1', "sse $fmt: cached the 2nd time");
    my (undef, @hev) = parse_sse($h->{body});
    my @hj = map { scalar eval { $JSON->decode($_) } } @hev;
    is($hj[-1]{type}, 'speech.audio.done', "sse $fmt: cached, done last");
    my $haudio = join '', map { decode_base64($_->{audio} // '') }
                          @hj[0 .. $#hj - 1];
    # a stored WAV has exact sizes and, after its samples, a "pgwt" chunk
    # of its words' timings
    my $same = $fmt eq 'wav'
        ? substr($haudio, 44, length($audio) - 44) eq substr($audio, 44)
          && substr($haudio, length($audio), 4) eq 'pgwt'
        : $haudio eq $audio;
    ok($same, "sse $fmt: cached audio is the streamed audio"
              . ($fmt eq 'wav' ? ' (sizes in the header fixed, word '
                                 . 'timings after the samples)' : ''));
}

$ng->stop;
my @bad = $ng->check_error_log;
ok(!@bad, 'error log clean') or diag join "\n", @bad;
unlike($ng->error_log, qr/\[error\]/, 'no [error] lines');

done_testing;
