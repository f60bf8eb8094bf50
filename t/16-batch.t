# POST /v1/batch (and its alias /batch/process): many speeches, scripts and
# podcasts in one request.  The issue's case (50 speech items, 10 of them
# repeats, one bad), exactly-once synthesis seen in /metrics, mixed item
# types whose answers match what their own endpoints answer, async batches
# as jobs polled at /v1/podcasts/bat_..., the alias, every way a batch can
# be malformed (whole-request 400s against per-item 400s), podgen_batch_max
# and a server without podgen_store, and clients that leave mid-batch.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;
use IO::Socket::IP;
use Socket qw(SOL_SOCKET SO_LINGER);
use File::Temp ();
use POSIX ();
use Time::HiRes qw(time sleep);

$SIG{PIPE} = 'IGNORE';

skip_rest('ffmpeg is not installed') unless which('ffmpeg');

my %CT = ('Content-Type' => 'application/json');

# a batch of 50 items takes a while
$Podgen::API::TIMEOUT = 120;

my $LOCATIONS = 'location = /v1/audio/speech { podgen_speech; }
                 location /v1/audio/ { podgen_audio; }
                 location = /v1/scripts { podgen_scripts; }
                 location /v1/podcasts { podgen_podcasts; }
                 location = /v1/batch { podgen_batch; }
                 location = /batch/process { podgen_batch; }
                 location = /metrics { podgen_metrics; }';

# the workers run as another user when the tests run as root
my $STORE = File::Temp::tempdir('podgen-batch-store-XXXXXX', TMPDIR => 1,
                                CLEANUP => !$ENV{PODGEN_TEST_KEEP});
chmod 0777, $STORE;

my $ng = Podgen::Test::Nginx->new(workers => 2,
                                  http_config => "podgen_store $STORE;",
                                  config => $LOCATIONS);
$ng->start;
my @WORKERS = $ng->worker_pids;

# ---- helpers -----------------------------------------------------------------

# a batch item: a speech of this input (and these fields)
sub speech_item {
    my ($input, %f) = @_;
    return { type => 'speech', body => speech_fields(input => $input, %f) };
}

sub batch { my ($n, @items) = @_; post($n, '/v1/batch', { requests => \@items }) }

my $L1_MISS = 'podgen_cache_requests_total{tier="l1",kind="audio",result="miss"}';
my $L1_HIT  = 'podgen_cache_requests_total{tier="l1",kind="audio",result="hit"}';
my $AUDIO_S = 'podgen_tts_audio_seconds_total';
my $GONE    = 'podgen_errors_total{type="client_gone"}';

sub words { my $n = () = $_[0] =~ /\S+/g; $n }

# ---- 1. the issue's case: 50 speech items, 10 repeats, one bad --------------

my @NOUNS = qw(apple river candle mountain harbor violin garden lantern
               meadow pencil window bridge castle forest island kettle
               ladder mirror needle ocean pillow rocket saddle tunnel
               umbrella valley wagon yacht zebra anchor basket cactus
               dolphin engine feather glacier hammer igloo jacket kitten);
my @DISTINCT = map {
    "Item $_ says that the $NOUNS[$_] was seen near the old station today."
} 0 .. 39;
my $BAD = 17;    # this one names a voice that does not exist

my (@items, @orig);    # $orig[$i]: the index of the distinct text at $i
for my $d (0 .. 39) {
    push @items, speech_item($DISTINCT[$d],
                             $d == $BAD ? (voice => 'no-such-voice') : ());
    push @orig, $d;
    if ($d % 4 == 3) {    # repeat items 0, 4, 8, ... 36 (never the bad one)
        push @items, speech_item($DISTINCT[$d - 3]);
        push @orig, $d - 3;
    }
}
is(scalar @items, 50, 'the batch has 50 items');
my %first_at;    # distinct text => position of its first item
$first_at{ $orig[$_] } //= $_ for 0 .. $#orig;

my $m0 = metrics($ng);
my ($r1, $j1) = batch($ng, @items);
my $m1 = metrics($ng);

is($r1->{status}, 200, 'issue batch: 200');
like($r1->{headers}{'content-type'} // '', qr{^application/json\b},
     'issue batch: JSON');
is($j1->{object}, 'batch', 'issue batch: object "batch"');
my @res = @{ $j1->{results} || [] };
is(scalar @res, 50, 'issue batch: 50 results');
is_deeply([ map { $_->{index} } @res ], [ 0 .. 49 ],
          'issue batch: results in request order, index i at position i');
is($j1->{stats}{total}, 50, 'stats.total 50');
is($j1->{stats}{deduplicated}, 10, 'stats.deduplicated 10');
is($j1->{stats}{succeeded}, 49, 'stats.succeeded 49');
is($j1->{stats}{failed}, 1, 'stats.failed 1');
like($j1->{stats}{elapsed_ms} // '', qr/^\d+$/, 'stats.elapsed_ms is a number');

my @fail = grep { ($res[$_]{status} // 0) >= 400 } 0 .. $#res;
my $bad_pos = $first_at{$BAD};
is("@fail", "$bad_pos", 'exactly one failed result: the bad item');
my $be = $res[$bad_pos] || {};
ok(($be->{status} // 0) >= 400 && ($be->{status} // 0) < 500,
   "the bad item has a 4xx status ($be->{status})");
is($be->{error}{param}, 'voice', 'its error names the param "voice"');
like($be->{error}{message} // '', qr/no-such-voice/,
     'its error message names the voice');
ok(!exists $be->{audio_url}, 'the bad item has no audio_url');
is(scalar(grep { ($_->{status} // 0) == 200 } @res), 49, '49 results are 200');
is(scalar(grep { $_->{type} eq 'speech' } @res), 50, 'every result is of type speech');

# repeats: the same URL as their original, flagged
my $dup_ok = 1;
my $ndup = 0;
for my $i (0 .. $#res) {
    my $f = $first_at{ $orig[$i] };
    my $is_dup = $f != $i;
    $ndup++ if $is_dup;
    my $want_flag = $is_dup ? JSON::PP::true : JSON::PP::false;
    if (!JSON::PP::is_bool($res[$i]{deduplicated})
        || !!$res[$i]{deduplicated} != !!$want_flag)
    {
        $dup_ok = 0;
        diag "result $i: deduplicated is " . $JSON->encode($res[$i]{deduplicated});
    }
    next unless $is_dup;
    if (($res[$i]{audio_url} // 'x') ne ($res[$f]{audio_url} // 'y')
        || ($res[$i]{bytes} // -1) != ($res[$f]{bytes} // -2))
    {
        $dup_ok = 0;
        diag "result $i differs from its original $f";
    }
}
is($ndup, 10, '10 repeats in the request');
ok($dup_ok, 'repeats have their original\'s audio_url and bytes, and only '
          . 'they say deduplicated: true');

my %urls = map { ($_->{audio_url} // '') => 1 } grep { $_->{status} == 200 } @res;
is(scalar(keys %urls), 39, '39 distinct audio_urls for 39 distinct good items');

# every URL downloads, with Content-Length == bytes, and is real speech
{
    my ($ok, $dl, $dur_ok) = (1, 0, 1);
    my %dur;
    for my $i (0 .. $#res) {
        my $x = $res[$i];
        next unless $x->{status} == 200;
        if (($x->{audio_url} // '') !~ m{^/v1/audio/[0-9a-f]{64}\.mp3$}) {
            $ok = 0;
            diag "result $i: audio_url " . ($x->{audio_url} // 'none');
            next;
        }
        my $g = request($ng, 'GET', $x->{audio_url});
        if ($g->{status} != 200
            || ($g->{headers}{'content-length'} // -1) != $x->{bytes}
            || length $g->{body} != $x->{bytes})
        {
            $ok = 0;
            diag "result $i: GET $x->{audio_url}: $g->{status}, Content-Length "
               . ($g->{headers}{'content-length'} // 'none')
               . ", body " . length($g->{body}) . ", bytes $x->{bytes}";
            next;
        }
        $dl++;
        my $d = $dur{ $x->{audio_url} } //= audio_duration($g->{body}, 'mp3');
        my $w = words($DISTINCT[ $orig[$i] ]);
        # flite speaks about 3 words a second; a truncated or padded file
        # is far outside this
        if (!defined $d || $d < 0.15 * $w || $d > 0.6 * $w) {
            $dur_ok = 0;
            diag sprintf "result %d: %s s of audio for %d words", $i,
                         $d // 'undecodable', $w;
        }
    }
    ok($ok, 'every audio_url is /v1/audio/<sha256>.mp3 and downloads (200) '
          . 'with Content-Length == bytes');
    is($dl, 49, '49 downloads');
    ok($dur_ok, 'every download decodes to a sensible duration for its words');

    # ---- 2. exactly once, seen in /metrics ----------------------------------

    is($m1->{$L1_MISS} - $m0->{$L1_MISS}, 39,
       'L1 audio misses grew by 39: one per distinct good speech item');
    is($m1->{$L1_HIT} - $m0->{$L1_HIT}, 0, 'and no L1 hits (all were cold)');
    my $sum = 0;
    $sum += $_ for values %dur;
    my $made = $m1->{$AUDIO_S} - $m0->{$AUDIO_S};
    ok(abs($made - $sum) < 0.1 * $sum,
       sprintf('synthesized %.1f s of audio: the 39 distinct files (%.1f s), '
               . 'not the 49 results', $made, $sum));
}

# the same batch again: every good item is a cache hit, nothing is made
{
    my $a0 = metrics($ng);
    my ($r, $j) = batch($ng, @items);
    my $a1 = metrics($ng);
    is($r->{status}, 200, 'again: 200');
    my @g = grep { $_->{status} == 200 } @{ $j->{results} || [] };
    is(scalar(grep { $_->{cached} } @g), 49, 'again: 49 results say cached: true');
    is($a1->{$L1_MISS} - $a0->{$L1_MISS}, 0, 'again: no L1 audio miss');
    is($a1->{$L1_HIT} - $a0->{$L1_HIT}, 39, 'again: 39 L1 audio hits');
    is($a1->{$AUDIO_S} - $a0->{$AUDIO_S}, 0, 'again: no audio synthesized');
    is_deeply([ map { $_->{audio_url} } @{ $j->{results} || [] } ],
              [ map { $_->{audio_url} } @res ], 'again: the same URLs');
}

# ---- 3. mixed types ----------------------------------------------------------

my $BREAD = do {
    my $f = repo_root() . '/t/data/source-bread.txt';
    open my $fh, '<:raw', $f or die "$f: $!";
    local $/;
    <$fh>;
};

my $SCRIPT_BODY  = { source_text => $BREAD, length => 'short',
                     engine => 'builtin' };
my $PODCAST_BODY = { topic => 'Why bread rises', length => 'short',
                     engine => 'builtin', format => 'mp3' };
my $MIX_SPEECH   = speech_fields(input => 'A mixed batch speaks this sentence.',
                                 voice => 'slt');

{
    my ($r, $j) = batch($ng,
        { type => 'script',  body => $SCRIPT_BODY },
        { type => 'speech',  body => $MIX_SPEECH },
        { type => 'podcast', body => $PODCAST_BODY });
    is($r->{status}, 200, 'mixed: 200');
    my ($s, $a, $p) = @{ $j->{results} || [] };
    is_deeply([ map { $_->{type} // '' } $s, $a, $p ],
              [ qw(script speech podcast) ], 'mixed: types in order');
    is_deeply([ map { $_->{status} // 0 } $s, $a, $p ], [ 200, 200, 202 ],
              'mixed: statuses 200, 200, 202');
    is_deeply($j->{stats}, { %{ $j->{stats} || {} }, total => 3,
                             succeeded => 3, failed => 0, deduplicated => 0 },
              'mixed: stats 3 succeeded');

    # the script: segments, and what POST /v1/scripts answers
    my $sb = $s->{body} || {};
    ok(ref $sb->{segments} eq 'ARRAY' && @{ $sb->{segments} } >= 2,
       'mixed: the script body has segments');
    ok(!grep({ !length($_->{speaker} // '') || !length($_->{text} // '') }
             @{ $sb->{segments} || [] }),
       'mixed: every segment has a speaker and text');
    my ($sr, $sj) = post($ng, '/v1/scripts', $SCRIPT_BODY);
    is($sr->{status}, 200, 'mixed: POST /v1/scripts with the same body: 200');
    is($sr->{headers}{'x-podgen-cache'}, 'HIT-L1',
       'mixed: POST /v1/scripts finds the script the batch made');
    my %x = %{ $sj || {} };
    my %y = %$sb;
    delete @x{qw(cached)};
    delete @y{qw(cached)};
    is_deeply(\%y, \%x, 'mixed: the script body is what /v1/scripts answers');

    # the speech: the very artifact POST /v1/audio/speech makes
    my $sp = request($ng, 'POST', '/v1/audio/speech',
                     body => $JSON->encode($MIX_SPEECH), headers => \%CT);
    is($sp->{headers}{'x-podgen-cache'}, 'HIT-L1',
       'mixed: POST /v1/audio/speech of the same body is a hit');
    is($sp->{headers}{'x-podgen-audio-url'}, $a->{audio_url},
       'mixed: and its X-Podgen-Audio-Url is the item\'s audio_url');
    is(length $sp->{body}, $a->{bytes}, 'mixed: same number of bytes');

    # the podcast: a job that completes
    my $pb = $p->{body} || {};
    like($pb->{id} // '', qr/^pod_[0-9a-f]+$/, 'mixed: the podcast item is a job');
    like($pb->{status} // '', qr/^(?:queued|running)$/, 'mixed: queued or running');
    is($pb->{links}{self}, "/v1/podcasts/$pb->{id}", 'mixed: links.self');
    my $job = wait_job($ng, "/v1/podcasts/$pb->{id}", 180);
    is($job->{status}, 'completed', 'mixed: the podcast job completes')
        or diag $JSON->encode($job);
    cmp_ok($job->{duration_s} // 0, '>', 5, 'mixed: with a duration');
    my $au = request($ng, 'GET', "/v1/podcasts/$pb->{id}/audio", timeout => 60);
    is($au->{status}, 200, 'mixed: the episode downloads');
    my $ad = audio_duration($au->{body}, 'mp3') // 0;
    ok(abs($ad - ($job->{duration_s} // 0)) < 1,
       "mixed: the episode decodes, $ad s");
}

# ---- 4. async -----------------------------------------------------------------

my @ASYNC = (
    speech_item('The first async sentence is this one.'),
    speech_item('The second async sentence comes next.'),
    speech_item('The first async sentence is this one.'),          # repeat
    speech_item('This one asks for a voice nobody has.', voice => 'zork'),
    { type => 'script', body => { topic => 'Async batches', length => 'short',
                                  engine => 'builtin' } },
    { type => 'nonsense', body => {} },
);

{
    my ($r, $j) = post($ng, '/v1/batch', { requests => \@ASYNC,
                                           async => JSON::PP::true });
    is($r->{status}, 202, 'async: 202');
    my $loc = job_path($r->{headers}{location});
    like($loc, qr{^/v1/podcasts/bat_[0-9a-f]+$}, 'async: Location /v1/podcasts/bat_...');
    is($j->{id}, ($loc =~ m{/([^/]+)$})[0], 'async: the body names the job');
    like($j->{status} // '', qr/^(?:queued|running|completed)$/,
         'async: status ' . ($j->{status} // 'none'));

    my $job = wait_job($ng, $loc, 120);
    is($job->{status}, 'completed', 'async: the job completes')
        or diag $JSON->encode($job);
    is($job->{progress}{total}, 6, 'async: progress.total is the item count');
    is($job->{progress}{done}, $job->{progress}{total},
       'async: progress done == total at the end');
    my $ar = $job->{results} || {};
    is($ar->{object}, 'batch', 'async: results is a batch object');

    # the same batch, sync: the same answers, the same shape
    my ($sr, $sj) = batch($ng, @ASYNC);
    is($sr->{status}, 200, 'async vs sync: the sync batch answers 200');
    my @a = @{ $ar->{results} || [] };
    my @s = @{ $sj->{results} || [] };
    is(scalar @a, 6, 'async: 6 results');
    is_deeply([ map { [ sort keys %$_ ] } @a ], [ map { [ sort keys %$_ ] } @s ],
              'async: every result has the keys the sync reply has');
    my $proj = sub {
        my ($x) = @_;
        return [ map {
            [ $_->{index}, $_->{type}, $_->{status}, $_->{deduplicated} ? 1 : 0,
              $_->{audio_url} // '', $_->{bytes} // '',
              $_->{error} ? $_->{error}{code} . '/' . ($_->{error}{param} // '') : '',
              $_->{body} ? $_->{body}{key} // '' : '' ]
        } @$x ];
    };
    is_deeply($proj->(\@a), $proj->(\@s),
              'async: index, type, status, urls, bytes, errors, script keys '
              . 'are those of the sync reply');
    is_deeply([ sort keys %{ $ar->{stats} || {} } ],
              [ sort keys %{ $sj->{stats} || {} } ], 'async: the same stats keys');
    is_deeply([ @{ $ar->{stats} || {} }{qw(total succeeded failed deduplicated)} ],
              [ 6, 4, 2, 1 ], 'async: stats 6 total, 4 ok, 2 failed, 1 deduplicated');
    my $g = request($ng, 'GET', $a[1]{audio_url} // '/v1/audio/none');
    is($g->{status}, 200, 'async: an audio_url of the async results downloads');
}

# ---- 5. the alias -------------------------------------------------------------

{
    my @b = (speech_item('The alias speaks this sentence.'),
             { type => 'script', body => { topic => 'Aliases', engine => 'builtin' } },
             speech_item('The alias speaks this sentence.'),
             speech_item('Bad speed.', speed => 99));
    my ($r1, $j1) = post($ng, '/batch/process', { requests => \@b });
    my ($r2, $j2) = post($ng, '/v1/batch', { requests => \@b });
    is($r1->{status}, 200, 'alias: /batch/process answers 200');
    is($j1->{object}, 'batch', 'alias: a batch object');
    my $strip = sub {
        my ($j) = @_;
        my $c = $JSON->decode($JSON->encode($j));
        delete $c->{stats}{elapsed_ms};
        for (@{ $c->{results} }) {
            delete $_->{cached};
            delete $_->{body}{cached} if ref $_->{body};
        }
        return $c;
    };
    is_deeply($strip->($j2), $strip->($j1),
              'alias: /v1/batch answers the same (but for cached/elapsed_ms)');
    is_deeply([ map { $_->{status} } @{ $j1->{results} || [] } ],
              [ 200, 200, 200, 400 ], 'alias: per-item statuses');
}

# ---- 6. bad input ---------------------------------------------------------------

# Whole-request errors (the batch is refused), exactly podgen_batch_max
# (100) items, methods and content types: blocks after __DATA__.

# per-item errors: the batch is 200 and the item says what is wrong
my @per = (
    [ 'item not an object',  5,                                  'requests[]', 'invalid_type' ],
    [ 'item an array',       [ 'speech', {} ],                   'requests[]', 'invalid_type' ],
    [ 'item null',           undef,                              'requests[]', 'invalid_type' ],
    [ 'type missing',        { body => speech_fields(input => 'No type.') }, 'type', 'missing_required_parameter' ],
    [ 'type not a string',   { type => 1, body => speech_fields(input => 'Numeric type.') },
                                                                 'type', 'invalid_type' ],
    [ 'type unknown',        { type => 'video', body => {} },    'type', 'invalid_value' ],
    [ 'type in capitals',    { type => 'SPEECH', body => speech_fields(input => 'Capitals.') },
                                                                 'type', 'invalid_value' ],
    [ 'body missing',        { type => 'speech' },               'body', 'missing_required_parameter' ],
    [ 'body not an object',  { type => 'speech', body => 'Hello.' }, 'body', 'invalid_type' ],
    [ 'body an array',       { type => 'script', body => [ 1 ] }, 'body', 'invalid_type' ],
    # bodies their endpoint refuses: the item answers what the endpoint does
    [ 'speech without input', { type => 'speech', body => { model => 'tts-1', voice => 'alloy' } },
      undef, undef, '/v1/audio/speech' ],
    [ 'speech with m4a',     speech_item('Advanced audio.', response_format => 'm4a'),
      undef, undef, '/v1/audio/speech' ],
    [ 'speech too fast',     speech_item('Too fast.', speed => 4.5),
      undef, undef, '/v1/audio/speech' ],
    [ 'speech with an unknown voice', speech_item('Nobody.', voice => 'nobody'),
      undef, undef, '/v1/audio/speech' ],
    [ 'script with nothing to say', { type => 'script', body => { engine => 'builtin' } },
      undef, undef, '/v1/scripts' ],
    [ 'script with a bad style', { type => 'script', body => { topic => 'x', style => 'rap' } },
      undef, undef, '/v1/scripts' ],
    [ 'podcast with a bad format', { type => 'podcast', body => { topic => 'x', format => 'midi' } },
      undef, undef, '/v1/podcasts' ],
);
{
    my $good = speech_item('The one good item of a bad batch.');
    my @b = ($good, map { $_->[1] } @per);
    my ($r, $j) = post($ng, '/v1/batch', { requests => \@b });
    is($r->{status}, 200, 'per-item errors: the batch itself is 200');
    my @x = @{ $j->{results} || [] };
    is(scalar @x, @b, 'per-item errors: one result per item');
    is($x[0]{status}, 200, 'per-item errors: the good item is made');
    is($j->{stats}{failed}, scalar @per, 'per-item errors: stats.failed');
    is($j->{stats}{succeeded}, 1, 'per-item errors: stats.succeeded 1');
    for my $i (0 .. $#per) {
        my ($name, $item, $param, $code, $endpoint) = @{ $per[$i] };
        my $e = $x[$i + 1] || {};
        is($e->{index}, $i + 1, "$name: index");
        is($e->{status}, 400, "$name: item status 400");
        ok(ref $e->{error} eq 'HASH' && length($e->{error}{message} // ''),
           "$name: an error object with a message");
        is($e->{error}{param}, $param, "$name: param " . ($param // 'null'))
            if defined $param;
        is($e->{error}{code}, $code, "$name: code $code") if defined $code;
        ok(!exists $e->{body} && !exists $e->{audio_url}, "$name: no answer");
        if ($endpoint) {
            my ($er, $ej) = post($ng, $endpoint, $item->{body});
            is($e->{status}, $er->{status}, "$name: the status $endpoint answers");
            is_deeply($e->{error}, $ej && $ej->{error},
                      "$name: the error object $endpoint answers")
                or diag "$endpoint: $er->{body}";
        }
    }
    # an item whose type is right but whose body is not: its type is known
    is($x[8]{type}, 'speech', 'body missing: the result still says type speech');
    is($x[10]{type}, 'script', 'body an array: the result still says type script');
}

# ---- single flight across requests -------------------------------------------

# SPEC: N identical concurrent cold requests -> exactly one generation.  Two
# batches and a POST /v1/audio/speech asking for the same audio at once.
{
    my $text = join ' ', map { "Sentence $_ of the audio everybody wants." } 1 .. 10;
    my $item = speech_item($text);
    my $body = $JSON->encode({ requests => [ $item ] });
    my $dir = File::Temp::tempdir(CLEANUP => 1);
    my $a0 = metrics($ng);
    my @kids;
    for my $k (0 .. 2) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            my $r = $k < 2
                ? request($ng, 'POST', '/v1/batch', body => $body,
                          headers => \%CT, timeout => 60)
                : request($ng, 'POST', '/v1/audio/speech',
                          body => $JSON->encode($item->{body}),
                          headers => \%CT, timeout => 60);
            open my $fh, '>', "$dir/$k" or POSIX::_exit(1);
            print $fh $r->{status};
            close $fh;
            POSIX::_exit(0);
        }
        push @kids, $pid;
    }
    waitpid $_, 0 for @kids;
    my @st = map {
        my $st = 0;
        if (open my $fh, '<', "$dir/$_") { $st = <$fh> // 0; close $fh }
        $st;
    } 0 .. 2;
    is("@st", '200 200 200', 'single flight: the three requests answer 200');
    my $a1 = metrics($ng);
    my $one = audio_duration(request($ng, 'POST', '/v1/audio/speech',
                                     body => $JSON->encode($item->{body}),
                                     headers => \%CT)->{body}, 'mp3') // 0;
    my $made = $a1->{$AUDIO_S} - $a0->{$AUDIO_S};
    # (a regression test: batch items once read L1 without taking the
    # in-flight marker, and each of the three synthesized)
    ok($one > 5 && abs($made - $one) < 0.1 * $one,
       sprintf('single flight: two batches and a speech request for the same '
               . 'audio synthesize it once (%.1f s made for a %.1f s file; '
               . '%d L1 misses)', $made, $one,
               $a1->{$L1_MISS} - $a0->{$L1_MISS}));

    # in one batch: two bodies that differ only in member order are the same
    # request (the same audio key)
    my $t = 'Member order does not change what is said here, twice over.';
    my $b1 = '{"model":"tts-1","input":"' . $t . '","voice":"alloy"}';
    my $b2 = '{"voice":"alloy","input":"' . $t . '","model":"tts-1"}';
    my $m0 = metrics($ng);
    my ($r, $j) = post($ng, '/v1/batch', '{"requests":[{"type":"speech","body":'
                       . $b1 . '},{"type":"speech","body":' . $b2 . '}]}');
    my $m1 = metrics($ng);
    is($j->{results}[0]{audio_url}, $j->{results}[1]{audio_url},
       'member order: the same audio_url');
    # not deduplicated (items are compared as text), but single flight
    # makes the second wait for the first
    is($m1->{$L1_MISS} - $m0->{$L1_MISS}, 1,
       'member order: the audio is made once');
}

# ---- 7. clients that leave mid-batch ---------------------------------------------

sub leave_mid_batch {
    my ($body, %o) = @_;
    my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $ng->port,
                                Proto => 'tcp') or die "connect: $@";
    binmode $s;
    my $req = "POST /v1/batch HTTP/1.1\r\nHost: localhost\r\n"
            . "Content-Type: application/json\r\nContent-Length: "
            . length($body) . "\r\n\r\n" . $body;
    $req = substr $req, 0, $o{cut} if $o{cut};
    my $off = 0;
    while ($off < length $req) {
        my $n = syswrite $s, $req, 65536, $off;
        die "write: $!" unless defined $n;
        $off += $n;
    }
    sleep $o{after} // 0.3;
    setsockopt $s, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0) if $o{rst};
    close $s;
}

{
    # 30 distinct four-sentence speeches, a script and a podcast
    my @big = map {
        my $n = $_;
        speech_item(join ' ', (map { "Part $_ of long item $n." } 1 .. 3),
                    "Long item $n was abandoned by its client.")
    } 1 .. 30;
    push @big, { type => 'script', body => { source_text => $BREAD,
                                             engine => 'builtin' } },
               { type => 'podcast', body => { topic => 'Leaving early',
                                              length => 'short',
                                              engine => 'builtin' } };
    my $body = $JSON->encode({ requests => \@big });
    my $g0 = metrics($ng)->{$GONE} // 0;

    $ng->mark_error_log;
    leave_mid_batch($body, after => 0.3);             # FIN while items run
    leave_mid_batch($body, after => 0.05, rst => 1);  # RST right away
    leave_mid_batch($body, after => 0.1, cut => 2000);  # half a body
    leave_mid_batch($JSON->encode({ requests => \@big, async => JSON::PP::true }),
                    after => 0, rst => 1);            # async, gone at once
    sleep 1;

    cmp_ok((metrics($ng)->{$GONE} // 0) - $g0, '>=', 1,
           'client gone: podgen counted the clients that left');
    is_deeply([ $ng->worker_pids ], \@WORKERS, 'client gone: no worker died');

    # the same batch from a client that stays gets every answer
    my ($r, $j) = post($ng, '/v1/batch', $body, timeout => 180);
    is($r->{status}, 200, 'after clients left: the same batch answers 200');
    is($j->{stats}{succeeded}, 32, 'after clients left: all 32 items succeed')
        or diag $JSON->encode($j->{stats});
    my $u = $j->{results}[7]{audio_url} // '/v1/audio/none';
    my $a = request($ng, 'GET', $u);
    is($a->{status}, 200, 'after clients left: its audio downloads');
    my $d = audio_duration($a->{body}, 'mp3') // 0;
    cmp_ok($d, '>', 3, "after clients left: a whole four-sentence file ($d s)");
    my @bad = $ng->check_error_log(1);
    ok(!@bad, 'client gone: no alert/crit in the error log') or diag join "\n", @bad;
}

# ---- error messages stay valid UTF-8 ----------------------------------------------

{
    # the unknown-voice message quotes the name cut at 64 bytes ('%.64s'),
    # here in the middle of the two bytes of the e-acute
    my $voice = ('a' x 63) . "\x{e9}bbb";
    my ($r, $j) = batch($ng, speech_item('A good item beside a bad one.'),
                        speech_item('The voice name is long.', voice => $voice));
    is($r->{status}, 200, 'long voice name: the batch answers 200');
    # (a regression test: the reply held invalid UTF-8, and a strict JSON
    # client lost every result of the batch, not only the bad item)
    ok(defined $j, 'long voice name: the whole batch reply is valid JSON (UTF-8)')
        or diag 'bytes around the cut: '
              . join ' ', map { sprintf '%02x', ord }
                split //, substr($r->{body}, index($r->{body}, 'aaaaa') + 60, 8);
}

# ---- async batches that finish at once -----------------------------------------------

{
    # everything cached or bad: the job finishes while it starts
    my ($r, $j) = post($ng, '/v1/batch', { requests => \@ASYNC,
                                           async => JSON::PP::true });
    is($r->{status}, 202, 'async, all cached: 202');
    my $job = wait_job($ng, $r->{headers}{location}, 60);
    is($job->{status}, 'completed', 'async, all cached: completed');
    is(scalar(grep { $_->{cached} } @{ $job->{results}{results} || [] }), 4,
       'async, all cached: the 4 good items say cached');
    is_deeply($job->{progress}, { done => 6, total => 6 },
              'async, all cached: progress 6 of 6');

    ($r, $j) = post($ng, '/v1/batch', { async => JSON::PP::true,
                                        requests => [ 1, { type => 'x' } ] });
    is($r->{status}, 202, 'async, all bad: 202');
    $job = wait_job($ng, $r->{headers}{location}, 60);
    is($job->{status}, 'completed', 'async, all bad: the job completes');
    is_deeply([ @{ $job->{results}{stats} || {} }{qw(total succeeded failed)} ],
              [ 2, 0, 2 ], 'async, all bad: 2 failed');
}

# ---- stopping nginx with batches in flight (podgen_batch_max: blocks) ----------

{
    my $small = Podgen::Test::Nginx->new(
        http_config => 'podgen_batch_max 5;',
        config => 'location = /v1/batch { podgen_batch; }
                   location /v1/podcasts { podgen_podcasts; }
                   location /v1/audio/ { podgen_audio; }');
    $small->start;

    # a long async batch and a long sync one still running when nginx stops
    my @long = map {
        my $n = $_;
        speech_item(join ' ', map { "Sentence $_ of the interrupted item $n." } 1 .. 8)
    } 1 .. 5;
    my ($ra) = post($small, '/v1/batch', { requests => \@long,
                                           async => JSON::PP::true });
    is($ra->{status}, 202, 'stop: an async batch is running');
    my $dir = File::Temp::tempdir(CLEANUP => 1);
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        my $r = request($small, 'POST', '/v1/batch', timeout => 30, headers => \%CT,
                        body => $JSON->encode({ requests => [ reverse @long ] }));
        my $j = eval { $JSON->decode($r->{body}) } || {};
        open my $fh, '>', "$dir/st" or POSIX::_exit(1);
        print $fh "$r->{status} " . ($j->{stats}{succeeded} // -1);
        close $fh;
        POSIX::_exit(0);
    }
    sleep 0.3;
    my $t0 = time;
    $small->stop;
    my $took = time - $t0;
    waitpid $pid, 0;
    cmp_ok($took, '<', 10, sprintf('stop: a graceful stop with batches in flight '
                                   . 'takes %.1f s', $took));
    my $st = do { open my $fh, '<', "$dir/st" or die; local $/; <$fh> };
    is($st, '200 5', 'stop: the sync batch in flight is answered whole (graceful)');
    my @bad = $small->check_error_log;
    ok(!@bad, 'stop: error log clean') or diag join "\n", @bad;
}

# ---- 8. the log ------------------------------------------------------------------

is_deeply([ $ng->worker_pids ], \@WORKERS, 'the workers never restarted');
$ng->stop;
my @bad = $ng->check_error_log;
ok(!@bad, 'error log clean: no alert/crit/emerg/sanitizer reports')
    or diag join "\n", @bad;

# ---- 6. bad input, as blocks --------------------------------------------------

run_blocks(defaults => {
    http_config => 'podgen_store store;',
    config => $LOCATIONS,
    more_headers => 'Content-Type: application/json',
});

__DATA__

=== bad batch (not JSON)
--- request
POST /v1/batch
this is not json
--- api_error: 400 code=invalid_json param=null
--- response_body_unlike: "results"\s*:

=== bad batch (JSON but not an object)
--- request
POST /v1/batch
[{"type":"speech"}]
--- api_error: 400 code=invalid_json param=null
--- response_body_unlike: "results"\s*:

=== bad batch (truncated JSON)
--- request
POST /v1/batch
{"requests":[{"type":"sp
--- api_error: 400 code=invalid_json param=null
--- response_body_unlike: "results"\s*:

=== bad batch (requests missing)
--- request
POST /v1/batch
{"async":false}
--- api_error: 400 code=missing_required_parameter param=requests
--- response_body_unlike: "results"\s*:

=== bad batch (requests not an array)
--- request
POST /v1/batch
{"requests":{"type":"speech"}}
--- api_error: 400 code=invalid_type param=requests
--- response_body_unlike: "results"\s*:

=== bad batch (requests a string)
--- request
POST /v1/batch
{"requests":"speech"}
--- api_error: 400 code=invalid_type param=requests
--- response_body_unlike: "results"\s*:

=== bad batch (requests empty)
--- request
POST /v1/batch
{"requests":[]}
--- api_error: 400 code=invalid_value param=requests
--- response_body_unlike: "results"\s*:

=== bad batch (101 requests)
--- request eval
"POST /v1/batch\n"
. $JSON->encode({ requests => [ (main::speech_item('One of many.')) x 101 ] })
--- api_error: 400 code=batch_too_large param=requests
--- response_body_unlike: "results"\s*:

=== bad batch (async a string)
--- request
POST /v1/batch
{"requests":[{"type":"script","body":{"topic":"x"}}],"async":"yes"}
--- api_error: 400 code=invalid_type param=async
--- response_body_unlike: "results"\s*:

=== bad batch (async a number)
--- request
POST /v1/batch
{"requests":[{"type":"script","body":{"topic":"x"}}],"async":1}
--- api_error: 400 code=invalid_type param=async
--- response_body_unlike: "results"\s*:

=== bad batch (async null)
--- request
POST /v1/batch
{"requests":[{"type":"script","body":{"topic":"x"}}],"async":null}
--- api_error: 400 code=invalid_type param=async
--- response_body_unlike: "results"\s*:

=== async with 101 items: 400, no job
--- request eval
"POST /v1/batch\n"
. $JSON->encode({ requests => [ (main::speech_item('x')) x 101 ],
                  async => JSON::PP::true })
--- error_code: 400

=== 100 items (the default podgen_batch_max): 200, all the same one
--- request eval
"POST /v1/batch\n"
. $JSON->encode({ requests => [ (main::speech_item('A hundred times the same.')) x 100 ] })
--- timeout: 120
--- error_code: 200
--- response_json
{"stats":{"total":100,"deduplicated":99,"succeeded":100}}

=== GET /v1/batch
--- request
GET /v1/batch
--- api_error: 405 code=method_not_allowed
--- response_headers
Allow: POST

=== PUT /v1/batch
--- request
PUT /v1/batch
{"requests":[]}
--- error_code: 405

=== text/plain
--- request
POST /v1/batch
{"requests":[]}
--- more_headers
Content-Type: text/plain
--- api_error: 415 code=unsupported_media_type

=== no Content-Type: read as JSON, 200
--- request
POST /v1/batch
{"requests":[{"type":"speech","body":{"model":"tts-1","voice":"alloy","response_format":"mp3","input":"No type."}}]}
--- more_headers
--- error_code: 200

=== application/json; charset=utf-8: 200
--- request
POST /v1/batch
{"requests":[{"type":"speech","body":{"model":"tts-1","voice":"alloy","response_format":"mp3","input":"With a charset."}}]}
--- more_headers
Content-Type: application/json; charset=utf-8
--- error_code: 200

=== alias: GET is 405
--- request
GET /batch/process
--- error_code: 405
--- response_headers
Allow: POST

=== alias: an empty batch is 400
--- request
POST /batch/process
{"requests":[]}
--- error_code: 400

=== podgen_batch_max 5: 5 items are fine
--- http_config
podgen_batch_max 5;
--- config
location = /v1/batch { podgen_batch; }
location /v1/podcasts { podgen_podcasts; }
location /v1/audio/ { podgen_audio; }
--- request eval
"POST /v1/batch\n"
. $JSON->encode({ requests => [ map { main::speech_item("Small server sentence $_.") } 1 .. 5 ] })
--- timeout: 120
--- error_code: 200

=== podgen_batch_max 5: 6 items are 400 batch_too_large, the message says 5
--- http_config
podgen_batch_max 5;
--- config
location = /v1/batch { podgen_batch; }
location /v1/podcasts { podgen_podcasts; }
location /v1/audio/ { podgen_audio; }
--- request eval
"POST /v1/batch\n"
. $JSON->encode({ requests => [ (map { main::speech_item("Small server sentence $_.") } 1 .. 5),
                                main::speech_item('And a sixth.') ] })
--- api_error: 400 code=batch_too_large
--- response_body_like: "message"\s*:\s*"[^"]*\b5\b
