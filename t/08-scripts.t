# POST /v1/scripts with the built-in engine (no podgen_llm configured):
# every style, 1 to 6 hosts, the length targets, traceability to the
# source, determinism, the topic-only outline, podgen_max_source, and (in
# the data blocks at the end) one block per way a body can be wrong.

use strict;
use warnings;
use utf8;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;

my %CT = ('Content-Type' => 'application/json');

sub slurp_data {
    my ($name) = @_;
    my $file = repo_root() . "/t/data/$name";
    open my $fh, '<:raw', $file or die "cannot read $file: $!";
    local $/;
    my $d = <$fh>;
    close $fh;
    return $d;
}

my $HISTORY = slurp_data('source-history.txt');

# the source as the module quotes it: whitespace runs collapsed (the file
# is ASCII, so the typographic normalization changes nothing else)
(my $HISTORY_FLAT = $HISTORY) =~ s/\s+/ /g;

sub words { my $n = () = $_[0] =~ /\S+/g; return $n }

sub script_words {
    my ($j) = @_;
    my $n = 0;
    $n += words($_->{text}) for @{ $j->{segments} || [] };
    return $n;
}

# The checks every 200 script reply must pass.
sub script_ok {
    my ($res, $j, $name, %o) = @_;
    my $ok = 1;
    $ok &= is($res->{status}, 200, "$name: 200");
    my $h = $res->{headers};
    $ok &= like($h->{'content-type'} // '', qr{^application/json\b},
                "$name: JSON content type");
    $ok &= is($h->{'x-podgen-engine'}, 'builtin', "$name: X-Podgen-Engine");
    # podgen caches scripts in its shared-memory L1: a repeated request is
    # a hit (cached => 1), a new one a miss (cached => 0), undef: either
    my $hit = ($h->{'x-podgen-cache'} // '') eq 'HIT-L1';
    if (defined $o{cached}) {
        $ok &= is($h->{'x-podgen-cache'}, $o{cached} ? 'HIT-L1' : 'MISS',
                  "$name: X-Podgen-Cache");
    } else {
        $ok &= like($h->{'x-podgen-cache'} // '', qr/^(?:MISS|HIT-L1)$/,
                    "$name: X-Podgen-Cache");
    }
    $ok &= ok(!exists $h->{'x-podgen-fallback'}, "$name: no X-Podgen-Fallback");
    $ok &= like($h->{'x-request-id'} // '', qr/^[0-9a-f]{32}$/,
                "$name: X-Request-Id");
    $ok &= like($h->{'server-timing'} // '', qr/^script;dur=\d+$/,
                "$name: Server-Timing");
    if (!$j) {
        fail("$name: body is JSON");
        diag $res->{body};
        return 0;
    }
    $ok &= like($j->{key} // '', qr/^[0-9a-f]{64}$/, "$name: key is a sha256");
    $ok &= like($j->{id} // '', qr/^scr_[0-9a-z]+$/, "$name: id");
    $ok &= is($j->{engine}, 'builtin', "$name: engine builtin");
    $ok &= ok(JSON::PP::is_bool($j->{cached}) && !!$j->{cached} == $hit,
              "$name: cached " . ($hit ? 'true' : 'false') . ' as the header says');
    $ok &= ok(defined $j->{title} && !ref $j->{title} && length $j->{title},
              "$name: a title");
    my @seg = @{ ref $j->{segments} eq 'ARRAY' ? $j->{segments} : [] };
    $ok &= ok(@seg >= 2, "$name: segments (" . @seg . ")");
    $ok &= ok(!(grep { ref $_ ne 'HASH' || !defined $_->{speaker}
                       || !defined $_->{text} || $_->{text} !~ /\S/ } @seg),
              "$name: every segment has a speaker and non-empty text");
    my %host = map { $_->{name} => 1 } @{ $j->{hosts} || [] };
    my @stray = grep { !$host{ $_->{speaker} // '' } } @seg;
    $ok &= ok(!@stray, "$name: every speaker is a host")
        or diag "stray speakers: " . join ', ', map { $_->{speaker} } @stray;
    my $wc = script_words($j);
    $ok &= is($j->{word_count}, $wc, "$name: word_count counts the words");
    my $d = $j->{estimated_duration_s} // 0;
    $ok &= ok($d > 0 && $d >= $wc * 0.2 && $d <= $wc * 1.0,
              "$name: estimated_duration_s $d is plausible for $wc words");
    diag "response: $res->{status}\n$res->{raw_headers}\n\n"
         . substr($res->{body}, 0, 2000) unless $ok;
    return $ok;
}

# Sentences of the segments (40+ characters) found verbatim in the source.
sub traced_segments {
    my ($j) = @_;
    my $n = 0;
    for my $s (@{ $j->{segments} }) {
        my @sent = grep { length >= 40 }
                   split /(?<=[.!?])\s+/, $s->{text};
        $n++ if grep { index($HISTORY_FLAT, $_) >= 0 } @sent;
    }
    return $n;
}

my $CONFIG = <<'EOF';
location = /v1/scripts { client_max_body_size 4m; podgen_scripts; }
location = /v1/voices { podgen_voices; }
EOF

my $ng = Podgen::Test::Nginx->new(config => $CONFIG);
$ng->start;
$ng->mark_error_log;

# --- styles --------------------------------------------------------------

my %by_style;
for my $style (qw(deep-dive brief debate interview critique)) {
    my ($res, $j) = script($ng, { source_text => $HISTORY, style => $style,
                                  length => 'medium' });
    script_ok($res, $j, "style $style") or next;
    $by_style{$style} = $j;
    my $w = $j->{word_count};
    ok(abs($w - 900) <= 900 * 0.15, "style $style: $w words, medium (900 +-15%)");
    my $traced = traced_segments($j);
    ok($traced >= 5, "style $style: $traced segments quote the source verbatim");
    my @sp = map { $_->{speaker} } @{ $j->{segments} };
    is_deeply([ sort keys %{{ map { $_ => 1 } @sp }} ], [qw(Alex Sam)],
              "style $style: both default hosts speak");
    ok(!(grep { $sp[$_] eq $sp[$_ - 1] } 1 .. $#sp),
       "style $style: nobody speaks twice in a row");
}
{
    my @styles = sort keys %by_style;
    my %seen;
    $seen{ $JSON->encode($by_style{$_}{segments}) }++ for @styles;
    is(scalar keys %seen, scalar @styles, 'the five styles give five different scripts');
    my %keys = map { $by_style{$_}{key} => 1 } @styles;
    is(scalar keys %keys, scalar @styles, 'and five different keys');
    # the style shows in what the hosts say, not only in which sentences
    my %intro = map { $by_style{$_}{segments}[0]{text} => 1 } @styles;
    is(scalar keys %intro, scalar @styles, 'each style opens differently');
    my ($res, $j) = script($ng, { source_text => $HISTORY, length => 'medium' });
    is($j && $j->{key}, $by_style{'deep-dive'}{key}, 'deep-dive is the default style');
}

# --- hosts -----------------------------------------------------------------

my @NAMES = qw(Ada Björn Chiara Dmitri Emeka Fumiko);
my @DEFAULT_VOICES = qw(alloy echo fable nova onyx shimmer);
for my $n (1 .. 6) {
    my @hosts = map { { name => $NAMES[$_ - 1] } } 1 .. $n;
    $hosts[0]{voice} = 'slt';
    $hosts[0]{role} = 'host';
    $hosts[-1]{role} = 'guest' if $n > 1;
    my ($res, $j) = script($ng, { source_text => $HISTORY, length => 'short',
                                  style => 'interview', hosts => \@hosts });
    script_ok($res, $j, "$n host(s)") or next;
    is_deeply([ map { $_->{name} } @{ $j->{hosts} } ], [ @NAMES[0 .. $n - 1] ],
              "$n host(s): the hosts, in order");
    is($j->{hosts}[0]{voice}, 'slt', "$n host(s): a given voice is kept");
    is_deeply([ map { $j->{hosts}[$_]{voice} } 1 .. $n - 1 ],
              [ @DEFAULT_VOICES[1 .. $n - 1] ],
              "$n host(s): hosts without a voice get one") if $n > 1;
    is($j->{hosts}[-1]{role}, 'guest', "$n host(s): role kept") if $n > 1;
    my @sp = map { $_->{speaker} } @{ $j->{segments} };
    my %spoke = map { $_ => 1 } @sp;
    is_deeply([ sort keys %spoke ], [ sort @NAMES[0 .. $n - 1] ],
              "$n host(s): every host speaks");
    if ($n > 1) {
        my @twice = grep { $sp[$_] eq $sp[$_ - 1] } 1 .. $#sp;
        ok(!@twice, "$n hosts: nobody speaks twice in a row")
            or diag "speakers: @sp";
    }
    like($j->{segments}[0]{text}, qr/\Q$NAMES[0]\E/,
         "$n host(s): the first host introduces themself by name");
}
{
    my ($res, $j) = script($ng, { topic => 'Tea', hosts => [
        { name => 'Ada', voice => 'rms' }, { name => 'Bo', voice => 'kal16' },
        { name => 'Cy', voice => 'onyx' } ] });
    is($res->{status}, 200, 'hosts with flite and OpenAI voice names');
    ($res, $j) = script($ng, { topic => 'Tea' });
    is_deeply($j && $j->{hosts}, [ { name => 'Alex', voice => 'alloy', role => 'host' },
                                   { name => 'Sam', voice => 'echo', role => 'expert' } ],
              'default hosts: Alex (alloy) and Sam (echo)');
}

# --- lengths ---------------------------------------------------------------

for my $c ([ length => 'short', 300 ], [ length => 'medium', 900 ],
           [ length => 'long', 2000 ], [ target_words => 150, 150 ],
           [ target_words => 600, 600 ], [ target_words => 1200, 1200 ],
           [ none => undef, 900 ]) {
    my ($k, $v, $want) = @$c;
    my %b = (source_text => $HISTORY);
    $b{$k} = $v if $k ne 'none';
    my $name = $k eq 'none' ? 'no length (medium)' : "$k $v";
    my ($res, $j) = script($ng, \%b);
    script_ok($res, $j, $name) or next;
    my $w = $j->{word_count};
    ok(abs($w - $want) <= $want * 0.15,
       "$name: $w words, within 15% of $want");
}
{
    # target_words wins over length when both are given
    my ($res, $j) = script($ng, { source_text => $HISTORY, length => 'long',
                                  target_words => 300 });
    ok($j && abs($j->{word_count} - 300) <= 45,
       'target_words 300 with length long: ' . ($j ? $j->{word_count} : '?') . ' words');
}

# --- traceability and focus --------------------------------------------------

{
    my ($res, $j) = script($ng, { source_text => $HISTORY, length => 'long' });
    my $traced = traced_segments($j);
    ok($traced >= 20, "long deep-dive: $traced segments quote the source verbatim");
    # every sentence of 40+ characters that is not in the source is the
    # generator's own framing: it never mentions a number from nowhere
    my %src_num = map { $_ => 1 } $HISTORY =~ /\b(\d[\d,.]*\d|\d)\b/g;
    my @invented;
    for my $s (@{ $j->{segments} }) {
        for my $num ($s->{text} =~ /\b(\d[\d,.]*\d|\d)\b/g) {
            push @invented, $num unless $src_num{$num};
        }
    }
    ok(!@invented, 'no number that is not in the source') or diag "@invented";

    my ($r2, $plain) = script($ng, { source_text => $HISTORY, length => 'short' });
    my ($r3, $focused) = script($ng, { source_text => $HISTORY, length => 'short',
                                       focus => 'paper mills and rags' });
    my $count = sub {
        my $all = join ' ', map { $_->{text} } @{ $_[0]{segments} };
        my $n = () = $all =~ /\b(?:paper|rags?)\b/gi;
        return $n;
    };
    isnt($focused->{key}, $plain->{key}, 'focus changes the key');
    ok($count->($focused) > $count->($plain),
       sprintf 'focus "paper mills and rags" picks more about paper (%d > %d)',
       $count->($focused), $count->($plain));
}

# --- determinism and the script cache ----------------------------------------

{
    my %b = (source_text => $HISTORY, style => 'debate', length => 'short',
             focus => 'type', hosts => [ { name => 'Ada' }, { name => 'Bo' } ]);
    my ($r1, $a) = script($ng, \%b);
    script_ok($r1, $a, 'determinism: first request', cached => 0);
    my ($r2, $b) = script($ng, \%b);
    script_ok($r2, $b, 'determinism: the same again is a cache hit', cached => 1);
    is($b->{key}, $a->{key}, 'cache hit: same key');
    is($b->{id}, $a->{id}, 'cache hit: same id');
    is_deeply($b->{segments}, $a->{segments}, 'cache hit: same segments');
    is_deeply($b->{hosts}, $a->{hosts}, 'cache hit: same hosts');
    is($b->{title}, $a->{title}, 'cache hit: same title');
    is($b->{word_count}, $a->{word_count}, 'cache hit: same word_count');
    isnt($r1->{headers}{'x-request-id'}, $r2->{headers}{'x-request-id'},
         'cache hit: a new X-Request-Id');
    # the key is over the canonical request: member order, whitespace and
    # unknown members do not matter; what changes the script does
    my $reordered = qq({ "hosts" : [{"name":"Ada"}, {"name":"Bo"}],\n)
        . qq( "length":"short", "focus":"type", "style":"debate",\n)
        . qq( "unknown_field": [1, 2], "source_text": ) . $JSON->encode($HISTORY) . ' }';
    my ($r3, $c) = script($ng, $reordered);
    is($c && $c->{key}, $a->{key}, 'reordered members and whitespace: same key');
    my ($r4, $d) = script($ng, { %b, hosts => [ { name => 'Bo' }, { name => 'Ada' } ] });
    isnt($d && $d->{key}, $a->{key}, 'other host order: another key');
    my ($r5, $e) = script($ng, { %b, target_words => 301 });
    isnt($e && $e->{key}, $a->{key}, 'target_words 301 instead of 300: another key');
    ok($d && $e && !$d->{cached} && !$e->{cached}, '... and cache misses');

    # the engine itself: a cache that stores nothing (max_entry=1), two
    # workers, six requests: every one is written anew, all identical
    my $ng2 = Podgen::Test::Nginx->new(config => $CONFIG, workers => 2,
        http_config => 'podgen_cache_zone nostore:1m max_entry=1;');
    $ng2->start;
    my (%got, %hdr);
    for (1 .. 6) {
        my ($r, $j) = script($ng2, \%b);
        $hdr{ $r->{headers}{'x-podgen-cache'} // 'none' }++;
        $got{ $j ? $JSON->encode([ $j->{key}, $j->{title}, $j->{segments} ]) : 'error' }++;
    }
    is_deeply(\%hdr, { MISS => 6 }, 'another nginx, no cache: six misses');
    is_deeply([ keys %got ], [ $JSON->encode([ $a->{key}, $a->{title}, $a->{segments} ]) ],
              '... six identical scripts, identical to the first nginx\'s');
    my @bad = $ng2->check_error_log;
    ok(!@bad, 'second nginx: error log clean') or diag join "\n", @bad;
    $ng2->stop;
}

# --- topic only ------------------------------------------------------------

{
    my ($res, $j) = script($ng, { topic => 'The history of the printing press' });
    script_ok($res, $j, 'topic only');
    like($j->{title}, qr/: an outline$/, "topic only: title \"$j->{title}\"");
    like($j->{title}, qr/^The history of the printing press/i,
         'topic only: the title names the topic');
    my $all = join ' ', map { $_->{text} } @{ $j->{segments} };
    like($all, qr/outline/i, 'topic only: the hosts say it is an outline');
    unlike($all, qr/Gutenberg|Mainz|\b1[45]\d\d\b/,
           'topic only: no invented facts');

    ($res, $j) = script($ng, { topic => 'Printing', source_text => $HISTORY,
                               length => 'short' });
    script_ok($res, $j, 'topic and source');
    unlike($j->{title}, qr/an outline$/, 'topic and source: not an outline');
    ok(traced_segments($j) >= 3, 'topic and source: the source is quoted');

    ok(JSON::PP::is_bool($j->{source_exhausted}) && !$j->{source_exhausted},
       'topic and source, short: the source is enough (source_exhausted false)');
    is($j->{source_words}, words($HISTORY), 'topic and source: source_words');
    is($j->{target_words}, 300, 'topic and source: target_words');
    ok(!exists $res->{headers}{'x-podgen-source-exhausted'},
       'topic and source: no X-Podgen-Source-Exhausted');

    # a short source cannot fill a long script, and the reply says so
    my $short = 'The harbour wall was rebuilt in 1922 after a storm. It is '
              . 'four hundred metres long and made of granite blocks. '
              . 'Fishing boats still moor behind it every winter.';
    ($res, $j) = script($ng, { source_text => $short, length => 'long' });
    script_ok($res, $j, 'a 30-word source, long');
    ok($j->{source_exhausted}, "a 30-word source, long: source_exhausted "
       . "($j->{word_count} of $j->{target_words} words)");
    is($j->{source_words}, words($short), '... source_words');
    is($res->{headers}{'x-podgen-source-exhausted'}, 'true',
       '... X-Podgen-Source-Exhausted: true');
    my ($res2, $j2) = script($ng, { source_text => $short, length => 'long' });
    is($res2->{headers}{'x-podgen-cache'}, 'HIT-L1', '... again: a cache hit');
    ok($j2->{source_exhausted} && $j2->{source_words} == $j->{source_words},
       '... which says the same');
    is($res2->{headers}{'x-podgen-source-exhausted'}, 'true', '... and the header');

    ($res, $j) = script($ng, { topic => 'The history of the printing press',
                               length => 'long' });
    ok($j->{source_exhausted} && $j->{source_words} == 0,
       'topic only: source_exhausted, source_words 0');

    ($res, $j) = script($ng, '{"topic":"Caf\ud800e"}');
    ok($res->{status} == 200
       || ($res->{status} == 400 && ($j->{error}{code} // '') =~ /^invalid_(?:utf8|value)$/),
       "lone surrogate in the topic: 200 or 400 invalid_utf8 ($res->{status})");
}

# --- podgen_max_source -------------------------------------------------------

{
    # 900 KB of real prose under the default podgen_max_source (1m)
    my $big = '';
    $big .= $HISTORY . "\n\n" while length $big < 900 * 1024;
    $big = substr $big, 0, 900 * 1024;
    $big =~ s/[^.]*\z//;
    my ($res, $j) = script($ng, { source_text => $big, length => 'short' },
                           timeout => 30);
    script_ok($res, $j, sprintf('a %d-byte source_text', length $big));
    ok(abs($j->{word_count} - 300) <= 45, '... at the requested length');
    ok(traced_segments($j) >= 3, '... quoting the source');
    # a source repeated 80 times gives no repeated quotes
    my %seen;
    my @dups = grep { $seen{$_}++ } grep { length >= 40 }
               map { split /(?<=[.!?])\s+/, $_->{text} } @{ $j->{segments} };
    ok(!@dups, '... and no sentence is quoted twice') or diag "@dups";
    note sprintf '900 KB source: %.3f s', $res->{time};

    # 1 MiB + 1 byte: over the default limit
    my $over = substr('Word. ' x 180_000, 0, 1024 * 1024 + 1);
    is(length $over, 1024 * 1024 + 1, 'source of 1 MiB + 1 byte');
    ($res, $j) = script($ng, { source_text => $over });
    is($res->{status}, 400, '... 400');
    is($j && $j->{error}{code}, 'string_above_max_length', '... string_above_max_length');
    is($j && $j->{error}{param}, 'source_text', '... param source_text');
    is($j && $j->{error}{type}, 'invalid_request_error', '... invalid_request_error');
}

my @bad = $ng->check_error_log(1);
ok(!@bad, 'imperative part: no alert/crit/emerg/sanitizer reports')
    or diag join "\n", @bad;
$ng->stop;
undef $ng;

# one block per way a body can be wrong: every error is OpenAI-shaped JSON
# with the right status, code and param, and an X-Request-Id
run_blocks(defaults => {
    config => $CONFIG,
    more_headers => 'Content-Type: application/json',
    response_headers_like => "Content-Type: ^application/json\$\nX-Request-Id: ^[0-9a-f]{32}\$",
});

__DATA__

=== TEST 1: truncated JSON
--- request
POST /v1/scripts
{"topic":"Lighthouses","style":"br
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":null,"code":"invalid_json"}}

=== TEST 2: a JSON array
--- request
POST /v1/scripts
[{"topic":"Lighthouses"}]
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":null,"code":"invalid_json"}}

=== TEST 3: empty body
--- request
POST /v1/scripts
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":null,"code":"invalid_json"}}

=== TEST 4: a raw NUL inside a string
--- request eval
"POST /v1/scripts\n{\"topic\":\"Light\0houses\"}"
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","code":"invalid_json"}}

=== TEST 5: invalid UTF-8 in the topic
--- request eval
"POST /v1/scripts\n{\"topic\":\"Caf\xc3\x28 \xff\xfe\"}"
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","code":"invalid_utf8"}}

=== TEST 6: nesting 40 deep in an unknown member
--- request eval
"POST /v1/scripts\n{\"topic\":\"x\",\"x\":" . ('[' x 40) . (']' x 40) . '}'
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","code":"nesting_too_deep"}}

=== TEST 7: 1 MB of "{"
--- request eval
"POST /v1/scripts\n" . ('{"a":' x (200 * 1024))
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","code":"nesting_too_deep"}}

=== TEST 8: neither topic nor source_text
--- request
POST /v1/scripts
{"style":"brief","length":"short"}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"topic","code":"missing_required_parameter"}}

=== TEST 9: topic null
--- request
POST /v1/scripts
{"topic":null}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"topic","code":"invalid_type"}}

=== TEST 10: source_text is a number
--- request
POST /v1/scripts
{"source_text":42}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"source_text","code":"invalid_type"}}

=== TEST 11: blank topic
--- request
POST /v1/scripts
{"topic":" \t\n "}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"topic","code":"invalid_value"}}

=== TEST 12: a source with nothing to speak
--- request
POST /v1/scripts
{"source_text":"... --- !!! ???"}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"source_text","code":"invalid_value"}}

=== TEST 13: a topic of 501 characters
--- request eval
"POST /v1/scripts\n{\"topic\":\"" . ("\xc3\xa9" x 501) . '"}'
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"topic","code":"string_above_max_length"}}

=== TEST 14: unknown style
--- request
POST /v1/scripts
{"topic":"Tea","style":"rant"}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"style","code":"invalid_value"}}

=== TEST 15: style is an array
--- request
POST /v1/scripts
{"topic":"Tea","style":["brief"]}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"style","code":"invalid_type"}}

=== TEST 16: unknown length
--- request
POST /v1/scripts
{"topic":"Tea","length":"epic"}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"length","code":"invalid_value"}}

=== TEST 17: target_words 49
--- request
POST /v1/scripts
{"topic":"Tea","target_words":49}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"target_words","code":"invalid_value"}}

=== TEST 18: target_words 5001
--- request
POST /v1/scripts
{"topic":"Tea","target_words":5001}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"target_words","code":"invalid_value"}}

=== TEST 19: target_words 1e308 * 10
--- request
POST /v1/scripts
{"topic":"Tea","target_words":1e309}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error"}}

=== TEST 20: target_words as a string
--- request
POST /v1/scripts
{"topic":"Tea","target_words":"300"}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"target_words","code":"invalid_type"}}

=== TEST 21: no hosts
--- request
POST /v1/scripts
{"topic":"Tea","hosts":[]}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"hosts","code":"invalid_value"}}

=== TEST 22: seven hosts
--- request
POST /v1/scripts
{"topic":"Tea","hosts":[{"name":"A"},{"name":"B"},{"name":"C"},{"name":"D"},{"name":"E"},{"name":"F"},{"name":"G"}]}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"hosts","code":"invalid_value"}}

=== TEST 23: hosts is an object
--- request
POST /v1/scripts
{"topic":"Tea","hosts":{"name":"A"}}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"hosts","code":"invalid_type"}}

=== TEST 24: a host that is a string
--- request
POST /v1/scripts
{"topic":"Tea","hosts":[{"name":"A"},"B"]}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"hosts[1]","code":"invalid_type"}}

=== TEST 25: a host without a name
--- request
POST /v1/scripts
{"topic":"Tea","hosts":[{"voice":"alloy","role":"host"}]}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"hosts[0].name","code":"missing_required_parameter"}}

=== TEST 26: two hosts with the same name (case-insensitively)
--- request
POST /v1/scripts
{"topic":"Tea","hosts":[{"name":"Ada"},{"name":"ADA"}]}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"hosts[1].name","code":"invalid_value"}}

=== TEST 27: a host name with a control character
--- request
POST /v1/scripts
{"topic":"Tea","hosts":[{"name":"A\u001bda"}]}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"hosts[0].name","code":"invalid_value"}}

=== TEST 28: unknown voice for the third host
--- request
POST /v1/scripts
{"topic":"Tea","hosts":[{"name":"A"},{"name":"B","voice":"echo"},{"name":"C","voice":"hal9000"}]}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"hosts[2].voice","code":"invalid_value"}}

=== TEST 29: engine llm without podgen_llm
--- request
POST /v1/scripts
{"topic":"Tea","engine":"llm"}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"engine","code":"invalid_value"}}

=== TEST 30: unknown engine
--- request
POST /v1/scripts
{"topic":"Tea","engine":"gpt-4"}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"engine","code":"invalid_value"}}

=== TEST 31: a language that is not a tag
--- request
POST /v1/scripts
{"topic":"Tea","language":"en; rm -rf /"}
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"language","code":"invalid_value"}}

=== TEST 32: GET
--- request
GET /v1/scripts
--- error_code: 405
--- response_headers
Allow: POST
--- response_json
{"error":{"type":"invalid_request_error","code":"method_not_allowed"}}

=== TEST 33: text/plain
--- request
POST /v1/scripts
{"topic":"Tea"}
--- more_headers
Content-Type: text/plain
--- error_code: 415
--- response_json
{"error":{"type":"invalid_request_error","code":"unsupported_media_type"}}

=== TEST 34: engine builtin is accepted explicitly
--- request
POST /v1/scripts
{"topic":"Tea","engine":"builtin","language":"EN"}
--- error_code: 200
--- response_headers
X-Podgen-Engine: builtin
--- response_json
{"engine":"builtin","cached":false}

=== TEST 35: podgen_max_source 10k: exactly 10240 bytes pass
--- http_config
podgen_max_source 10k;
--- request eval
"POST /v1/scripts\n" . $Podgen::Test::JSON->encode({ source_text =>
    substr('All work and no play makes Jack a dull boy. ' x 300, 0, 10239) . '.' })
--- error_code: 200
--- response_json
{"engine":"builtin"}

=== TEST 36: podgen_max_source 10k: 10241 bytes do not
--- http_config
podgen_max_source 10k;
--- request eval
"POST /v1/scripts\n" . $Podgen::Test::JSON->encode({ source_text =>
    substr('All work and no play makes Jack a dull boy. ' x 300, 0, 10240) . '.' })
--- error_code: 400
--- response_json
{"error":{"type":"invalid_request_error","param":"source_text","code":"string_above_max_length"}}

=== TEST 37: podgen_max_source counts the decoded bytes, not the escapes
--- http_config
podgen_max_source 10k;
--- request eval
"POST /v1/scripts\n{\"source_text\":\"" . ('Caf\u00e9 ok. ' x 1000) . '"}'
--- error_code: 200
--- response_json
{"engine":"builtin"}

=== TEST 38: a body over client_max_body_size
--- config
location = /v1/scripts { client_max_body_size 1k; podgen_scripts; }
--- request eval
"POST /v1/scripts\n" . $Podgen::Test::JSON->encode({ source_text => 'Hello there. ' x 200 })
--- error_code: 413
--- response_json
{"error":{"code":"request_too_large"}}
