# Chapters: the script's sections (the built-in generator's intro, a
# section every three content turns named for its subject, the recap, the
# outro; or the "chapter" of an edited script's segments) are the
# episode's chapters, GET /v1/podcasts/{id}/chapters.json in the
# Podcasting 2.0 JSON chapters format, each starting where its segment
# starts in the audio.  Bad chapters in a script are 400s.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;
use File::Temp ();
use JSON::PP;

my $ROOT = repo_root();
my $STORE = File::Temp::tempdir('podgen-chapters-XXXXXX', TMPDIR => 1,
                                CLEANUP => 1);
chmod 0777, $STORE;

my $ng = Podgen::Test::Nginx->new(
    workers => 1,
    http_config => "podgen_store $STORE;",
    config => 'location /v1/podcasts { podgen_podcasts; }
               location = /v1/scripts { podgen_scripts; }');
$ng->start;

sub chapters_ok {
    my ($id, $name) = @_;
    my ($r, $c) = get($ng, "/v1/podcasts/$id/chapters.json");
    is($r->{status}, 200, "$name: chapters.json");
    is($r->{headers}{'content-type'}, 'application/json+chapters',
       "$name: Podcasting 2.0's type");
    is($c->{version}, '1.2.0', "$name: version 1.2.0");
    my (undef, $t) = get($ng, "/v1/podcasts/$id/transcript.json");
    my %starts = map { sprintf('%.3f', $_->{start}) => 1 }
                 @{ $t->{segments} };
    my @ch = @{ $c->{chapters} // [] };
    my ($ok, $prev) = (1, -1);
    for (@ch) {
        $ok &&= defined $_->{title} && length $_->{title}
                && $_->{startTime} > $prev
                && $starts{ sprintf('%.3f', $_->{startTime}) };
        $prev = $_->{startTime};
    }
    ok(@ch && $ok && $ch[0]{startTime} == 0,
       "$name: " . scalar(@ch) . " chapters, the first at 0, each where a "
       . "segment starts, in order") or diag explain $c;
    cmp_ok($prev, '<', $t->{duration_s}, "$name: all within the episode");
    return @ch;
}

# ---- the built-in generator's sections ---------------------------------------

{
    my $src = slurp("$ROOT/t/data/source-sleep.txt");
    my ($r, $s) = post($ng, '/v1/scripts', { source_text => $src,
                                             style => 'deep-dive',
                                             length => 'medium' });
    is($r->{status}, 200, 'script: 200');
    my @chap = map { $_->{chapter} // () } @{ $s->{segments} };
    is($chap[0], 'Introduction', 'script: the first segment opens the '
       . 'introduction');
    # (the outro is a chapter of its own unless its host also recapped)
    like($chap[-1], qr/^(?:Wrap-up|Recap)$/,
         'script: the outro or the recap closes');
    ok((grep { $_ eq 'Recap' } @chap), 'script: so is the recap');
    my @topics = grep { !/^(?:Introduction|Recap|Wrap-up)$/ } @chap;
    ok(@topics >= 2, "script: sections named for their subjects: @topics");
    ok(!(grep { !/^[A-Z0-9]/ } @topics), 'script: titles start with a '
       . 'capital');
    ok(!exists $s->{segments}[1]{chapter},
       'script: a segment that starts none has no chapter');

    my $id = new_podcast($ng, { source_text => $src, style => 'deep-dive',
                                length => 'medium', format => 'opus' },
                         'built-in');
    is(wait_job($ng, $id, 120)->{status}, 'completed', 'built-in: completed');
    my @ch = chapters_ok($id, 'built-in');
    is_deeply([ map { $_->{title} } @ch ], \@chap,
              'built-in: the script\'s chapters, in order');
}

# ---- a document's titled sections name its chapters -------------------------

{
    my @p = grep { /\S/ } split /\n\s*\n/,
            slurp("$ROOT/t/data/source-bread.txt");
    my $md = "# Bread\n\n## Flour and water\n\n" . join("\n\n", @p[0 .. 2])
             . "\n\n## The oven\n\n" . join("\n\n", @p[3 .. $#p]);
    my ($r, $s) = post($ng, '/v1/scripts', { source_text => $md,
                                             style => 'deep-dive',
                                             length => 'medium' });
    is($r->{status}, 200, 'titled: 200');
    my @chap = map { $_->{chapter} // () } @{ $s->{segments} };
    ok((grep { $_ eq 'Flour and water' } @chap)
       && (grep { $_ eq 'The oven' } @chap),
       "titled: the document's sections are chapters: @chap");
}

# ---- an edited script's chapters -----------------------------------------------

{
    my $id = new_podcast($ng, { title => 'Radio hour', format => 'mp3',
        segments => [
            { speaker => 'A', text => 'A word before anything.' },
            { speaker => 'B', text => 'Valves first.', chapter => 'Valves' },
            { speaker => 'A', text => 'They glow.' },
            { speaker => 'B', text => 'Then the speaker.',
              chapter => "Speakers \x{e9}t\x{e9}" } ] }, 'edited');
    is(wait_job($ng, $id, 60)->{status}, 'completed', 'edited: completed');
    my @ch = chapters_ok($id, 'edited');
    is_deeply([ map { $_->{title} } @ch ],
              [ 'Radio hour', 'Valves', "Speakers \x{e9}t\x{e9}" ],
              'edited: the episode\'s title at 0, then the given chapters');
    my ($sr, $st) = get($ng, "/v1/podcasts/$id");
    like($st->{links}{chapters} // '', qr{/\Q$id\E/chapters\.json$},
         'edited: the status links the chapters');

    for my $bad ([ 12, 'invalid_type' ], [ '', 'invalid_value' ],
                 [ "two\nlines", 'invalid_value' ],
                 [ 'x' x 201, 'invalid_value' ]) {
        my ($chapter, $code) = @$bad;
        my ($r) = post_podcast($ng, { segments => [
            { speaker => 'A', text => 'Hello.' },
            { speaker => 'A', text => 'Again.', chapter => $chapter } ] });
        error_ok($r, "chapter " . substr($chapter, 0, 12) . ": 400",
                 status => 400, code => $code,
                 param => 'segments[1].chapter');
    }
}

unlike($ng->error_log, qr/\[(?:alert|crit|error|emerg)\]/,
       'no errors in the log');

done_testing();
