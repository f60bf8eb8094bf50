#!/usr/bin/env perl
# Episode rendering benchmark (#21 item 4): the worker's peak memory and
# the render time of a ~10- and a ~60-minute podcast episode.
#
# An edited script (no LLM, no generator): segments of about 2,000
# characters cut from bench/texts/speech-4000.txt, two speakers in turn
# (voices alloy and echo), as many as make the episode's length.  The
# segments repeat, so after the first two or so the audio comes from L1
# (a zone big enough for them): the synthesis costs little, the episode is
# still rendered from every segment.  podgen_max_audio is raised to 2h.
#
# One nginx per variant, one worker, a fresh store.  The job is polled
# every 50 ms: render time = from the status showing every segment done to
# "completed" (the render, its file, and its way to the record).  Peak
# RSS = VmHWM of the worker from /proc after the job.  Variants: what the
# current build offers (podgen_loudness off and on when it knows the
# directive).
#
#   perl bench/episode-rss.pl [--minutes 10,60] [--format mp3]
#                             [--variants off,on] [--out bench/RESULTS.md]

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Getopt::Long;
use JSON::PP;
use File::Temp ();
use Time::HiRes qw(time sleep);
use POSIX qw(strftime);
use Podgen::Test;
use Podgen::API;

$SIG{PIPE} = 'IGNORE';

my ($minutes, $format, $variants, $out) = ('10,60', 'mp3', 'default', undef);
GetOptions('minutes=s' => \$minutes, 'format=s' => \$format,
           'variants=s' => \$variants, 'out=s' => \$out)
    or die "usage: $0 [--minutes 10,60] [--format mp3] [--variants default|"
         . "off,on] [--out FILE]\n";

my $root = Podgen::Test::repo_root();
my $text = slurp("$root/bench/texts/speech-4000.txt") // die "text: $!";
$text =~ s/\s+/ /g;
$text =~ s/^ | $//g;

# two pieces of about 2,000 characters, at a sentence
my $cut = index($text, '. ', length($text) / 2) + 1;
my @pieces = (substr($text, 0, $cut), substr($text, $cut + 1));

# about 15 characters a second (measured: 4,000 characters, 4.4 min)
my $SEG_S = 2000 / 15.2;

my $JSON = JSON::PP->new->utf8->canonical;

sub peak_rss {
    my ($pid) = @_;
    open my $s, '<', "/proc/$pid/status" or return undef;
    while (<$s>) { return $1 / 1024 if /^VmHWM:\s+(\d+)/ }
    return undef;
}

sub run_one {
    my ($min, $variant) = @_;
    my $store = File::Temp::tempdir('podgen-bench-ep-XXXXXX', TMPDIR => 1,
                                    CLEANUP => 1);
    chmod 0777, $store;
    my $extra = $variant eq 'default' ? ''
              : $variant eq 'on' ? 'podgen_loudness -16 peak=-1;'
              : "podgen_loudness $variant;";
    my $ng = Podgen::Test::Nginx->new(
        http_config => "podgen_store $store; podgen_max_audio 2h; "
                       . "podgen_cache_zone bench:256m max_entry=32m; "
                       . "client_max_body_size 8m; $extra",
        config => 'location /v1/podcasts { podgen_podcasts; }',
        workers => 1, start_timeout => 30);
    $ng->start;
    my ($pid) = $ng->worker_pids;
    my $n = int($min * 60 / $SEG_S + 0.5) || 1;
    my @segs = map { { speaker => $_ % 2 ? 'Sam' : 'Rita',
                       text => $pieces[$_ % 2] } } 0 .. $n - 1;
    my $rss0 = peak_rss($pid);
    my $t0 = time;
    my ($r, $j) = post_podcast($ng, { segments => \@segs, format => $format,
                                      title => "Bench $min min" },
                               timeout => 60);
    die "POST: $r->{status} $r->{body}\n" unless $r->{status} == 202;
    my $id = $j->{id};
    my ($t_segs, $st);
    while (time - $t0 < 1800) {
        my $g = Podgen::API::request($ng, 'GET', "/v1/podcasts/$id",
                                     timeout => 30);
        $st = Podgen::API::jdecode($g->{body}) // {};
        my $pr = $st->{progress} // {};
        if (!$t_segs && ($pr->{total} // 0) > 0
            && ($pr->{done} // -1) == $pr->{total}) {
            $t_segs = time;
        }
        last if ($st->{status} // '') =~ /^(?:completed|failed)$/;
        sleep 0.05;
    }
    my $t1 = time;
    die "job $id: " . $JSON->encode($st) . "\n"
        unless ($st->{status} // '') eq 'completed';
    my $rss = peak_rss($pid);
    my ($file) = glob("$store/audio/$id.*");
    my $res = { minutes => $min, variant => $variant, segments => $n,
                duration => $st->{duration_s} // $st->{duration},
                bytes => $file ? -s $file : undef,
                total => $t1 - $t0,
                render => $t_segs ? $t1 - $t_segs : undef,
                rss0 => $rss0, rss => $rss, loudness => $st->{loudness} };
    $ng->stop;
    return $res;
}

my @rows;
for my $min (split /,/, $minutes) {
    for my $v (split /,/, $variants) {
        my $x = run_one($min, $v);
        my $row = sprintf "| %s | %d min | %s | %d | %.1f min | %.1f MB "
            . "| %.2f s | %.1f s | %.0f MB | %.0f MB |",
            $format, $min, $v, $x->{segments}, ($x->{duration} // 0) / 60,
            ($x->{bytes} // 0) / 1e6, $x->{render} // -1, $x->{total},
            $x->{rss0} // 0, $x->{rss} // 0;
        $row .= ' ' . $JSON->encode($x->{loudness}) if $x->{loudness};
        print "$row\n";
        push @rows, $row;
    }
}

my $report = join "\n",
    sprintf("Measured %s, one worker (`perl bench/episode-rss.pl`).",
            strftime('%Y-%m-%d %H:%M UTC', gmtime)),
    "",
    "| format | target | loudness | segments | episode | file | render | job | worker RSS at start | worker peak RSS |",
    "|---|---|---|---|---|---|---|---|---|---|",
    @rows, "";

print "\n$report";

if ($out) {
    open my $fh, '>>', $out or die "$out: $!";
    print {$fh} "\n$report";
    close $fh;
}
