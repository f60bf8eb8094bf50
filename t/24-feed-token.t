# podgen_feed_token: with podgen_api_key on, podcast apps (which cannot
# send an Authorization header) subscribe to {base}/feed.xml?token=SECRET;
# the feed's links carry tokens (the self link the secret, each enclosure
# its episode's own token), and those links work without a bearer key.
# The feed without a token, or with a wrong one, is 401 JSON; so is every
# other request with ?token= (status, list, transcripts, POST, DELETE),
# an episode's token on another episode, and the feed's secret on an
# episode.  The bearer key still opens everything.  Then nginx -t on bad
# secrets.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;
use File::Temp qw(tempfile);

my $KEY = 'pk-t24-0123456789abcdef';
my $SECRET = 'feed-t24.Secret_token~0123';
my %AUTH = (Authorization => "Bearer $KEY");

my $ng = Podgen::Test::Nginx->new(
    http_config => "podgen_api_key $KEY;\npodgen_store store;",
    config => <<"EOF");
    location /v1/podcasts { podgen_feed_token $SECRET; podgen_podcasts; }
    location = /v1/audio/speech { podgen_speech; }
EOF
$ng->start;

sub unauthorized {
    my ($r, $name) = @_;
    error_ok($r, $name, status => 401, code => 'invalid_api_key',
             type => 'invalid_request_error', request_id => 1);
    is($r->{headers}{'www-authenticate'}, 'Bearer',
       "$name: WWW-Authenticate: Bearer");
}

# two completed episodes, made with the key
my @ids;
for my $n (1 .. 2) {
    my ($r, $j) = post_podcast($ng, { format => 'mp3', title => "Episode $n",
        segments => [ { speaker => 'A', text => "Episode number $n." } ] },
        headers => \%AUTH);
    is($r->{status}, 202, "episode $n: accepted with the key") or diag show($r);
    push @ids, $j->{id} // 'none';
}
for my $id (@ids) {
    # (wait_job sends no key)
    my $st = {};
    for (1 .. 600) {
        my $r = request($ng, 'GET', "/v1/podcasts/$id", headers => \%AUTH);
        $st = jdecode($r->{body}) // {};
        last if ($st->{status} // '') =~ /^(?:completed|failed)$/;
        select undef, undef, undef, 0.1;
    }
    is($st->{status}, 'completed', "$id: completed");
}

# ---- the feed -----------------------------------------------------------------

my $feed = request($ng, 'GET', "/v1/podcasts/feed.xml?token=$SECRET");
is($feed->{status}, 200, 'feed with its token: 200');
like($feed->{headers}{'content-type'} // '', qr{^application/rss\+xml},
     'feed with its token: RSS');

SKIP: {
    my $xmllint = which('xmllint');
    skip 'xmllint is not installed', 1 unless $xmllint;
    my ($fh, $f) = tempfile(SUFFIX => '.xml', UNLINK => 1);
    print $fh $feed->{body};
    close $fh;
    my $err = `$xmllint --noout $f 2>&1`;
    is($?, 0, 'feed with its token: well-formed XML (xmllint)') or diag $err;
}

like($feed->{body}, qr{<atom:link href="http://[^"]+/v1/podcasts/feed\.xml\?token=\Q$SECRET\E" rel="self"},
     'the self link carries the secret');
my %enc = $feed->{body} =~ m{<enclosure url="http://[^"/]+(/v1/podcasts/(pod_[0-9a-f]{20})/audio\?token=[0-9a-f]{32})"}g;
%enc = reverse %enc;
is(scalar(keys %enc), 2, 'both enclosures carry a token of 32 hex digits')
    or diag $feed->{body};
isnt($enc{$ids[0]} =~ s/.*token=//r, $enc{$ids[1]} =~ s/.*token=//r,
     'one token per episode');
unlike($feed->{body}, qr/\Q$KEY\E/, 'the API key is not in the feed');

unauthorized(request($ng, 'GET', '/v1/podcasts/feed.xml'),
             'feed without a token');
unauthorized(request($ng, 'GET', '/v1/podcasts/feed.xml?token=wrong-token-0123456789'),
             'feed with a wrong token');
unauthorized(request($ng, 'GET', '/v1/podcasts/feed.xml?token=' . substr($SECRET, 0, -1)),
             'feed with the secret cut by one');
unauthorized(request($ng, 'GET', "/v1/podcasts/feed.xml?token=$SECRET" . 'x'),
             'feed with the secret and one more');
is(request($ng, 'GET', '/v1/podcasts/feed.xml', headers => \%AUTH)->{status},
   200, 'feed with the key: 200');
is(request($ng, 'HEAD', "/v1/podcasts/feed.xml?token=$SECRET")->{status},
   200, 'HEAD of the feed with its token: 200');

# ---- the episodes' links ----------------------------------------------------------

my $url = $enc{$ids[0]} // '/none';
my $audio = request($ng, 'GET', $url);
is($audio->{status}, 200, 'the audio link of the feed works without the key');
like($audio->{headers}{'content-type'} // '', qr{^audio/mpeg}, 'and is audio');
my $with_key = request($ng, 'GET', "/v1/podcasts/$ids[0]/audio",
                       headers => \%AUTH);
ok($audio->{body} eq $with_key->{body}, 'the same bytes as with the key');
is(request($ng, 'HEAD', $url)->{status}, 200, 'HEAD of the link: 200');
my $range = request($ng, 'GET', $url, headers => { Range => 'bytes=0-99' });
is($range->{status}, 206, 'a Range of the link: 206');

my ($tok0) = $url =~ /token=(\w+)/;
unauthorized(request($ng, 'GET', "/v1/podcasts/$ids[1]/audio?token=$tok0"),
             "an episode's token on another episode");
unauthorized(request($ng, 'GET', "/v1/podcasts/$ids[0]/audio?token=$SECRET"),
             "the feed's secret on an episode");
unauthorized(request($ng, 'GET', "/v1/podcasts/$ids[0]/audio"),
             'the audio without a token');
unauthorized(request($ng, 'GET', "/v1/podcasts/$ids[0]/audio?token="
                                 . ('0' x 32)), 'the audio with a wrong token');

# ---- everything else still needs the key ------------------------------------------

for my $t ([ "the feed's secret", $SECRET ], [ "an episode's token", $tok0 ]) {
    my ($what, $tok) = @$t;
    unauthorized(request($ng, 'GET', "/v1/podcasts/$ids[0]?token=$tok"),
                 "status with $what");
    unauthorized(request($ng, 'GET', "/v1/podcasts?token=$tok"),
                 "list with $what");
    unauthorized(request($ng, 'GET', "/v1/podcasts/$ids[0]/transcript.vtt?token=$tok"),
                 "transcript.vtt with $what");
    unauthorized(request($ng, 'GET', "/v1/podcasts/$ids[0]/transcript.json?token=$tok"),
                 "transcript.json with $what");
    unauthorized(post($ng, "/v1/podcasts?token=$tok",
                      { segments => [ { speaker => 'A', text => 'No.' } ] }),
                 "POST with $what");
    unauthorized(request($ng, 'DELETE', "/v1/podcasts/$ids[0]/audio?token=$tok"),
                 "DELETE of the audio with $what");
    unauthorized(request($ng, 'DELETE', "/v1/podcasts/feed.xml?token=$tok"),
                 "DELETE of the feed with $what");
    unauthorized(request($ng, 'POST', "/v1/audio/speech?token=$tok",
                         body => speech_body(input => 'No.'),
                         headers => { 'Content-Type' => 'application/json' }),
                 "speech with $what");
}
is(request($ng, 'GET', "/v1/podcasts/$ids[0]", headers => \%AUTH)->{status},
   200, 'status with the key: 200');

$ng->stop;
my @bad = $ng->check_error_log;
ok(!@bad, 'error log has no alert/crit/emerg/sanitizer report')
    or diag join "\n", @bad;

# a feed token without an API key changes nothing but the links
run_blocks(defaults => { http_config => 'podgen_store store;' });

__DATA__

=== without podgen_api_key the feed needs no token, and its links carry one
--- config
location /v1/podcasts { podgen_feed_token feed-t24-no-key-0123456; podgen_podcasts; }
--- request
GET /v1/podcasts/feed.xml
--- error_code: 200
--- response_body_like: feed\.xml\?token=feed-t24-no-key-0123456"

=== podgen_feed_token too short
--- config
location /v1/podcasts { podgen_feed_token short; podgen_podcasts; }
--- must_die
--- error_log
must be 16 to 256 characters long

=== podgen_feed_token with characters that are not URL-safe
--- config
location /v1/podcasts { podgen_feed_token "feed&token=0123456789"; podgen_podcasts; }
--- must_die
--- error_log
letters, digits

=== podgen_feed_token from an unset environment variable
--- config
location /v1/podcasts { podgen_feed_token env:PODGEN_T24_UNSET; podgen_podcasts; }
--- must_die
--- error_log
podgen_feed_token: the environment variable "PODGEN_T24_UNSET" is not set
