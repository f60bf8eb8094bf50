# The official `openai` npm package (v4) talks to podgen: its
# client.audio.speech.create() gets audio that ffmpeg decodes in every
# format (aac included), SSE, OpenAI's newer voices (marin, cedar...), a
# voice object, dated snapshots; models.list() and models.retrieve(); an
# invalid request surfaces as the client's BadRequestError with podgen's
# error object, an unknown model as NotFoundError.  Installs openai@4 into t/js/node_modules when missing.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Test::More;
use File::Temp qw(tempdir);
use POSIX ();

my $JS = repo_root() . '/t/js';

my $node = which('node') or plan skip_all => 'node is not installed';
my $npm = which('npm') or plan skip_all => 'npm is not installed';
which('ffmpeg') or plan skip_all => 'ffmpeg is not installed';

if (!-f "$JS/node_modules/openai/package.json") {
    note 'installing openai@4 into t/js';
    my $out = `cd '$JS' && '$npm' install --no-audit --no-fund --no-save --loglevel=error openai\@4 2>&1`;
    plan skip_all => "npm install openai\@4 failed:\n$out"
        if $? != 0 || !-f "$JS/node_modules/openai/package.json";
}

my $ng = Podgen::Test::Nginx->new(config => <<'EOF');
location = /v1/audio/speech { podgen_speech; }
location = /v1/voices { podgen_voices; }
location /v1/models { podgen_models; }
EOF
$ng->start;

my $dir = tempdir('podgen-js-XXXXXX', TMPDIR => 1, CLEANUP => 1);

sub run_client {
    my ($name, $params) = @_;
    my $file = "$dir/$name.out";
    my @cmd = ($node, "$JS/speech.mjs", $ng->port, $file,
               $params ? $JSON->encode($params) : ());
    my $pid = open my $fh, '-|';
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        open STDERR, '>&', \*STDOUT;
        { exec @cmd; }
        POSIX::_exit(127);
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    my $status = $? >> 8;
    my ($line) = grep { /^\{/ } split /\n/, $out;
    my $res = $line ? eval { $JSON->decode($line) } : undef;
    my $bytes;
    if (-f $file) {
        open my $af, '<:raw', $file or die;
        local $/;
        $bytes = <$af>;
        close $af;
    }
    return ($status, $res, $bytes, $out);
}

{
    my ($st, $res, $bytes, $out) = run_client('mp3');
    is($st, 0, 'mp3: the client call succeeds') or diag $out;
    is($res->{status}, 200, 'mp3: status 200') if $res;
    is($res->{content_type}, 'audio/mpeg', 'mp3: audio/mpeg') if $res;
    like($res->{request_id} // '', qr/^[0-9a-f]{32}$/, 'mp3: X-Request-Id') if $res;
    my ($d, $err) = defined $bytes ? audio_duration($bytes, 'mp3') : ();
    ok(defined $d, 'mp3: ffmpeg decodes the file') or diag $err // 'no file';
    cmp_ok($d // 0, '>', 0.5, 'mp3: longer than 0.5 s');
}

{
    my ($st, $res, $bytes, $out) = run_client('wav',
        { response_format => 'wav', speed => 1.5 });
    is($st, 0, 'wav speed 1.5: the client call succeeds') or diag $out;
    is($res->{content_type}, 'audio/wav', 'wav: audio/wav') if $res;
    like($bytes // '', qr/^RIFF/, 'wav: RIFF header');
    my ($d, $err) = defined $bytes ? audio_duration($bytes, 'wav') : ();
    ok(defined $d, 'wav: ffmpeg decodes the file') or diag $err // 'no file';
    cmp_ok($d // 0, '>', 0.5, 'wav: longer than 0.5 s');
}

{
    my ($st, $res, $bytes, $out) = run_client('bad', { voice => 'bob' });
    is($st, 1, 'unknown voice: the client throws');
    is($res->{status}, 400, 'unknown voice: BadRequestError status 400')
        or diag $out;
    my $e = ref $res->{body} eq 'HASH' ? $res->{body} : {};
    is($e->{code}, 'invalid_value', 'unknown voice: code from podgen');
    is($e->{param}, 'voice', 'unknown voice: param from podgen');
}

# today's OpenAI surface: the new voices, a voice object, a dated snapshot
for my $c (['marin', { voice => 'marin', model => 'gpt-4o-mini-tts' }],
           ['cedar', { voice => 'cedar', model => 'gpt-4o-mini-tts' }],
           ['voice-object', { voice => { id => 'alloy' } }],
           ['snapshot', { model => 'gpt-4o-mini-tts-2025-12-15',
                          voice => 'coral' }],
           ['tts-1-hd-1106', { model => 'tts-1-hd-1106' }],
           ['aac', { response_format => 'aac' }])
{
    my ($name, $params) = @$c;
    my ($st, $res, $bytes, $out) = run_client($name, $params);
    is($st, 0, "$name: the client call succeeds") or diag $out;
    is($res->{content_type}, 'audio/aac', 'aac: audio/aac')
        if $res && $name eq 'aac';
    my ($d, $err) = defined $bytes
                    ? audio_duration($bytes, $name eq 'aac' ? 'aac' : 'mp3')
                    : ();
    cmp_ok($d // 0, '>', 0.5, "$name: ffmpeg decodes over 0.5 s of audio")
        or diag $err // 'no file';
}

# every other format, SSE, and OpenAI's newer voices through the SDK
for my $fmt (qw(opus flac pcm)) {
    my ($st, $res, $bytes, $out) = run_client("fmt-$fmt",
        { response_format => $fmt, input => "The $fmt format, from the SDK." });
    is($st, 0, "$fmt: the client call succeeds") or diag $out;
    my ($d, $err) = defined $bytes ? audio_duration($bytes, $fmt) : ();
    cmp_ok($d // 0, '>', 0.5, "$fmt: ffmpeg decodes over 0.5 s of audio")
        or diag $err // 'no file';
}

{
    my ($st, $res, $bytes, $out) = run_client('sse',
        { stream_format => 'sse', model => 'gpt-4o-mini-tts' });
    is($st, 0, 'sse: the client call succeeds') or diag $out;
    like($res->{content_type} // '', qr{^text/event-stream}, 'sse: text/event-stream')
        if $res;
    like($bytes // '', qr/"type":"speech\.audio\.delta".*"type":"speech\.audio\.done"/s,
         'sse: deltas, then done');
}

# (every alias speaks: t/04; here the ones newer than the SDK's own list)
for my $v (qw(ash ballad cedar marin sage verse)) {
    my ($st, $res, $bytes, $out) = run_client("voice-$v",
        { voice => $v, input => 'Hi.', response_format => 'wav' });
    ok($st == 0 && ($bytes // '') =~ /^RIFF/, "voice $v: the SDK gets a WAV")
        or diag $out;
}

{
    my $out = `'$node' '$JS/models.mjs' @{[ $ng->port ]} 2>&1`;
    is($? >> 8, 0, 'models.list() and models.retrieve() succeed')
        or diag $out;
    my ($line) = grep { /^\{/ } split /\n/, $out;
    my $res = ($line && eval { $JSON->decode($line) }) || {};
    my %ids = map { $_ => 1 } @{ $res->{ids} || [] };
    ok($ids{$_}, "models.list() has $_")
        for qw(tts-1 tts-1-hd gpt-4o-mini-tts flite gpt-4o-mini-tts-2025-12-15);
    is($res->{retrieved}{id}, 'gpt-4o-mini-tts-2025-12-15',
       'models.retrieve(): the id');
    is($res->{retrieved}{owned_by}, 'podgen', 'models.retrieve(): owned_by');
    is($res->{retrieved}{created}, 1765756800,
       'models.retrieve(): created is the snapshot\'s date');
    is($res->{unknown}{name}, 'NotFoundError',
       'an unknown model: the client\'s NotFoundError');
    is($res->{unknown}{status}, 404, 'an unknown model: 404');
    is(ref $res->{unknown}{body} eq 'HASH' && $res->{unknown}{body}{code},
       'model_not_found', 'an unknown model: code model_not_found');
}

$ng->stop;
my @bad = $ng->check_error_log;
ok(!@bad, 'error log clean') or diag join "\n", @bad;

done_testing;
