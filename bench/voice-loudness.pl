#!/usr/bin/env perl
# Each built-in voice's loudness (#19 item 7): the same text
# (bench/texts/speech-4000.txt, its first 1,000 characters) spoken by every
# voice as wav through POST /v1/audio/speech, measured by ffmpeg's ebur128
# filter (integrated LUFS, true peak).  The figures are the table in
# ngx_http_podgen_podcast_job.c (ngx_http_podgen_podcast_voice_lufs) that
# brings every voice to -20 LUFS before an episode is normalised.
#
#   perl bench/voice-loudness.pl

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use JSON::PP;
use File::Temp ();
use Podgen::Test;
use Podgen::API;

my $root = Podgen::Test::repo_root();
my $text = slurp("$root/bench/texts/speech-4000.txt") // die "text: $!";
$text =~ s/\s+/ /g;
$text = substr($text, 0, rindex(substr($text, 0, 1000), '. ') + 1);

my $ng = Podgen::Test::Nginx->new(
    config => 'location = /v1/audio/speech { podgen_speech; }', workers => 1);
$ng->start;

my $tmp = File::Temp::tempdir(CLEANUP => 1);
print "| voice | integrated | true peak | gain to -20 LUFS |\n|---|---|---|---|\n";
for my $v (qw(slt rms awb kal kal16)) {
    my ($r) = post($ng, '/v1/audio/speech',
                   { model => 'tts-1', voice => $v, input => $text,
                     response_format => 'wav' }, timeout => 120);
    die "$v: $r->{status}\n" unless $r->{status} == 200;
    open my $fh, '>:raw', "$tmp/$v.wav" or die;
    print {$fh} $r->{body};
    close $fh;
    my $out = `ffmpeg -nostdin -hide_banner -i $tmp/$v.wav -af ebur128=peak=true -f null - 2>&1`;
    my ($i) = $out =~ /Integrated loudness:\s+I:\s+(-?[\d.]+) LUFS/;
    my ($p) = $out =~ /True peak:\s+Peak:\s+(-?[\d.]+) dBFS/;
    printf "| %s | %.1f LUFS | %.1f dBTP | %+.1f dB |\n", $v, $i, $p, -20 - $i;
}
$ng->stop;
