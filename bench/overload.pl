#!/usr/bin/env perl
# Admission under overload: twice the cold speech work the queue bound
# admits, sent at once, with the bound (podgen_max_queue) and without it,
# same run, interleaved.
#
# Each request is a distinct ~1,000-character text (cold: the cache stores
# nothing), voice slt, wav, streamed.  With the bound, what a worker cannot
# start within its queue is 503 server_busy at once (Retry-After); what is
# admitted streams.  Reported: requests admitted and refused, and the time
# to the first audio byte of the admitted ones (p50, p99), against the same
# load with no bound, where every request is taken in and waits its turn.
#
#   perl bench/overload.pl [--runs N] [--out bench/RESULTS.md]

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Getopt::Long;
use JSON::PP;
use POSIX qw(strftime ceil);
use Time::HiRes qw(time);
use Podgen::Test;

my $runs = 3;
my $out;
GetOptions('runs=i' => \$runs, 'out=s' => \$out) or die "usage\n";

my $root = Podgen::Test::repo_root();
open my $fh, '<', "$root/bench/texts/speech-4000.txt" or die $!;
my $text = do { local $/; <$fh> };
close $fh;
$text =~ s/\s+/ /g;
$text = substr($text, 0, 1000);
$text =~ s/\s+\S*\z/./;

my $workers = 2;
my $queue_s = 300;                              # podgen_max_queue 5m
my $audio_s = length($text) / 16;               # podgen's own estimate
my $capacity = $workers * (int($queue_s / $audio_s) + 1);
my $offered = 2 * $capacity;

my %variants = (
    'bounded (podgen_max_queue 5m)' => 'podgen_max_queue 5m;',
    'no bound (podgen_max_queue 0)' => 'podgen_max_queue 0;',
);

my %ng;
for my $name (sort keys %variants) {
    $ng{$name} = Podgen::Test::Nginx->new(
        workers => $workers,
        http_config => "$variants{$name} client_body_buffer_size 64k; "
                       . 'podgen_cache_zone nostore:1m max_entry=1;',
        config => 'location = /v1/audio/speech { podgen_speech; }');
    $ng{$name}->start;
}

my $json = JSON::PP->new->canonical;
my $serial = 0;

sub one_run {
    my ($n) = @_;
    my $t0 = time;
    my @res = in_parallel($offered, sub {
        my ($i) = @_;
        my $body = $json->encode({ model => 'tts-1', voice => 'slt',
                                   response_format => 'wav',
                                   input => "Request $serial $i. $text" });
        my $r = stream_request($n, 'POST', '/v1/audio/speech', $body,
                               { 'Content-Type' => 'application/json' },
                               timeout => 300, discard_body => 1);
        return ($r->{status}, $r->{first_byte_time} // -1);
    });
    $serial++;
    return { wall => time - $t0, res => \@res };
}

sub pct {
    my ($p, @v) = @_;
    return undef unless @v;
    @v = sort { $a <=> $b } @v;
    return $v[ceil($p / 100 * @v) - 1];
}

my %got;
for my $run (1 .. $runs) {
    for my $name (sort keys %variants) {
        push @{ $got{$name} }, one_run($ng{$name});
    }
}

my @rows;
for my $name (sort keys %variants) {
    my (@ok, @busy, @fb, @walls);
    for my $r (@{ $got{$name} }) {
        my @a = grep { $_->[0] == 200 } @{ $r->{res} };
        push @ok, scalar @a;
        push @busy, scalar grep { $_->[0] == 503 } @{ $r->{res} };
        push @fb, map { $_->[1] } grep { $_->[1] >= 0 } @a;
        push @walls, $r->{wall};
    }
    push @rows, sprintf('| %s | %d | %s | %s | %.0f ms | %.0f ms | %.1f s |',
        $name, $offered, join('/', @ok), join('/', @busy),
        1000 * pct(50, @fb), 1000 * pct(99, @fb), pct(50, @walls));
}

my $load = `cat /proc/loadavg`;
$load =~ s/\s+\S+\s+\S+\s*$//;
my $md = join "\n",
    '## Admission under 2x overload: cold speech, bounded queue vs none',
    '',
    sprintf('Measured %s on %s cores; %d runs, interleaved; load average '
            . 'before the last run: %s.', strftime('%Y-%m-%d %H:%M UTC',
            gmtime), `nproc` + 0, $runs, $load),
    'Command: `perl bench/overload.pl`.',
    sprintf('%d workers, `podgen_max_queue 5m` each: a %d-character text is '
            . 'estimated at %.0f s of audio, so the bound admits about %d '
            . 'requests at once; %d distinct cold requests (voice slt, wav) '
            . 'are sent at once, twice that.', $workers, length($text),
            $audio_s, $capacity, $offered),
    '',
    '| variant | requests | admitted (runs) | 503 server_busy (runs) '
    . '| first byte p50 (admitted) | p99 | all answered (median) |',
    '|---|---|---|---|---|---|---|',
    @rows,
    '',
    'With the bound, a request the workers cannot start soon is refused at '
    . 'once with a Retry-After, and those admitted get their first byte '
    . 'while the others would still be waiting; without it every request '
    . 'is taken in and waits behind the others.',
    '';

print "$md\n";

if ($out) {
    open my $o, '>>', $out or die "$out: $!";
    print $o "\n$md";
    close $o;
}

$_->stop for values %ng;
