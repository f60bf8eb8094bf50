# A full store: a new job whose record cannot be written for want of room
# (ENOSPC) is refused with 507 insufficient_storage (type server_error), on
# POST /v1/podcasts, an async POST /v1/batch and a podcast item of a batch;
# with room again, jobs are accepted.  The store is a 64 KB tmpfs mounted
# here, filled with a file: root only, skipped when the mount fails, always
# unmounted.  (t/19 fills a store with episodes.)

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;
use File::Temp qw(tempdir);
use Time::HiRes qw(sleep);

our ($MNT, $NG);
END {
    # before the harness's own END: nginx must be gone to unmount
    local $?;
    if ($MNT) {
        eval { $NG->stop if $NG };
        for (1 .. 50) {
            last if system('umount', $MNT) == 0;
            sleep 0.1;
        }
        system('umount', '-l', $MNT) if `grep -F ' $MNT ' /proc/mounts`;
    }
}

plan skip_all => 'not root: cannot mount a tmpfs' if $> != 0;
my $dir = tempdir('podgen-t23-XXXXXX', TMPDIR => 1, CLEANUP => 1);
if (system("mount -t tmpfs -o size=64k tmpfs $dir 2>/dev/null") != 0) {
    plan skip_all => 'cannot mount a tmpfs here';
}
$MNT = $dir;
chmod 01777, $dir;

$NG = Podgen::Test::Nginx->new(
    http_config => "podgen_store $dir/store;",
    config => <<'EOF');
    location /v1/podcasts { podgen_podcasts; }
    location = /v1/batch { podgen_batch; }
EOF
$NG->start;

my $one = { segments => [ { speaker => 'A', text => 'No room.' } ] };

# fill the disk: not even a record fits now
system("dd if=/dev/zero of=$dir/filler bs=4k 2>/dev/null");

my $r = post($NG, '/v1/podcasts', $one);
error_ok($r, 'full: POST /v1/podcasts', status => 507,
         code => 'insufficient_storage', type => 'server_error',
         request_id => 1);

$r = post($NG, '/v1/batch', { async => JSON::PP::true,
    requests => [ { type => 'script', body => { topic => 'Room' } } ] });
error_ok($r, 'full: async POST /v1/batch', status => 507,
         code => 'insufficient_storage', type => 'server_error');

$r = post($NG, '/v1/batch', { requests => [ { type => 'podcast', body => $one } ] });
is($r->{status}, 200, 'full: a batch with a podcast item: 200');
my $item = ((jdecode($r->{body}) // {})->{results} // [])->[0] // {};
is($item->{status}, 507, 'full: the podcast item: 507')
    or diag show($r);
is(ref $item->{error} && $item->{error}{code}, 'insufficient_storage',
   'full: the podcast item: insufficient_storage');
is(ref $item->{error} && $item->{error}{type}, 'server_error',
   'full: the podcast item: type server_error');

like($NG->error_log, qr/could not be stored.*No space left on device/,
     'full: the operator is told why');
my @left = glob("$dir/store/jobs/* $dir/store/locks/*");
is(scalar(@left), 0, 'full: nothing of the refused jobs is left')
    or diag "@left";

# room again
unlink "$dir/filler";
$r = post($NG, '/v1/podcasts', $one);
is($r->{status}, 202, 'room again: POST /v1/podcasts is accepted')
    or diag show($r);
my $j = wait_job($NG, (jdecode($r->{body}) // {})->{id} // 'none', 30);
is($j && $j->{status}, 'completed', 'room again: the job completes');

$NG->stop;
my @bad = $NG->check_error_log;
ok(!@bad, 'error log has no alert/crit/emerg/sanitizer report')
    or diag join "\n", @bad;
undef $NG;

done_testing();
