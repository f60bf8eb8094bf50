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
use File::Temp ();

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

# a FLAC decoded at its own rate: its samples, to compare with STREAMINFO
sub decode_audio_native {
    my ($bytes) = @_;
    my $dir = File::Temp::tempdir('podgen-flac-XXXXXX', TMPDIR => 1,
                                  CLEANUP => 1);
    open my $fh, '>:raw', "$dir/a.flac" or die $!;
    print $fh $bytes;
    close $fh;
    my $pcm = `ffmpeg -nostdin -v error -i '$dir/a.flac' -f s16le -ac 1 - 2>/dev/null`;
    return $? == 0 ? ($pcm) : (undef);
}

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
    my ($same, $why) = stored_is_streamed($haudio, $audio, $fmt);
    $same &&= substr($haudio, length($audio), 4) eq 'pgwt' if $fmt eq 'wav';
    ok($same, "sse $fmt: cached audio is the streamed audio made whole"
              . ($fmt eq 'wav' ? ' (sizes in the header fixed, word '
                                 . 'timings after the samples)' : ''))
        or diag $why;
}

# --- stored files are whole ---------------------------------------------------
#
# A cold request streams what the encoder makes as it makes it; the copy
# the cache keeps (and GET /v1/audio/{key} and cached POSTs serve) is made
# whole when synthesis ends: a FLAC's STREAMINFO has the total samples
# and the MD5 of the PCM, an mp3 begins with a LAME Info frame (frame
# count, so players know the length without reading it all, and the
# encoder's delay and padding, so it decodes to the samples exactly),
# a WAV has its sizes; Ogg Opus knows its length from its granules.

sub probe {
    my ($bytes, $ext) = @_;
    my $dir = File::Temp::tempdir('podgen-probe-XXXXXX', TMPDIR => 1,
                                  CLEANUP => 1);
    my $f = "$dir/a.$ext";
    open my $fh, '>:raw', $f or die "$f: $!";
    print $fh $bytes;
    close $fh;
    # headers only: no -count_frames, no decoding
    my $j = `ffprobe -v error -show_streams -show_format -of json '$f' 2>&1`;
    my $p = eval { $JSON->decode($j) } or diag $j;
    return ($p, $f);
}

SKIP: {
    skip 'ffprobe is not installed', 1 unless which('ffprobe');
    my $input = "Stored whole, not as streamed. $TEXT";
    my %streamed;

    for my $fmt (qw(flac mp3 opus wav aac)) {
        my $r = speech($ng, input => $input, response_format => $fmt);
        is($r->{headers}{'x-podgen-cache'}, 'MISS', "whole $fmt: cold MISS");
        $streamed{$fmt} = $r->{body};
        my ($d, $err) = audio_duration($r->{body}, $fmt);
        ok(defined $d && $d > 3, "whole $fmt: the streamed copy decodes")
            or diag $err;

        my $url = $r->{headers}{'x-podgen-audio-url'} // '/';
        my $g = request($ng, 'GET', $url);
        is($g->{status}, 200, "whole $fmt: GET $url");
        is($g->{headers}{'content-length'}, length $g->{body},
           "whole $fmt: GET Content-Length");
        my ($same, $why) = stored_is_streamed($g->{body}, $r->{body}, $fmt);
        ok($same, "whole $fmt: stored = streamed, made whole") or diag $why;
        my $h = speech($ng, input => $input, response_format => $fmt);
        is($h->{headers}{'x-podgen-cache'}, 'HIT-L1', "whole $fmt: HIT-L1");
        ok($h->{body} eq $g->{body}, "whole $fmt: a cached POST is the GET");
        my $rg = request($ng, 'GET', $url, headers => { Range => 'bytes=0-99' });
        ok($rg->{status} == 206 && $rg->{body} eq substr($g->{body}, 0, 100),
           "whole $fmt: a Range of the stored headers");

        my ($pcm) = decode_audio($g->{body}, $fmt);
        my $decoded = defined $pcm ? length($pcm) / 2 / 16000 : -1;
        my ($p, $file) = probe($g->{body}, $fmt);
        my $st = $p && $p->{streams} && $p->{streams}[0] || {};

        if ($fmt eq 'flac') {
            my $rate = $st->{sample_rate} || 1;
            my ($pcm0) = decode_audio_native($g->{body});
            my $samples = defined $pcm0 ? length($pcm0) / 2 : -1;
            is($st->{duration_ts}, $samples,
               "whole flac: ffprobe duration_ts is the $samples decoded "
               . 'samples');
            ok(abs(($st->{duration} // -1) - $samples / $rate) < 0.001,
               "whole flac: and its duration ($st->{duration})");
            my $out = `flac -t -s '$file' 2>&1`;
            is($?, 0, 'whole flac: flac -t verifies the MD5') or diag $out;
            unlike($out, qr/MD5 signature.*unset|WARNING/i,
                   'whole flac: with an MD5 to verify');
            my ($sp) = probe($r->{body}, 'flac');
            ok(!defined(($sp->{streams}[0] || {})->{duration_ts}),
               'whole flac: (the streamed copy had no length)');

        } elsif ($fmt eq 'mp3') {
            # ffprobe: the Info frame's frame count; from its start_time
            # (after the encoder's delay) within one frame of the decoded
            my $len = ($st->{duration} // 0) - ($st->{start_time} // 0);
            ok($st->{start_time} > 0,
               "whole mp3: ffprobe knows the encoder delay "
               . "(start_time $st->{start_time})");
            ok(abs($len - $decoded) <= 0.026,
               sprintf('whole mp3: ffprobe %.3f s, decoded %.3f s', $len,
                       $decoded));
            my ($sd) = audio_duration($r->{body}, 'mp3');
            ok($sd - $decoded > 0.040,
               sprintf('whole mp3: the stream decodes longer (%.3f s: its '
                       . 'reserved frame, the delay, the padding)', $sd));

        } elsif ($fmt eq 'opus' || $fmt eq 'wav') {
            my $dur = $p && $p->{format} && $p->{format}{duration} // -1;
            ok(abs($dur - $decoded) < 0.03,
               sprintf('whole %s: ffprobe %.3f s, decoded %.3f s', $fmt,
                       $dur, $decoded));

        } else {
            ok(($p->{format}{duration} // 0) > 3,
               'whole aac: ffprobe estimates a duration');
        }
    }
}

$ng->stop;
my @bad = $ng->check_error_log;
ok(!@bad, 'error log clean') or diag join "\n", @bad;
unlike($ng->error_log, qr/\[error\]/, 'no [error] lines');

done_testing;
