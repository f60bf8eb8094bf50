# Podcasts as durable jobs (embedded mode, podgen_store): an episode from a
# source text and from an edited script, checked the way a user would (the
# audio's real duration, transcripts whose times add up, WebVTT that ffmpeg
# reads, an RSS feed that feedparser reads), re-rendering an edited script
# synthesizes only the changed line, the library and its cursor, ETag and
# Range, long polls, DELETE (also while the job runs), every kind of bad
# input, a fast shutdown in the middle of a job (the job is resumed and
# completed by the next start), and two workers answering about one job.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;
use JSON::PP;
use File::Temp ();
use POSIX ();
use Time::HiRes qw(time sleep);

$SIG{PIPE} = 'IGNORE';

skip_rest('ffmpeg is not installed') unless which('ffmpeg');
skip_rest('ffprobe is not installed') unless which('ffprobe');

my $T_START = time;
my $JSON = JSON::PP->new->utf8->canonical;
my %CT = ('Content-Type' => 'application/json');
my $ROOT = repo_root();

my $XMLLINT = which('xmllint');
my $PY = '/usr/bin/python3';      # Debian's, with python3-feedparser
my $HAVE_FEEDPARSER = -x $PY
    && system($PY, '-c', 'import feedparser') == 0;

my $LOCATIONS = 'location /v1/podcasts { podgen_podcasts; }
                 location = /metrics { podgen_metrics; }
                 access_log logs/pids.log pids;';
my $LOG_FORMAT = "log_format pids '\$pid \$status \$request';";

# the workers run as another user when the tests run as root
my $STORE = File::Temp::tempdir('podgen-podcasts-store-XXXXXX', TMPDIR => 1,
                                CLEANUP => !$ENV{PODGEN_TEST_KEEP});
chmod 0777, $STORE;

my %MIME = (mp3 => 'audio/mpeg', opus => 'audio/ogg', wav => 'audio/wav',
            flac => 'audio/flac', pcm => 'audio/pcm', m4a => 'audio/mp4');
my %CODEC = (mp3 => 'mp3', opus => 'opus', wav => 'pcm_s16le',
             flac => 'flac', pcm => 'pcm_s16le', m4a => 'aac');

my $ID_RE = qr/^pod_[0-9a-f]{20}$/;

# ---- helpers -----------------------------------------------------------------

sub source {
    my ($name, $paragraphs) = @_;
    my $t = slurp("$ROOT/t/data/$name") // die "t/data/$name: $!";
    return $t unless $paragraphs;
    my @p = grep { /\S/ } split /\n\s*\n/, $t;
    return join "\n\n", @p[0 .. ($paragraphs > @p ? $#p : $paragraphs - 1)];
}

# Waits for the job: "$name: completed"; its last status.
sub completed {
    my ($n, $id, $name, $timeout) = @_;
    my $j = wait_job($n, $id, $timeout);
    is($j->{status}, 'completed', "$name: completed")
        or diag($JSON->encode($j));
    return $j;
}

sub tmpfile {
    my ($data, $ext) = @_;
    my ($fh, $f) = File::Temp::tempfile('podgen-t15-XXXXXX', TMPDIR => 1,
                                        UNLINK => 1,
                                        SUFFIX => ".$ext");
    binmode $fh;
    print {$fh} $data;
    close $fh;
    return $f;
}

# Runs a command; returns (exit status, stdout, stderr).
sub run {
    my (@cmd) = @_;
    my $err = tmpfile('', 'err');
    my $pid = open my $fh, '-|';
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        open STDERR, '>', $err;
        open STDIN, '<', '/dev/null';
        exec @cmd or POSIX::_exit(127);
    }
    binmode $fh;
    local $/;
    my $out = <$fh> // '';
    close $fh;
    return ($?, $out, slurp($err) // '');
}

# ffprobe: (duration in s, codec name) of encoded audio
sub probe {
    my ($bytes, $fmt) = @_;
    my $f = tmpfile($bytes, $fmt);
    my @in = $fmt eq 'pcm' ? ('-f', 's16le', '-ar', '24000', '-ac', '1') : ();
    my ($st, $out, $err) = run('ffprobe', '-v', 'error', @in,
        '-show_entries', 'format=duration:stream=codec_name',
        '-of', 'json', $f);
    my $j = $st == 0 ? jdecode($out) : undef;
    return (undef, undef, $err) unless $j;
    return ($j->{format}{duration}, $j->{streams}[0]{codec_name}, $err);
}

sub vtt_secs {
    my ($t) = @_;
    my ($h, $m, $s, $ms) = $t =~ /^(\d+):(\d\d):(\d\d)\.(\d\d\d)$/ or return undef;
    return $h * 3600 + $m * 60 + $s + $ms / 1000;
}

# WebVTT: (header ok, [ {num, start, end, voice, text (escaped)} ... ])
sub parse_vtt {
    my ($t) = @_;
    my @blocks = split /\n\n+/, $t;
    my $head = shift @blocks;
    my @cues;
    for my $b (@blocks) {
        next unless $b =~ /\S/;
        my @l = split /\n/, $b;
        my %c = (raw => $b, lines => scalar @l);
        $c{num} = shift @l if @l && $l[0] !~ /-->/;
        my $timing = shift @l // '';
        @c{qw(start end)} = $timing =~ /^(\S+) --> (\S+)$/;
        $c{timing} = $timing;
        my $text = join "\n", @l;
        if ($text =~ s/^<v ([^>]*)>//) {
            ($c{voice} = $1) =~ s/[ \t]+\z//;     # parsers trim the name
        }
        $c{text} = $text;
        push @cues, \%c;
    }
    return ($head // '', \@cues);
}

sub unescape_html {
    my ($s) = @_;
    $s =~ s/&lt;/</g;
    $s =~ s/&gt;/>/g;
    $s =~ s/&amp;/&/g;
    return $s;
}

# ffmpeg reads the WebVTT: (exit status, number of SRT cues, stderr)
sub ffmpeg_vtt {
    my ($vtt) = @_;
    my $f = tmpfile($vtt, 'vtt');
    my ($st, $out, $err) = run('ffmpeg', '-nostdin', '-v', 'error', '-i', $f,
                               '-f', 'srt', '-');
    my $n = () = $out =~ /^\d\d:\d\d:\d\d,\d\d\d --> /mg;
    return ($st, $n, $err);
}

sub xmllint {
    my ($xml) = @_;
    my $f = tmpfile($xml, 'xml');
    my ($st, $out, $err) = run($XMLLINT, '--noout', $f);
    return ($st, $err);
}

my $FEEDPARSER = <<'PY';
import feedparser, json, sys
d = feedparser.parse(sys.argv[1])
out = {"bozo": bool(d.bozo), "error": str(d.get("bozo_exception", "")),
       "title": d.feed.get("title"), "version": d.get("version"),
       "entries": []}
for e in d.entries:
    out["entries"].append({
        "title": e.get("title"), "id": e.get("id"),
        "duration": e.get("itunes_duration"),
        "enclosures": [{"href": x.get("href"), "length": x.get("length"),
                        "type": x.get("type")}
                       for x in e.get("enclosures", [])]})
print(json.dumps(out))
PY

sub feedparser {
    my ($xml) = @_;
    my $f = tmpfile($xml, 'xml');
    my ($st, $out, $err) = run($PY, '-c', $FEEDPARSER, $f);
    return jdecode($out) // { failed => "exit $st: $err" };
}

sub store_files {
    my ($id) = @_;
    return grep { -e $_ } (glob("$STORE/jobs/$id*"), glob("$STORE/audio/$id*"),
                           glob("$STORE/locks/$id*"));
}

sub record_on_disk {
    my ($id) = @_;
    return jdecode(slurp("$STORE/jobs/$id.json"));
}

# every page of the list, limit $limit: (ids, pages, problems)
sub list_all {
    my ($n, $limit) = @_;
    my (@ids, @pages, @bad);
    my $cursor;
    for my $page (1 .. 200) {
        my $q = "/v1/podcasts?limit=$limit"
              . (defined $cursor ? "&cursor=$cursor" : '');
        my ($r, $j) = get($n, $q);
        if ($r->{status} != 200 || !$j || ($j->{object} // '') ne 'list') {
            push @bad, "$q: $r->{status} $r->{body}";
            last;
        }
        push @pages, $j;
        push @ids, map { $_->{id} } @{ $j->{data} };
        if (!$j->{has_more}) {
            push @bad, "last page: next_cursor is not null"
                if defined $j->{next_cursor};
            last;
        }
        push @bad, "page $page: has_more with " . @{ $j->{data} }
                   . " items (limit $limit)"
            if @{ $j->{data} } != $limit;
        push @bad, "page $page: next_cursor is not the last id"
            if !defined $j->{next_cursor}
               || $j->{next_cursor} ne ($j->{data}[-1]{id} // '');
        $cursor = $j->{next_cursor};
    }
    return (\@ids, \@pages, \@bad);
}

# Checks a completed episode the way a user would: the audio (type, size,
# real duration), transcript.json (order and times), transcript.vtt (cues,
# voices, the same times, readable by ffmpeg).  Returns the transcript.
sub check_episode {
    my ($n, $id, $fmt, $name, %o) = @_;
    my ($s, $st) = get($n, "/v1/podcasts/$id");
    is($s->{status}, 200, "$name: status 200");
    is($st->{status}, 'completed', "$name: completed");
    is($st->{format}, $fmt, "$name: format $fmt");
    ok($st->{progress}{total} > 0
       && $st->{progress}{done} == $st->{progress}{total},
       "$name: progress done == total > 0 ($st->{progress}{done}/"
       . "$st->{progress}{total})");
    ok(defined $st->{title} && $st->{title} =~ /\S/,
       "$name: has a title (" . ($st->{title} // 'null') . ')');
    ok(!exists $s->{headers}{'retry-after'}, "$name: no Retry-After");
    my $dur = $st->{duration_s};
    ok(defined $dur && $dur > 0, "$name: duration_s " . ($dur // 'null'));
    $dur //= 0;

    # the audio
    my $a = request($n, 'GET', "/v1/podcasts/$id/audio", timeout => 60);
    is($a->{status}, 200, "$name: audio 200");
    is($a->{headers}{'content-type'}, $MIME{$fmt},
       "$name: audio Content-Type $MIME{$fmt}");
    my $file = "$STORE/audio/$id.$fmt";
    ok(-f $file, "$name: the episode is in the store");
    is($a->{headers}{'content-length'}, -s $file,
       "$name: Content-Length is the file's size");
    is(length $a->{body}, -s $file, "$name: all of the file");
    my ($pd, $codec, $perr) = probe($a->{body}, $fmt);
    is($codec, $CODEC{$fmt}, "$name: ffprobe finds $CODEC{$fmt}")
        or diag($perr);
    if ($fmt eq 'flac') {
        ok(defined $pd, "$name: ffprobe reads the FLAC duration from its "
                        . 'header (STREAMINFO has the total samples)');
        # the length by decoding all of it
        $pd //= audio_duration($a->{body}, 'flac');
    }
    if ($fmt eq 'm4a') {
        # an MP4 with its index, and the edit list that drops AAC's delay
        like(substr($a->{body}, 4, 8), qr/^ftyp(?:M4A |isom|mp42)/,
             "$name: an MP4 (ftyp)");
        ok(defined $pd && abs($pd - $dur) <= 0.002,
           sprintf("$name: the MP4's duration (its edit list) %.4f s == "
                   . "duration_s %.4f s", $pd // -1, $dur));
        # ffmpeg drops the priming samples but decodes the last frame
        # whole: at most one AAC frame (1024 samples) more
        my $dd = audio_duration($a->{body}, 'm4a');
        ok(defined $dd && $dd >= $dur - 0.002 && $dd <= $dur + 1024 / 8000,
           sprintf("$name: decoded m4a %.4f s, duration_s %.4f s and at "
                   . "most one frame more", $dd // -1, $dur));
    }
    if ($fmt eq 'mp3') {
        # the LAME tag tells the decoder what to drop: as long as rendered
        my $dd = audio_duration($a->{body}, 'mp3');
        ok(defined $dd && abs($dd - $dur) <= 0.002,
           sprintf("$name: decoded mp3 %.4f s == duration_s %.4f s",
                   $dd // -1, $dur));
    }
    ok(defined $pd && abs($pd - $dur) <= 0.05 * $dur,
       sprintf("$name: ffprobe duration %.3f s ~ duration_s %.3f s",
               $pd // -1, $dur));

    # transcript.json
    my ($tr, $tj) = get($n, "/v1/podcasts/$id/transcript.json");
    is($tr->{status}, 200, "$name: transcript.json 200");
    like($tr->{headers}{'content-type'} // '', qr{^application/json},
         "$name: transcript.json is JSON");
    my @seg = @{ $tj->{segments} || [] };
    is($tj->{id}, $id, "$name: transcript id");
    is($tj->{title}, $st->{title}, "$name: transcript title");
    is($tj->{duration_s}, $dur, "$name: transcript duration_s");
    is(scalar @seg, $st->{progress}{total},
       "$name: one transcript segment per synthesized segment");
    my @order = grep { ($seg[$_]{index} // -1) != $_ } 0 .. $#seg;
    ok(!@order, "$name: segments in order (index 0..n-1)");
    my (@bad_end, @bad_gap, @bad_text);
    my $spoken = 0;
    for my $i (0 .. $#seg) {
        my $g = $seg[$i];
        push @bad_text, $i unless defined $g->{text} && $g->{text} =~ /\S/
                                  && defined $g->{speaker}
                                  && defined $g->{voice};
        push @bad_end, "$i: $g->{start}..$g->{end}"
            unless defined $g->{start} && defined $g->{end}
                   && $g->{end} > $g->{start};
        $spoken += ($g->{end} // 0) - ($g->{start} // 0);
        next if $i == $#seg;
        my $gap = ($seg[$i + 1]{start} // 0) - ($g->{end} // 0);
        push @bad_gap, sprintf("%d: %.3f", $i, $gap)
            if abs($gap - 0.35) > 0.01;
    }
    ok(!@bad_text, "$name: every segment has speaker, voice and text")
        or diag("bad: @bad_text");
    is($seg[0]{start}, 0, "$name: the first segment starts at 0") if @seg;
    ok(!@bad_end, "$name: every segment ends after it starts")
        or diag(join "; ", @bad_end);
    ok(!@bad_gap, "$name: 0.35 s between segments")
        or diag(join "; ", @bad_gap);
    ok(@seg && abs($seg[-1]{end} - $dur) <= 0.01,
       "$name: the last segment ends at duration_s"
       . (@seg ? " ($seg[-1]{end} vs $dur)" : ''));
    my $sum = $spoken + 0.35 * (@seg ? @seg - 1 : 0);
    ok(@seg && abs($sum - $dur) <= 0.05 * $dur,
       sprintf("$name: speech %.3f s + pauses = %.3f s ~ duration_s",
               $spoken, $sum));
    if ($o{hosts}) {
        my %voice = map { $_->{name} => $_->{voice} } @{ $o{hosts} };
        my @wrong = grep { !exists $voice{$_->{speaker}}
                           || $voice{$_->{speaker}} ne $_->{voice} } @seg;
        ok(!@wrong, "$name: speakers are the hosts, with their voices")
            or diag($JSON->encode($wrong[0]));
        my %spk = map { $_->{speaker} => 1 } @seg;
        is(scalar keys %spk, scalar @{ $o{hosts} },
           "$name: every host speaks");
    }

    # transcript.vtt
    my $v = request($n, 'GET', "/v1/podcasts/$id/transcript.vtt");
    is($v->{status}, 200, "$name: transcript.vtt 200");
    like($v->{headers}{'content-type'} // '', qr{^text/vtt},
         "$name: text/vtt");
    like($v->{body}, qr/\AWEBVTT\r?\n/, "$name: starts with WEBVTT");
    my ($head, $cues) = parse_vtt($v->{body});
    is(scalar @$cues, scalar @seg, "$name: one cue per segment");
    my (@bad_time, @bad_voice);
    for my $i (0 .. $#$cues) {
        my ($c, $g) = ($cues->[$i], $seg[$i] // {});
        my ($cs, $ce) = (vtt_secs($c->{start} // ''), vtt_secs($c->{end} // ''));
        push @bad_time, "$i: $c->{timing} vs $g->{start}..$g->{end}"
            unless defined $cs && defined $ce && defined $g->{start}
                   && sprintf('%.3f', $cs) eq sprintf('%.3f', $g->{start})
                   && sprintf('%.3f', $ce) eq sprintf('%.3f', $g->{end});
        push @bad_voice, "$i: " . ($c->{voice} // '(no <v>)')
            unless defined $c->{voice}
                   && unescape_html($c->{voice}) eq ($g->{speaker} // '')
                   && unescape_html($c->{text}) eq ($g->{text} // '');
    }
    ok(!@bad_time, "$name: cue times are transcript.json's, to the ms")
        or diag(join "\n", @bad_time[0 .. ($#bad_time > 4 ? 4 : $#bad_time)]);
    ok(!@bad_voice, "$name: cues are <v Speaker>text of their segment")
        or diag(join "\n", @bad_voice[0 .. ($#bad_voice > 4 ? 4 : $#bad_voice)]);
    my ($fst, $fcues, $ferr) = ffmpeg_vtt($v->{body});
    is($fst, 0, "$name: ffmpeg reads the WebVTT") or diag($ferr);
    is($fcues, scalar @seg, "$name: ffmpeg finds every cue");

    return { status => $st, transcript => $tj, vtt => $v->{body},
             audio_len => length $a->{body} };
}

# ---- the server --------------------------------------------------------------

my $ng = Podgen::Test::Nginx->new(
    workers => 1,
    http_config => "podgen_store $STORE;\npodgen_jobs 1;\n$LOG_FORMAT",
    config => $LOCATIONS);
$ng->start;

my %COMPLETED;          # id => format, episodes that must be in the feed
my $FIRST;              # the first episode, completed
my %GONE;               # id => 1, deleted

# ---- 1. an episode from a source text ---------------------------------------

my @HOSTS = ({ name => 'Ada', voice => 'alloy', role => 'host' },
             { name => 'Ben', voice => 'echo', role => 'guest' });
{
    my $name = 'source mp3';
    my ($r, $j) = post_podcast($ng, { source_text => source('source-bread.txt', 3),
                                      style => 'deep-dive', length => 'short',
                                      engine => 'builtin', format => 'mp3',
                                      hosts => \@HOSTS });
    is($r->{status}, 202, "$name: 202 Accepted");
    my $id = $j->{id} // '';
    like($id, $ID_RE, "$name: id is pod_ + 20 hex digits");
    like($r->{headers}{location} // '', qr{/v1/podcasts/\Q$id\E$},
         "$name: Location names the job");
    is($j->{object}, 'podcast', "$name: object podcast");
    is($j->{status}, 'queued', "$name: queued");
    is_deeply($j->{progress}, { done => 0, total => 0 }, "$name: progress 0/0");
    is($j->{duration_s}, undef, "$name: duration_s null while queued");
    is($j->{links}{audio}, "/v1/podcasts/$id/audio", "$name: links.audio");
    ok(-f "$STORE/jobs/$id.json", "$name: the record is on disk at 202");

    # not ready yet (a job this size takes a second or more)
    my ($nr) = get($ng, "/v1/podcasts/$id/audio");
    if ($nr->{status} == 409) {
        error_ok($nr, "$name: audio before completion", status => 409, code => 'not_ready');
        is($nr->{headers}{'retry-after'}, '2', "$name: 409 has Retry-After");
    } else {
        pass("$name: (already completed: no 409 to see)");
    }

    completed($ng, $id, $name);
    check_episode($ng, $id, 'mp3', $name, hosts => \@HOSTS);
    $COMPLETED{$id} = 'mp3';
    $FIRST = $id;
}

# ---- 2. wav, opus, m4a (and pcm) ---------------------------------------------

{
    my $src = source('source-sleep.txt', 1);
    my %ids;
    for my $fmt (qw(wav opus pcm m4a)) {
        $ids{$fmt} = new_podcast($ng, { source_text => $src, length => 'short',
                                        format => $fmt, hosts => \@HOSTS },
                                 "source $fmt");
    }
    for my $fmt (qw(wav opus pcm m4a)) {
        next unless $ids{$fmt};
        completed($ng, $ids{$fmt}, "source $fmt");
        check_episode($ng, $ids{$fmt}, $fmt, "source $fmt", hosts => \@HOSTS);
        $COMPLETED{$ids{$fmt}} = $fmt;
    }
}

# ---- 3. an edited script; one line changed: one synthesis --------------------

my $L1_MISS = 'podgen_cache_requests_total{tier="l1",kind="audio",result="miss"}';
{
    my @segs = (
        { speaker => 'Rita', text => 'Welcome back to the workshop, where we take apart old radios.' },
        { speaker => 'Sam',  text => 'Today it is a valve set from nineteen fifty two, still humming.' },
        { speaker => 'Rita', text => 'The capacitors are the first thing to replace, always.' },
        { speaker => 'Sam',  text => 'And then we listen to it warm up, slowly, like a kettle.' },
    );
    my $m0 = metric($ng, $L1_MISS) // 0;
    my $id1 = new_podcast($ng, { segments => \@segs, format => 'mp3',
                                 title => 'Radio workshop' }, 'edited');
    completed($ng, $id1, 'edited');
    my $m1 = metric($ng, $L1_MISS) // 0;
    is($m1 - $m0, 4, 'edited: 4 new segments, 4 syntheses (L1 audio misses)');
    my $e1 = check_episode($ng, $id1, 'mp3', 'edited');
    is($e1->{status}{title}, 'Radio workshop', 'edited: the title given');
    is_deeply([ map { $_->{voice} } @{ $e1->{transcript}{segments} } ],
              [qw(alloy echo alloy echo)],
              'edited: speakers without hosts get voices in turn');
    $COMPLETED{$id1} = 'mp3';

    my @segs2 = map { {%$_} } @segs;
    $segs2[2]{text} = 'The capacitors go first; the old ones leak and swell.';
    my $id2 = new_podcast($ng, { segments => \@segs2, format => 'mp3',
                                 title => 'Radio workshop' }, 'edited again');
    completed($ng, $id2, 'edited again');
    my $m2 = metric($ng, $L1_MISS) // 0;
    is($m2 - $m1, 1, 'edited again: exactly one segment synthesized');
    my $e2 = check_episode($ng, $id2, 'mp3', 'edited again');
    is_deeply([ map { $_->{text} } @{ $e2->{transcript}{segments} } ],
              [ map { $_->{text} } @segs2 ],
              'edited again: the transcript has the new line');
    my @d1 = map { $_->{end} - $_->{start} } @{ $e1->{transcript}{segments} };
    my @d2 = map { $_->{end} - $_->{start} } @{ $e2->{transcript}{segments} };
    ok(@d1 == 4 && @d2 == 4
       && (grep { abs($d1[$_] - $d2[$_]) < 0.0005 } 0, 1, 3) == 3,
       'edited again: the unchanged lines keep their lengths');
    $COMPLETED{$id2} = 'mp3';
}

# ---- 6. markup and newlines --------------------------------------------------

my $MARKUP_TITLE = qq{<b>Tea & "Talk"</b>\nnext};
my $MARKUP_TITLE_OUT = qq{<b>Tea & "Talk"</b> next};
my $MARKUP_ID;
{
    my $name = 'markup';
    my @segs = ({ speaker => 'A<b>&c', text => 'Arrows --> and <i>tags</i> & ampersands, read aloud.' },
                { speaker => 'Bo--', text => 'Then a plain answer --> done.' });
    my $id = $MARKUP_ID = new_podcast($ng, { segments => \@segs,
                                             title => $MARKUP_TITLE,
                                             format => 'mp3' }, $name);
    my $st = completed($ng, $id, $name);
    is($st->{title}, $MARKUP_TITLE_OUT,
       "$name: the title round-trips, its newline a space");
    my $ep = check_episode($ng, $id, 'mp3', $name);
    my @tseg = @{ $ep->{transcript}{segments} };
    is_deeply([ map { [ $_->{speaker}, $_->{text} ] } @tseg ],
              [ map { [ $_->{speaker}, $_->{text} ] } @segs ],
              "$name: transcript.json has speakers and texts as given");
    my ($head, $cues) = parse_vtt($ep->{vtt});
    my @raw = grep { $_->{raw} =~ /<b>|<i>|<\/i>/ } @$cues;
    ok(!@raw, "$name: no raw markup in the VTT") or diag($raw[0]{raw});
    my @arrow = grep { my @l = split /\n/, $_->{raw};
                       grep { /-->/ } @l[2 .. $#l] } @$cues;
    ok(!@arrow, "$name: no raw --> in cue text") or diag($arrow[0]{raw});
    is($cues->[0]{voice}, 'A&lt;b&gt;&amp;c', "$name: the speaker escaped in <v>");
    like($cues->[0]{text}, qr/--&gt; and &lt;i&gt;tags&lt;\/i&gt; &amp; /,
         "$name: cue text escaped (&lt; &gt; &amp;)");
    my @timing = grep { !/^\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3}$/ }
                 map { $_->{timing} } @$cues;
    ok(!@timing, "$name: timing lines are only times") or diag("@timing");
    $COMPLETED{$id} = 'mp3';
}

# ---- 7. the library ----------------------------------------------------------

{
    my @mine;
    for my $i (1 .. 5) {
        my $id = new_podcast($ng, { segments => [ { speaker => 'Lib',
                                      text => "Library entry number $i." } ],
                                    format => 'mp3' }, "list job $i");
        push @mine, $id if $id;
    }
    is(scalar @mine, 5, 'list: 5 jobs made');
    ok((join(',', @mine) eq join(',', sort @mine)),
       'list: ids grow with time');
    completed($ng, $_, "list job $_") for @mine;
    $COMPLETED{$_} = 'mp3' for @mine;

    my ($ids, $pages, $bad) = list_all($ng, 2);
    ok(!@$bad, 'list: limit=2 pages are consistent') or diag(join "\n", @$bad);
    my %seen;
    $seen{$_}++ for @$ids;
    is(scalar(grep { ($seen{$_} // 0) == 1 } @mine), 5,
       'list: each of the 5 jobs seen exactly once');
    ok(!grep({ $_ > 1 } values %seen), 'list: no job seen twice');
    my @desc = sort { $b cmp $a } @$ids;
    is("@$ids", "@desc", 'list: newest first (ids decrease)');
    my @files = sort map { m{/(pod_[0-9a-f]{20})\.json$} ? $1 : () }
                glob("$STORE/jobs/*.json");
    is_deeply([ sort @$ids ], \@files, 'list: every job in the store, no other');
    ok(@$pages > 1 && !$pages->[-1]{has_more}, 'list: has_more false on the last page');
    is_deeply([ grep { $seen{$_} } reverse @mine ],
              [ grep { my $x = $_; grep { $_ eq $x } @mine } @$ids ],
              'list: the 5 in reverse order of creation');

    my ($r, $j) = get($ng, '/v1/podcasts');
    is($r->{status}, 200, 'list: no limit: 200');
    is(scalar @{ $j->{data} || [] }, (@files > 20 ? 20 : scalar @files),
       'list: the default limit');
    my ($one) = grep { $_->{id} eq $mine[0] } @{ $j->{data} || [] };
    is($one->{status}, 'completed', 'list: items are statuses');

    my ($rc, $jc) = get($ng, "/v1/podcasts?limit=100&cursor=$mine[2]");
    is_deeply([ grep { my $x = $_; grep { $_ eq $x } @mine }
                map { $_->{id} } @{ $jc->{data} || [] } ],
              [ @mine[1, 0] ], 'list: a cursor starts after its id');
}

# ---- 8. ETag, 304, Range -----------------------------------------------------

{
    my $id = $FIRST;
    my ($r1) = get($ng, "/v1/podcasts/$id");
    my ($r2) = get($ng, "/v1/podcasts/$id");
    my $etag = $r1->{headers}{etag};
    like($etag // '', qr/^"\Q$id\E-\d+"$/, 'ETag: "id-version"');
    is($r2->{headers}{etag}, $etag, 'ETag: the same twice when completed');
    is($r1->{body}, $r2->{body}, 'status: the same body twice');
    my ($nm) = get($ng, "/v1/podcasts/$id", headers => { 'If-None-Match' => $etag });
    is($nm->{status}, 304, 'If-None-Match: 304');
    is($nm->{body}, '', '304: no body');
    my ($other) = get($ng, "/v1/podcasts/$id",
                      headers => { 'If-None-Match' => qq{"$id-0"} });
    is($other->{status}, 200, 'If-None-Match with another version: 200');

    my $full = request($ng, 'GET', "/v1/podcasts/$id/audio");
    my $rg = request($ng, 'GET', "/v1/podcasts/$id/audio",
                     headers => { Range => 'bytes=0-99' });
    is($rg->{status}, 206, 'audio Range: 206');
    is(length $rg->{body}, 100, 'audio Range: 100 bytes');
    is($rg->{body}, substr($full->{body}, 0, 100), 'audio Range: the first 100 bytes');
    is($rg->{headers}{'content-range'}, 'bytes 0-99/' . length $full->{body},
       'audio Range: Content-Range');
    my $tail = request($ng, 'GET', "/v1/podcasts/$id/audio",
                       headers => { Range => 'bytes=-10' });
    is($tail->{body}, substr($full->{body}, -10), 'audio Range: the last 10 bytes');
    my $ae = $full->{headers}{etag};
    ok(defined $ae, 'audio: ETag');
    is(request($ng, 'GET', "/v1/podcasts/$id/audio",
               headers => { 'If-None-Match' => $ae // '' })->{status},
       304, 'audio: If-None-Match: 304');
    my $head = request($ng, 'HEAD', "/v1/podcasts/$id/audio");
    is($head->{status}, 200, 'audio: HEAD 200');
    is($head->{headers}{'content-length'}, length $full->{body},
       'audio: HEAD has the length');
}

# ---- 9. long polls; 10. DELETE while it runs, and while it renders -----------

{
    my $name = 'long poll';
    my $id = new_podcast($ng, { source_text => source('source-history.txt'),
                                length => 'medium', format => 'mp3' }, $name);
    my $st = wait_job($ng, $id, 20, until => sub {
        ($_[0]{status} // '') eq 'running' && ($_[0]{progress}{total} // 0) > 8
    });
    is($st->{status}, 'running', "$name: running");
    my ($r0, $prev) = get($ng, "/v1/podcasts/$id");
    is($r0->{headers}{'retry-after'}, '2', "$name: Retry-After while running");
    my $etag = $r0->{headers}{etag};
    my (@slow, @same, @back);
    for my $i (1 .. 4) {
        my $t0 = time;
        my ($r, $j) = get($ng, "/v1/podcasts/$id?wait=5");
        my $dt = time - $t0;
        last unless $r->{status} == 200 && $j;
        push @slow, sprintf('%.2f s', $dt) if $dt > 2.5;
        push @same, $JSON->encode($j->{progress})
            if $j->{status} eq $prev->{status}
               && $j->{progress}{done} == $prev->{progress}{done}
               && $j->{progress}{total} == $prev->{progress}{total};
        push @same, "ETag $r->{headers}{etag}"
            if ($r->{headers}{etag} // '') eq ($etag // '');
        push @back, "$prev->{progress}{done} -> $j->{progress}{done}"
            if $j->{progress}{done} < $prev->{progress}{done};
        ($prev, $etag) = ($j, $r->{headers}{etag});
        last if $j->{status} ne 'running'
                || $j->{progress}{done} >= $j->{progress}{total} - 2;
    }
    ok(!@slow, "$name: ?wait=5 answers as soon as the job moves")
        or diag("slow: @slow");
    ok(!@same, "$name: each answer differs from the one before")
        or diag("same: @same");
    ok(!@back, "$name: progress never goes back") or diag("@back");

    # the last segment done: the episode is being rendered; DELETE now
    $st = wait_job($ng, $id, 30, until => sub {
        ($_[0]{progress}{total} // 0) > 0
        && $_[0]{progress}{done} == $_[0]{progress}{total}
    });
    my $rendering = ($st->{status} // '') eq 'running';
    my ($d) = request($ng, 'DELETE', "/v1/podcasts/$id");
    is($d->{status}, 204, "delete while rendering: 204");
    $GONE{$id} = 1;
    sleep 2;
    is((get($ng, "/v1/podcasts/$id"))[0]{status}, 404,
       'delete while rendering: then 404');
    my @left = store_files($id);
    ok(!grep({ m{/jobs/|/locks/} } @left),
       'delete while rendering: no record or lock left');
    ok(!@left, 'delete while rendering: no file left in the store'
               . ($rendering ? '' : ' (it had finished rendering)'))
        or diag("left: @left");

    # a completed job: ?wait returns at once
    my $t0 = time;
    my ($cw, $cj) = get($ng, "/v1/podcasts/$FIRST?wait=5");
    my $dt = time - $t0;
    ok($cw->{status} == 200 && $cj->{status} eq 'completed' && $dt < 1,
       sprintf('long poll on a completed job: at once (%.2f s)', $dt));
}

{
    my $name = 'delete while running';
    my $id = new_podcast($ng, { source_text => source('source-sleep.txt'),
                                length => 'long', speed => 1.3, format => 'opus' },
                         $name);

    # podgen_jobs 1: the next job waits in the queue
    my $qid = new_podcast($ng, { segments => [ { speaker => 'Q',
                                   text => 'A queued job is deleted before it runs.' } ] },
                          'delete while queued');
    my ($q0, $qj) = get($ng, "/v1/podcasts/$qid");
    is($qj->{status}, 'queued', 'delete while queued: queued');
    is($q0->{headers}{'retry-after'}, '2', 'queued: Retry-After');
    error_ok((get($ng, "/v1/podcasts/$qid/transcript.json"))[0],
             'queued: transcript.json', status => 409, code => 'not_ready');
    my $t0 = time;
    my ($qw, $qwj) = get($ng, "/v1/podcasts/$qid?wait=1");
    my $dt = time - $t0;
    ok($qw->{status} == 200 && $qwj->{status} eq 'queued'
       && $dt > 0.9 && $dt < 2,
       sprintf('queued: ?wait=1 on an idle job answers after 1 s (%.2f s)', $dt));
    is($qw->{headers}{etag}, $q0->{headers}{etag}, 'queued: the same ETag');

    # a long poll held while the job is deleted
    my $pid = open my $poll, '-|';
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        my $r = request($ng, 'GET', "/v1/podcasts/$qid?wait=20", timeout => 30);
        printf "%d %.3f\n", $r->{status}, time;
        POSIX::_exit(0);
    }
    sleep 0.5;
    my ($qd) = request($ng, 'DELETE', "/v1/podcasts/$qid");
    my $t_del = time;
    is($qd->{status}, 204, 'delete while queued: 204');
    $GONE{$qid} = 1;
    my $line = <$poll> // '';
    close $poll;
    my ($pst, $pt) = split ' ', $line;
    is($pst, 404, 'a long poll on a job deleted meanwhile: 404');
    ok(defined $pt && $pt - $t_del < 1,
       sprintf('a long poll on a job deleted meanwhile: at once (%.2f s)',
               ($pt // 99) - $t_del));

    my $st = wait_job($ng, $id, 20,
                      until => sub { ($_[0]{progress}{done} // 0) >= 2 });
    ok($st->{status} eq 'running'
       && $st->{progress}{done} < $st->{progress}{total} - 5,
       "$name: running ($st->{progress}{done}/$st->{progress}{total})");
    ok(-e "$STORE/locks/$id", "$name: a running job holds a lock file");
    my ($d) = request($ng, 'DELETE', "/v1/podcasts/$id");
    is($d->{status}, 204, "$name: 204");
    is($d->{body}, '', "$name: no body");
    $GONE{$id} = 1;
    sleep 3;
    my ($g) = get($ng, "/v1/podcasts/$id");
    error_ok($g, "$name: then GET", status => 404, code => 'not_found');
    my ($ids) = list_all($ng, 100);
    ok(!grep({ $_ eq $id } @$ids), "$name: not in the list");
    my @left = store_files($id);
    ok(!@left, "$name: nothing of it in the store") or diag("left: @left");
    error_ok((get($ng, "/v1/podcasts/$qid"))[0],
             'delete while queued: still 404 later', status => 404);
    @left = store_files($qid);
    ok(!@left, 'delete while queued: it never ran, nothing in the store')
        or diag("left: @left");
}

{
    my $name = 'delete';
    my $id = new_podcast($ng, { segments => [ { speaker => 'Del',
                                  text => 'This episode will be deleted.' } ],
                                format => 'wav' }, $name);
    completed($ng, $id, $name);
    ok(-f "$STORE/jobs/$id.json" && -f "$STORE/audio/$id.wav",
       "$name: record and episode in the store");
    my ($d) = request($ng, 'DELETE', "/v1/podcasts/$id");
    is($d->{status}, 204, "$name: 204");
    $GONE{$id} = 1;
    error_ok((get($ng, "/v1/podcasts/$id"))[0], "$name: GET then", status => 404,
             code => 'not_found');
    error_ok((get($ng, "/v1/podcasts/$id/audio"))[0], "$name: audio then", status => 404);
    error_ok((get($ng, "/v1/podcasts/$id/transcript.vtt"))[0],
             "$name: transcript.vtt then", status => 404);
    error_ok((get($ng, "/v1/podcasts/$id/transcript.json"))[0],
             "$name: transcript.json then", status => 404);
    my @left = store_files($id);
    ok(!@left, "$name: record, episode and lock gone from the store")
        or diag("left: @left");
    error_ok((request($ng, 'DELETE', "/v1/podcasts/$id"))[0],
             "$name: DELETE again", status => 404);
    my ($ids) = list_all($ng, 100);
    ok(!grep({ $_ eq $id } @$ids), "$name: not in the list");
}

# ---- 11. bad input -----------------------------------------------------------
#
# Every request refused with a JSON error is a block after __DATA__.  Here:
# what is accepted, and what must not touch a job.

{
    # no Content-Type at all is taken as JSON (ngx_http_podgen_check_json_body)
    my ($nct, $jn) = post_podcast($ng, $JSON->encode({ segments => [ { speaker => 'N',
                                       text => 'No content type here.' } ] }),
                                  headers => { 'Content-Type' => undef });
    is($nct->{status}, 202, 'no Content-Type: taken as JSON, 202');
    if ($jn && $jn->{id}) {
        completed($ng, $jn->{id}, 'no Content-Type');
        $COMPLETED{ $jn->{id} } = 'mp3';
    }
    my ($cs) = post_podcast($ng, $JSON->encode({ segments => [ { speaker => 'N',
                                     text => 'No content type here.' } ] }),
                            headers => { 'Content-Type' => 'Application/JSON; charset=utf-8' });
    is($cs->{status}, 202, 'Content-Type Application/JSON; charset=utf-8: 202');
    if (my $jc = jdecode($cs->{body})) {
        completed($ng, $jc->{id}, 'Content-Type with charset');
        $COMPLETED{ $jc->{id} } = 'mp3';
    }

    # a POST to a job's id and a DELETE of its audio are 405s (blocks);
    # they leave the job alone
    request($ng, 'POST', "/v1/podcasts/$FIRST", body => '{"topic":"tea"}',
            headers => \%CT);
    request($ng, 'DELETE', "/v1/podcasts/$FIRST/audio");
    my ($still) = get($ng, "/v1/podcasts/$FIRST");
    is($still->{status}, 200, 'the job is still there after all that');
}

# ---- 4. a fast shutdown in the middle of a job; the next start completes it --

my $RESUMED;
{
    my $name = 'restart';
    my $id = $RESUMED = new_podcast($ng, { source_text => source('source-bread.txt'),
                                           length => 'long', speed => 1.1,
                                           hosts => \@HOSTS, format => 'mp3' }, $name);
    my $st = wait_job($ng, $id, 30, until => sub {
        ($_[0]{status} // '') eq 'running' && ($_[0]{progress}{done} // 0) >= 3
    });
    ok($st->{status} eq 'running' && $st->{progress}{done} < $st->{progress}{total},
       "$name: running ($st->{progress}{done}/$st->{progress}{total}) when "
       . 'nginx is stopped');

    # the log of the first run is checked before it goes on
    my @bad = $ng->check_error_log;
    ok(!@bad, 'first run: error log clean') or diag(join "\n", @bad);

    my $master = $ng->master_pid;
    my @workers = $ng->worker_pids;
    kill 'TERM', $master;
    my $deadline = time + 15;
    sleep 0.05 while time < $deadline
        && grep { Podgen::Test::_pid_alive($_) } $master, @workers;
    ok(!grep({ Podgen::Test::_pid_alive($_) } $master, @workers),
       "$name: nginx stopped by SIGTERM (fast shutdown)");

    my $rec = record_on_disk($id);
    ok($rec && $rec->{status} =~ /^(?:queued|running)$/,
       "$name: the record on disk says " . ($rec->{status} // 'nothing'));
    ok(-e "$STORE/locks/$id", "$name: its lock file stays");
    my @bad_log = grep { /\[(?:alert|crit|emerg)\]/ } split /\n/, $ng->error_log;
    ok(!@bad_log, "$name: the fast shutdown logs no alert")
        or diag(join "\n", @bad_log);

    $ng->mark_error_log;
    my $t0 = time;
    $ng->start;
    my $moved = wait_job($ng, $id, 10, until => sub {
        ($_[0]{progress}{done} // 0) > 0 || ($_[0]{status} // '') eq 'completed'
    });
    my $dt = time - $t0;
    my $log = $ng->error_log_since_mark;
    like($log, qr/podgen: job "\Q$id\E" resumed/, "$name: the job is resumed");
    ok($dt < 8, sprintf("$name: taken up %.1f s after the start", $dt));
    my $done = completed($ng, $id, $name, 90);
    check_episode($ng, $id, 'mp3', $name, hosts => \@HOSTS);
    ok(!-e "$STORE/locks/$id", "$name: no lock left once it is completed");
    my $resumed = () = $log =~ /podgen: job "pod_[0-9a-f]+" resumed/g;
    is($resumed, 1, "$name: only that job was unfinished");
    $COMPLETED{$id} = 'mp3';

    my ($ids) = list_all($ng, 100);
    my %have = map { $_ => 1 } @$ids;
    ok(!grep({ !$have{$_} } keys %COMPLETED),
       "$name: every completed job is still in the library");
}

$ng->stop;
{
    my @bad = $ng->check_error_log(1);
    ok(!@bad, 'second run: error log clean') or diag(join "\n", @bad);
}

# ---- 12. two workers, the same store; 5. the feed ----------------------------

my $closed = free_port();
my $ng2 = Podgen::Test::Nginx->new(
    workers => 2,
    http_config => "podgen_store $STORE;\n$LOG_FORMAT\n"
                 . "podgen_llm http://127.0.0.1:$closed/v1 retries=0 timeout=2s;\n"
                 . "podgen_llm_fallback off;",
    config => $LOCATIONS);
$ng2->start;

my ($RUNNING, $FAILED);
{
    my $name = 'two workers';
    $RUNNING = new_podcast($ng2, { source_text => source('source-history.txt'),
                                   length => 'long', speed => 0.9,
                                   engine => 'builtin', format => 'flac' }, $name);
    $FAILED = new_podcast($ng2, { topic => 'The history of tea', engine => 'llm' },
                          'llm down');
    my $pids_log = $ng2->prefix . '/logs/pids.log';
    my $before = -s $pids_log // 0;
    my @seen;
    my @bad;
    my $rank = { queued => 0, running => 1, completed => 2, failed => 2 };
    for my $i (1 .. 20) {
        my ($r, $j) = get($ng2, "/v1/podcasts/$RUNNING");
        if ($r->{status} != 200 || !$j) {
            push @bad, "GET $i: $r->{status}";
            next;
        }
        my ($v) = ($r->{headers}{etag} // '') =~ /-(\d+)"$/;
        push @seen, [ $rank->{ $j->{status} } // -1, $j->{progress}{done},
                      $v // -1, $j->{status} ];
        sleep 0.02;
    }
    ok(!@bad, "$name: 20 GETs, all 200") or diag("@bad");
    my @backwards = grep {
        $seen[$_][0] < $seen[$_ - 1][0]
        || $seen[$_][1] < $seen[$_ - 1][1]
        || $seen[$_][2] < $seen[$_ - 1][2]
    } 1 .. $#seen;
    ok(!@backwards, "$name: status, progress and version never go back")
        or diag(join ' ', map { "$_->[3]:$_->[1]:v$_->[2]" } @seen);
    sleep 0.2;
    my $plog = slurp($pids_log) // '';
    my %pids = map { /^(\d+) 200 GET \/v1\/podcasts\/\Q$RUNNING\E / ? ($1 => 1) : () }
               split /\n/, substr($plog, $before);
    my %workers = map { $_ => 1 } $ng2->worker_pids;
    ok(%pids && !grep({ !$workers{$_} } keys %pids),
       "$name: answered by the workers") or diag(substr($plog, $before));
    note('the GETs were answered by ' . scalar(keys %pids) . ' worker(s)');

    my $f = wait_job($ng2, $FAILED, 30);
    is($f->{status}, 'failed', 'llm down: the job failed');
    ok(ref $f->{error} eq 'HASH' && defined $f->{error}{code}
       && defined $f->{error}{message},
       'llm down: error {code, message}') or diag($JSON->encode($f));
    is($f->{duration_s}, undef, 'llm down: no duration');
    error_ok((get($ng2, "/v1/podcasts/$FAILED/audio"))[0],
             'llm down: audio', status => 409, code => 'not_ready');
}

SKIP: {
    skip 'xmllint is not installed', 1 unless $XMLLINT;
    skip 'no feedparser in /usr/bin/python3', 1 unless $HAVE_FEEDPARSER;

    my $name = 'feed';
    my $fr = request($ng2, 'GET', '/v1/podcasts/feed.xml');
    my $running_now = (get($ng2, "/v1/podcasts/$RUNNING"))[1]{status} // '';
    is($fr->{status}, 200, "$name: 200");
    like($fr->{headers}{'content-type'} // '', qr{^application/rss\+xml},
         "$name: application/rss+xml");
    my ($xst, $xerr) = xmllint($fr->{body});
    is($xst, 0, "$name: xmllint --noout passes") or diag($xerr);
    like($fr->{body}, qr/xmlns:itunes="http:\/\/www\.itunes\.com\/dtds\/podcast-1\.0\.dtd"/,
         "$name: iTunes namespace");
    my $fp = feedparser($fr->{body});
    ok(!$fp->{failed} && !$fp->{bozo}, "$name: feedparser reads it")
        or diag($fp->{failed} // $fp->{error});
    like($fp->{version} // '', qr/^rss20/, "$name: RSS 2.0");
    my %entry = map { ($_->{id} // '') => $_ } @{ $fp->{entries} || [] };
    my @missing = grep { !$entry{$_} } sort keys %COMPLETED;
    ok(!@missing, "$name: every completed episode is there ("
                  . scalar(keys %COMPLETED) . ')')
        or diag("missing: @missing");
    is(scalar keys %entry, scalar keys %COMPLETED, "$name: and nothing else");
    ok(!$entry{$FAILED}, "$name: the failed job is not");
    if ($running_now =~ /^(?:queued|running)$/) {
        ok(!$entry{$RUNNING}, "$name: the running job is not");
    } else {
        pass("$name: (the long job was $running_now before the feed was read)");
    }
    ok(!grep({ $entry{$_} } keys %GONE), "$name: deleted jobs are not");
    my (@bad_len, @bad_type, @bad_href);
    my @pcm_type;
    # podcast apps play mp3 and m4a: those are enclosures; any other
    # format is only a podcast:alternateEnclosure (with the same length,
    # type and link) of an item that has no enclosure
    my %ITEM = map { /<guid[^>]*>([^<]+)<\/guid>/ ? ($1 => $_) : () }
               ($fr->{body} =~ m{<item>.*?</item>}gs);
    for my $id (sort keys %COMPLETED) {
        my $e = $entry{$id} or next;
        my $app = $COMPLETED{$id} =~ /^(?:mp3|m4a)$/;
        my $enc = $e->{enclosures}[0] // {};
        if (!$app) {
            push @bad_type, "$id ($COMPLETED{$id}): an enclosure"
                if @{ $e->{enclosures} || [] };
            my $item = $ITEM{$id} // '';
            my %alt;
            if ($item =~ m{<podcast:alternateEnclosure type="([^"]*)" length="(\d+)"[^>]*>\s*<podcast:source uri="([^"]*)"}) {
                %alt = (type => $1, length => $2, href => $3);
                $alt{href} =~ s/&amp;/&/g;
            }
            $enc = \%alt;
        }
        my $a = request($ng2, 'HEAD', "/v1/podcasts/$id/audio");
        push @bad_len, "$id: " . ($enc->{length} // '') . " vs " . ($a->{headers}{'content-length'} // '?')
            unless defined $enc->{length}
                   && $enc->{length} eq ($a->{headers}{'content-length'} // '')
                   && $enc->{length} == -s "$STORE/audio/$id.$COMPLETED{$id}";
        my $want = $MIME{ $COMPLETED{$id} };
        if ($COMPLETED{$id} eq 'pcm') {
            push @pcm_type, "$id: " . ($enc->{type} // 'none') . " vs audio's "
                            . ($a->{headers}{'content-type'} // '?')
                unless ($enc->{type} // '') eq ($a->{headers}{'content-type'} // '');
        } else {
            push @bad_type, "$id: " . ($enc->{type} // 'none') . " vs $want"
                unless ($enc->{type} // '') eq $want
                       && $want eq ($a->{headers}{'content-type'} // '');
        }
        push @bad_href, "$id: " . ($enc->{href} // 'none')
            unless ($enc->{href} // '') =~ m{^http://[^/]+/v1/podcasts/\Q$id\E/audio$};
    }
    ok(!@bad_len, "$name: enclosure length is the audio's Content-Length")
        or diag(join "\n", @bad_len);
    ok(!@bad_type, "$name: enclosure type is the format's MIME type")
        or diag(join "\n", @bad_type);
    ok(!@pcm_type, "$name: a pcm enclosure has the audio's type")
        or diag(join "\n", @pcm_type);
    ok(!@bad_href, "$name: enclosure url is the audio link")
        or diag(join "\n", @bad_href);
    is($entry{$MARKUP_ID}{title}, $MARKUP_TITLE_OUT,
       "$name: feedparser gets the markup title back unescaped");
    unlike($fr->{body}, qr/<b>|<i>/, "$name: no raw markup in the XML");

    # links are made of the Host header: escaped too
    my $odd = request($ng2, 'GET', '/v1/podcasts/feed.xml',
                      headers => { Host => q{evil"'<x>&y.example} });
    if ($odd->{status} == 200) {
        my ($ost, $oerr) = xmllint($odd->{body});
        is($ost, 0, "$name: an odd Host header: still well-formed XML")
            or diag($oerr);
        my $ofp = feedparser($odd->{body});
        my ($oe) = grep { ($_->{id} // '') eq $FIRST } @{ $ofp->{entries} || [] };
        like($oe->{enclosures}[0]{href} // '', qr{^http://evil"'<x>&y\.example/v1/podcasts/\Q$FIRST\E/audio$},
             "$name: an odd Host header: the enclosure url escaped");
    } else {
        is($odd->{status}, 400, "$name: an odd Host header: 400 from nginx");
    }
}

{
    my $name = 'two workers';
    my $j = completed($ng2, $RUNNING, "$name: the long job", 60);
    check_episode($ng2, $RUNNING, 'flac', "$name: the long job");
}

$ng2->stop;
{
    my @bad = $ng2->check_error_log;
    ok(!@bad, 'two workers: error log clean') or diag(join "\n", @bad);
}

# ---- 11. bad input, as blocks -----------------------------------------------
#
# The blocks refused with a JSON error run on a store of their own, which
# must stay empty; those that make a job first have a store in their
# nginx's prefix ("podgen_store store").

my $BAD_STORE = File::Temp::tempdir('podgen-podcasts-bad-XXXXXX', TMPDIR => 1,
                                    CLEANUP => !$ENV{PODGEN_TEST_KEEP});
chmod 0777, $BAD_STORE;
run_blocks(no_done_testing => 1, defaults => {
    http_config => "podgen_store $BAD_STORE;",
    config => 'location /v1/podcasts { podgen_podcasts; }',
    more_headers => 'Content-Type: application/json',
});
ok(-d "$BAD_STORE/jobs", 'bad input: the store the blocks used is there');
my @stored = glob("$BAD_STORE/jobs/*");
is(scalar @stored, 0, 'bad input: no job was stored') or diag("@stored");

note(sprintf('run time %.1f s', time - $T_START));

done_testing();

__DATA__

=== bad input: invalid JSON
--- request
POST /v1/podcasts
{"topic": "tea",
--- api_error: 400

=== bad input: not an object
--- request
POST /v1/podcasts
["topic", "tea"]
--- api_error: 400

=== bad input: a string
--- request
POST /v1/podcasts
"tea"
--- api_error: 400

=== bad input: empty body
--- request
POST /v1/podcasts
--- api_error: 400

=== bad input: nothing to talk about
--- request
POST /v1/podcasts
{}
--- api_error: 400 param=topic

=== bad input: only a format
--- request
POST /v1/podcasts
{"format":"mp3"}
--- api_error: 400 param=topic

=== bad input: topic empty
--- request
POST /v1/podcasts
{"topic":""}
--- api_error: 400 param=topic

=== bad input: topic not a string
--- request
POST /v1/podcasts
{"topic":5}
--- api_error: 400 param=topic

=== bad input: format aac
--- request
POST /v1/podcasts
{"topic":"tea","format":"aac"}
--- api_error: 400 param=format

=== bad input: format xyz
--- request
POST /v1/podcasts
{"topic":"tea","format":"xyz"}
--- api_error: 400 param=format

=== bad input: format a number
--- request
POST /v1/podcasts
{"topic":"tea","format":3}
--- api_error: 400 param=format

=== bad input: speed 0
--- request
POST /v1/podcasts
{"topic":"tea","speed":0}
--- api_error: 400 param=speed

=== bad input: speed 9
--- request
POST /v1/podcasts
{"topic":"tea","speed":9}
--- api_error: 400 param=speed

=== bad input: speed "fast"
--- request
POST /v1/podcasts
{"topic":"tea","speed":"fast"}
--- api_error: 400 param=speed

=== bad input: length xl
--- request
POST /v1/podcasts
{"topic":"tea","length":"xl"}
--- api_error: 400 param=length

=== bad input: style unknown
--- request
POST /v1/podcasts
{"topic":"tea","style":"rant"}
--- api_error: 400 param=style

=== bad input: segments []
--- request
POST /v1/podcasts
{"segments":[]}
--- api_error: 400 param=segments

=== bad input: segments not an array
--- request
POST /v1/podcasts
{"segments":"Hello."}
--- api_error: 400 param=segments

=== bad input: segments of strings
--- request
POST /v1/podcasts
{"segments":["Hello."]}
--- api_error: 400 code=invalid_type param=segments[0]

=== bad input: a segment without text
--- request
POST /v1/podcasts
{"segments":[{"speaker":"A"}]}
--- api_error: 400 param=segments[0].text

=== bad input: a segment without speaker
--- request
POST /v1/podcasts
{"segments":[{"text":"Hi."}]}
--- api_error: 400 param=segments[0].speaker

=== bad input: a segment with nothing to say
--- request
POST /v1/podcasts
{"segments":[{"speaker":"A","text":"... !"}]}
--- api_error: 400 param=segments[0].text

=== bad input: a speaker who is not a host
--- request
POST /v1/podcasts
{"segments":[{"speaker":"A","text":"Hi."},{"speaker":"Zed","text":"Hello."}],"hosts":[{"name":"A","voice":"alloy"}]}
--- api_error: 400 param=segments[1].speaker

=== bad input: 401 segments
--- request eval
"POST /v1/podcasts\n"
. $JSON->encode({ segments => [ map { { speaker => 'A', text => "Line $_." } } 1 .. 401 ] })
--- api_error: 400 param=segments

=== bad input: a segment of 4,097 bytes (podgen_max_input)
--- request eval
"POST /v1/podcasts\n" . $JSON->encode({ segments => [ { speaker => 'A', text => 'a' x 4097 } ] })
--- api_error: 400 code=string_above_max_length param=segments[0].text

=== bad input: a segment of 2,049 characters in 4,098 bytes (the limit is in bytes)
--- request eval
"POST /v1/podcasts\n" . '{"segments":[{"speaker":"A","text":"' . ("\xc3\xa9" x 2049) . '"}]}'
--- api_error: 400 code=string_above_max_length param=segments[0].text

=== bad input: a speaker of 65 bytes
--- request eval
"POST /v1/podcasts\n" . $JSON->encode({ segments => [ { speaker => 'S' x 65, text => 'Hi.' } ] })
--- api_error: 400 code=invalid_value param=segments[0].speaker

=== limits: 400 segments are accepted
--- http_config
podgen_store store;
--- request eval
"POST /v1/podcasts\n"
. $JSON->encode({ segments => [ map { { speaker => $_ % 2 ? 'A' : 'B', text => 'Yes.' } } 1 .. 400 ] })
--- request_code: 202
--- wait_status: completed
--- wait_timeout: 120
--- timeout: 120
--- response_body_like: "progress":\{"done":400,"total":400\}

=== limits: a segment of 4,096 bytes is accepted
--- http_config
podgen_store store;
--- request eval
"POST /v1/podcasts\n"
. $JSON->encode({ segments => [ { speaker => 'A', text => substr('Tea is good. ' x 400, 0, 4095) . '.' } ] })
--- request_code: 202
--- wait_status: completed
--- wait_timeout: 120
--- timeout: 120

=== bad input: title ""
--- request
POST /v1/podcasts
{"topic":"tea","title":""}
--- api_error: 400 param=title

=== bad input: title of spaces
--- request
POST /v1/podcasts
{"topic":"tea","title":" \n "}
--- api_error: 400 param=title

=== bad input: title of 300 bytes
--- request eval
"POST /v1/podcasts\n" . '{"topic":"tea","title":"' . ('x' x 300) . '"}'
--- api_error: 400 param=title

=== bad input: title not a string
--- request
POST /v1/podcasts
{"topic":"tea","title":[1]}
--- api_error: 400 param=title

=== bad input: unknown host voice
--- request
POST /v1/podcasts
{"topic":"tea","hosts":[{"name":"A","voice":"nobody-at-all"}]}
--- api_error: 400 param=hosts[0].voice

=== bad input: unknown host voice (edited)
--- request
POST /v1/podcasts
{"segments":[{"speaker":"A","text":"Hello there."}],"hosts":[{"name":"A","voice":"nobody-at-all"}]}
--- api_error: 400 param=hosts[0].voice

=== bad input: engine llm, no LLM configured
--- request
POST /v1/podcasts
{"topic":"tea","engine":"llm"}
--- api_error: 400 param=engine

=== bad input: engine unknown
--- request
POST /v1/podcasts
{"topic":"tea","engine":"magic"}
--- api_error: 400 param=engine

=== bad input: Content-Type text/plain
--- request
POST /v1/podcasts
{"topic":"tea"}
--- more_headers
Content-Type: text/plain
--- api_error: 415

=== bad input: Content-Type application/x-www-form-urlencoded
--- request
POST /v1/podcasts
{"topic":"tea"}
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- api_error: 415

=== bad input: Content-Type application/jsonx
--- request
POST /v1/podcasts
{"topic":"tea"}
--- more_headers
Content-Type: application/jsonx
--- api_error: 415

=== list: limit=0
--- request
GET /v1/podcasts?limit=0
--- api_error: 400 param=limit

=== list: limit=101
--- request
GET /v1/podcasts?limit=101
--- api_error: 400 param=limit

=== list: limit=abc
--- request
GET /v1/podcasts?limit=abc
--- api_error: 400 param=limit

=== list: limit=-1
--- request
GET /v1/podcasts?limit=-1
--- api_error: 400 param=limit

=== list: cursor=../x
--- request
GET /v1/podcasts?cursor=../x
--- api_error: 400 param=cursor

=== list: cursor=pod_zz
--- request
GET /v1/podcasts?cursor=pod_zz
--- api_error: 400 param=cursor

=== list: cursor=..%2f..%2fetc%2fpasswd
--- request
GET /v1/podcasts?cursor=..%2f..%2fetc%2fpasswd
--- api_error: 400 param=cursor

=== bad id: pod_zz
--- request
GET /v1/podcasts/pod_zz
--- api_error: 404 code=not_found

=== bad id: upper case
--- request
GET /v1/podcasts/POD_AAAAAAAAAAAAAAAAAAAA
--- api_error: 404

=== bad id: 21 digits
--- request
GET /v1/podcasts/pod_000000000000000000010
--- api_error: 404

=== an id of no job
--- request
GET /v1/podcasts/pod_00000000000000000001
--- api_error: 404 code=not_found

=== an id of no job: audio
--- request
GET /v1/podcasts/pod_00000000000000000001/audio
--- api_error: 404

=== traversal /v1/podcasts/../etc/passwd: 404 or 400, no file
--- request
GET /v1/podcasts/../etc/passwd
--- error_code_like: ^40[04]$
--- response_body_unlike: root:

=== traversal /v1/podcasts/%2e%2e/%2e%2e/etc/passwd: 404 or 400, no file
--- request
GET /v1/podcasts/%2e%2e/%2e%2e/etc/passwd
--- error_code_like: ^40[04]$
--- response_body_unlike: root:

=== traversal /v1/podcasts/..%2f..%2f..%2fetc%2fpasswd: 404 or 400, no file
--- request
GET /v1/podcasts/..%2f..%2f..%2fetc%2fpasswd
--- error_code_like: ^40[04]$
--- response_body_unlike: root:

=== traversal /v1/podcasts/pod_0000000000000000000a/..%2f..%2fjobs: 404 or 400, no file
--- request
GET /v1/podcasts/pod_0000000000000000000a/..%2f..%2fjobs
--- error_code_like: ^40[04]$
--- response_body_unlike: root:

=== PUT /v1/podcasts
--- request
PUT /v1/podcasts
--- api_error: 405
--- response_headers
Allow: GET, HEAD, POST

=== DELETE /v1/podcasts/feed.xml
--- request
DELETE /v1/podcasts/feed.xml
--- api_error: 405

=== long poll: wait=abc
--- http_config
podgen_store store;
--- request
POST /v1/podcasts
{"segments":[{"speaker":"A","text":"A job to poll the wrong way."}]}
--- request_code: 202
--- then
GET /v1/podcasts/{id}?wait=abc
--- api_error: 400 param=wait

=== long poll: wait=-1
--- http_config
podgen_store store;
--- request
POST /v1/podcasts
{"segments":[{"speaker":"A","text":"A job to poll the wrong way."}]}
--- request_code: 202
--- then
GET /v1/podcasts/{id}?wait=-1
--- api_error: 400 param=wait

=== a job: /nope
--- http_config
podgen_store store;
--- request
POST /v1/podcasts
{"segments":[{"speaker":"A","text":"Hello there."}]}
--- request_code: 202
--- wait_status: completed
--- then
GET /v1/podcasts/{id}/nope
--- api_error: 404

=== a job: /audio/x
--- http_config
podgen_store store;
--- request
POST /v1/podcasts
{"segments":[{"speaker":"A","text":"Hello there."}]}
--- request_code: 202
--- wait_status: completed
--- then
GET /v1/podcasts/{id}/audio/x
--- api_error: 404

=== a job: trailing slash
--- http_config
podgen_store store;
--- request
POST /v1/podcasts
{"segments":[{"speaker":"A","text":"Hello there."}]}
--- request_code: 202
--- wait_status: completed
--- then
GET /v1/podcasts/{id}/
--- api_error: 404

=== traversal /v1/podcasts/{id}/..%2f..%2f..%2fetc%2fpasswd: 404 or 400, no file
--- http_config
podgen_store store;
--- request
POST /v1/podcasts
{"segments":[{"speaker":"A","text":"Hello there."}]}
--- request_code: 202
--- wait_status: completed
--- then
GET /v1/podcasts/{id}/..%2f..%2f..%2fetc%2fpasswd
--- error_code_like: ^40[04]$
--- response_body_unlike: root:

=== POST /v1/podcasts/{id}
--- http_config
podgen_store store;
--- request
POST /v1/podcasts
{"segments":[{"speaker":"A","text":"Hello there."}]}
--- request_code: 202
--- wait_status: completed
--- then
POST /v1/podcasts/{id}
{"topic":"tea"}
--- api_error: 405
--- response_headers
Allow: GET, HEAD, DELETE

=== DELETE /v1/podcasts/{id}/audio
--- http_config
podgen_store store;
--- request
POST /v1/podcasts
{"segments":[{"speaker":"A","text":"Hello there."}]}
--- request_code: 202
--- wait_status: completed
--- then
DELETE /v1/podcasts/{id}/audio
--- api_error: 405
--- response_headers
Allow: GET, HEAD
