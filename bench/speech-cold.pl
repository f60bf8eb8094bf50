#!/usr/bin/env perl
# Cold speech benchmark: podgen against the flite CLI, same text, same run.
#
# A 4,000-character English text (bench/texts/speech-4000.txt), voice slt,
# wav.  The baseline is what the typical Python service does per request:
# run `flite -voice slt -f text -o out.wav` once.  podgen runs with one
# synthesis thread, then with the thread pool and per-request parallelism
# on all cores.  Each variant runs RUNS times, interleaved; the medians are
# compared.  Also: time to the first audio byte, and the peak RSS of the
# worker.
#
#   perl bench/speech-cold.pl [--runs N] [--out bench/RESULTS.md]

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Getopt::Long;
use JSON::PP;
use Time::HiRes qw(time);
use POSIX qw(strftime);
use Podgen::Test;

my $runs = 5;
my $out;
GetOptions('runs=i' => \$runs, 'out=s' => \$out) or die "usage\n";

my $root = Podgen::Test::repo_root();
my $text_file = "$root/bench/texts/speech-4000.txt";
open my $fh, '<', $text_file or die "$text_file: $!";
my $text = do { local $/; <$fh> };
close $fh;
$text =~ s/\s+\z//;

my $ncpu = `nproc` + 0 || 2;
my $body = JSON::PP->new->canonical->encode({
    model => 'tts-1', voice => 'slt', response_format => 'wav',
    input => $text,
});

my %variants = (
    'podgen, 1 thread' => {
        main => "thread_pool bench threads=1;",
        http => "podgen_thread_pool bench; podgen_tts_parallelism 1;",
    },
    "podgen, pool on $ncpu cores" => {
        main => "thread_pool bench threads=$ncpu;",
        http => "podgen_thread_pool bench; podgen_tts_parallelism $ncpu;",
    },
);

my %ng;
for my $name (sort keys %variants) {
    my $v = $variants{$name};
    my $n = Podgen::Test::Nginx->new(
        main_config => $v->{main},
        # cold work every time: a cache that stores nothing
        http_config => "$v->{http} client_body_buffer_size 64k; "
                       . "podgen_cache_zone nostore:1m max_entry=1;",
        config => 'location = /v1/audio/speech { podgen_speech; }',
        workers => 1);
    $n->start;
    $ng{$name} = $n;
}

my $tmp = File::Temp::tempdir(CLEANUP => 1);

sub run_cli {
    my $t0 = time;
    system('flite', '-voice', 'slt', '-f', $text_file, '-o', "$tmp/cli.wav")
        == 0 or die "flite failed\n";
    my $wall = time - $t0;
    open my $w, '<:raw', "$tmp/cli.wav" or die;
    my $wav = do { local $/; <$w> };
    return { wall => $wall, audio => Podgen::Test::audio_duration($wav, 'wav') };
}

sub run_podgen {
    my ($n) = @_;
    my $t0 = time;
    my $r = Podgen::Test::stream_request($n, 'POST', '/v1/audio/speech', $body,
        { 'Content-Type' => 'application/json' }, timeout => 120);
    my $wall = time - $t0;
    die "podgen answered $r->{status}\n" unless $r->{status} == 200;
    return { wall => $wall, ttfb => $r->{first_byte_time},
             audio => Podgen::Test::audio_duration($r->{body}, 'wav') };
}

sub median {
    my @s = sort { $a <=> $b } @_;
    return @s % 2 ? $s[$#s / 2] : ($s[@s / 2 - 1] + $s[@s / 2]) / 2;
}

# warm up: page in voices and the flite libraries
run_cli();
run_podgen($_) for values %ng;

my %res;
for my $i (1 .. $runs) {
    push @{ $res{'flite CLI (baseline)'} }, run_cli();
    for my $name (sort keys %ng) {
        push @{ $res{$name} }, run_podgen($ng{$name});
    }
}

my %rss;
for my $name (sort keys %ng) {
    for my $pid ($ng{$name}->worker_pids) {
        open my $s, '<', "/proc/$pid/status" or next;
        while (<$s>) {
            $rss{$name} = $1 / 1024 if /^VmHWM:\s+(\d+)/;
        }
    }
    $ng{$name}->stop;
}

my $base = median(map { $_->{wall} } @{ $res{'flite CLI (baseline)'} });

my @rows;
for my $name ('flite CLI (baseline)', sort keys %ng) {
    my $wall = median(map { $_->{wall} } @{ $res{$name} });
    my $ttfb = $res{$name}[0]{ttfb}
             ? median(map { $_->{ttfb} } @{ $res{$name} }) : undef;
    my $audio = median(map { $_->{audio} // 0 } @{ $res{$name} });
    push @rows, sprintf "| %s | %.2f s | %.2fx | %s | %.1f s | %s |",
        $name, $wall, $wall / $base,
        defined $ttfb ? sprintf('%.0f ms', $ttfb * 1000) : 'n/a (whole file)',
        $audio, $rss{$name} ? sprintf('%.0f MB', $rss{$name}) : '-';
}

my $cpu = `grep -m1 'model name' /proc/cpuinfo` =~ s/.*:\s*//r;
chomp $cpu;

my $report = join "\n",
    "## Cold speech, 4,000 characters, slt, wav",
    "",
    sprintf("Measured %s on %d cores (%s); median of %d runs, interleaved.",
            strftime('%Y-%m-%d', gmtime), $ncpu, $cpu, $runs),
    "Input: bench/texts/speech-4000.txt (%d characters, %d words). Command: `perl bench/speech-cold.pl`.",
    "",
    "| variant | wall time | vs CLI | time to first audio byte | audio | worker peak RSS |",
    "|---|---|---|---|---|---|",
    @rows,
    "",
    "Targets (issue 3): 1 thread <= 1.05x the CLI; the pool on 2 cores <= 0.55x; first byte < 150 ms.",
    "";
my $words = () = $text =~ /\S+/g;
$report = sprintf $report, length $text, $words;

print $report;

if ($out) {
    my $old = -e $out ? do { local (@ARGV, $/) = $out; <> } : "# Benchmark results\n\n";
    $old =~ s/## Cold speech, 4,000 characters.*?(?=\n## |\z)//s;
    $old =~ s/\n+\z/\n\n/;
    open my $o, '>', $out or die "$out: $!";
    print $o $old, $report;
    close $o;
    print "\nwritten to $out\n";
}
