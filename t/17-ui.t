# The web UI (html/) in headless Chromium: create a podcast through the
# form and follow it, play it with the transcript highlight, scroll a
# library of 10,000 seeded episodes with a bounded DOM, errors shown, the
# dashboard, a 375 px screen (the library readable on it); installable
# (manifest, icons, favicon, theme-color; Chromium's own criteria); a pcm
# episode offered for download, not played.  t/js-ui/ui.mjs drives Debian's chromium with
# playwright-core (installed into t/js-ui/node_modules when missing) and
# prints one line per check; screenshots go to t/out/ui/.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Test::More;
use File::Temp qw(tempdir);
use File::Path qw(make_path);
use Time::HiRes qw(time);
use POSIX ();

my $ROOT = repo_root();
my $JS = "$ROOT/t/js-ui";
my $OUT = "$ROOT/t/out/ui";
my $CHROMIUM = $ENV{PODGEN_CHROMIUM} || '/usr/bin/chromium';

my $node = which('node') or plan skip_all => 'node is not installed';
my $npm = which('npm') or plan skip_all => 'npm is not installed';
-x $CHROMIUM or plan skip_all => "chromium is not installed ($CHROMIUM)";

if (!-f "$JS/node_modules/playwright-core/package.json") {
    note 'installing playwright-core into t/js-ui';
    my $out = `cd '$JS' && '$npm' install --no-audit --no-fund --no-save --loglevel=error playwright-core\@1 2>&1`;
    plan skip_all => "npm install playwright-core failed:\n$out"
        if $? != 0 || !-f "$JS/node_modules/playwright-core/package.json";
}

# every module of the UI is in the service worker's app shell (offline,
# a module missing there breaks the page)
{
    open my $sw, '<', "$ROOT/html/sw.js" or die "html/sw.js: $!";
    my $text = do { local $/; <$sw> };
    close $sw;
    my ($list) = $text =~ /SHELL_FILES\s*=\s*\[(.*?)\]/s;
    my %shell = map { $_ => 1 } ($list // '') =~ /'([^']+)'/g;
    my @files = ('index.html', 'app.css',
                 map { s{^\Q$ROOT/html/\E}{}r } glob "$ROOT/html/js/*.js");
    my @missing = grep { !$shell{$_} } @files;
    ok(!@missing, 'sw.js: the app shell lists every file of the UI')
        or diag "missing: @missing";
}

# the store: its folders are made by nginx for the workers' user; the
# browser script writes records into store/jobs
my $store = tempdir('podgen-ui-store-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $store;

my $ng = Podgen::Test::Nginx->new(
    workers     => 2,
    http_config => "podgen_store $store;\n",
    config      => <<"EOF");
location = /v1/audio/speech { podgen_speech; }
location = /v1/voices { podgen_voices; }
location /v1/audio/ { podgen_audio; }
location /v1/podcasts { podgen_podcasts; }
location = /metrics { podgen_metrics; }

location / {
    root $ROOT/html;
    index index.html;
    types {
        text/html html;
        text/css css;
        text/javascript js mjs;
        application/manifest+json webmanifest;
        image/png png;
        image/svg+xml svg;
        image/x-icon ico;
    }
    default_type application/octet-stream;
}
EOF
$ng->start;

make_path($OUT);
unlink glob "$OUT/*.png";

my $t0 = time;
my $pid = open my $fh, '-|';
die "fork: $!" unless defined $pid;
if (!$pid) {
    # its own process group: on a time-out the browser goes with it
    POSIX::setpgid(0, 0);
    open STDERR, '>&', \*STDOUT;
    chdir $JS or POSIX::_exit(127);
    { exec $node, 'ui.mjs', $ng->url(''), $store, $OUT; }
    POSIX::_exit(127);
}

my ($checks, $done) = (0, undef);
my @other;
{
    # a hung browser must not hang the suite
    local $SIG{ALRM} = sub {
        diag('the browser script timed out');
        kill 'KILL', -$pid;
    };
    alarm 180;
    while (my $line = <$fh>) {
        chomp $line;
        if ($line =~ /^UI (\{.*\})$/) {
            my $r = eval { $JSON->decode($1) };
            if (!$r) {
                fail("a check line that is not JSON: $line");
                next;
            }
            $checks++;
            ok($r->{ok}, $r->{name}) or diag($r->{diag} // '');
        } elsif ($line =~ /^UI-DONE (\{.*\})$/) {
            $done = eval { $JSON->decode($1) };
        } elsif ($line =~ /^#\s?(.*)$/) {
            note($1);
        } else {
            push @other, $line;
        }
    }
    alarm 0;
}
close $fh;
my $status = $? >> 8;
my $took = time - $t0;

note(sprintf 'the browser script took %.1f s', $took);
ok($done && $status == 0, 'the browser script finishes, all its checks passed')
    or diag("exit status $status\n" . join "\n", @other);
cmp_ok($checks, '>=', 30, 'the browser script made its checks');

for my $png (qw(create.png player.png library.png monitor.png mobile-create.png)) {
    ok(-s "$OUT/$png", "screenshot $png");
}

$ng->stop;
my @bad = $ng->check_error_log;
ok(!@bad, 'error log clean') or diag join "\n", @bad;

done_testing;
