package Podgen::API;

# Requests against a running podgen server, shared by the .t files (and by
# run_blocks for its job and error sections).  Every function takes the
# server first: a Podgen::Test::Nginx, or a port number.
#
#     use lib 't/lib';
#     use Podgen::Test;
#     use Podgen::API;
#
# JSON
#   jdecode($text)               decoded JSON, or undef when it is not JSON
#   show($r, $max)               a response as text for diag (400 bytes of body)
#
# requests (in list context (response, decoded body or undef); in scalar
# context the response)
#   post($n, $path, $body, headers => {...}, timeout => N)
#                                POST JSON: $body a Perl structure (encoded
#                                here) or raw text; Content-Type
#                                application/json unless headers say
#                                otherwise (a header given as undef is left
#                                out); timeout $Podgen::API::TIMEOUT (30)
#   get($n, $path, headers => {...}, timeout => N)
#
# speech
#   speech_fields(field => value, ...)  a speech request as a hash: model
#                                tts-1, voice alloy, response_format mp3
#                                unless given; a field given as undef is left
#                                out
#   speech_body(...)             the same as JSON text
#   speech($n, field => value, ..., body => $raw, headers => {...},
#          timeout => N)         POST /v1/audio/speech (timeout 60); the body
#                                is speech_body(fields) unless body is given
#   cache_tag($r)                X-Podgen-Cache, or "status N" without one
#
# scripts
#   script($n, $body, %o)        post($n, '/v1/scripts', $body, %o)
#
# metrics
#   metrics($n)                  { 'name{labels}' => value } of /metrics ({}
#                                when it does not answer 200)
#   metric($n, 'name{labels}')   one sample's value, undef when absent
#   prom_query($port, $promql)   a Prometheus server's instant query: its
#                                data.result, undef unless it succeeded
#
# errors
#   error_ok($r, $name, status => N, code => 'c' | qr/re/ | [alternatives],
#            param => 'p' | undef, type => 't', request_id => 1)
#                                an OpenAI-shaped error: Content-Type
#                                application/json and {"error":{message,
#                                type, param, code}} with a non-empty message
#                                and a type and a code; then the status, code,
#                                type and param when asked (param => undef:
#                                param is null) and an X-Request-Id of 32 hex
#                                digits when request_id is true
#
# jobs (podcasts and async batches)
#   post_podcast($n, $body, %o)  post($n, '/v1/podcasts', $body, %o); the
#                                decoded body is {} when it is not JSON
#   new_podcast($n, $body, $name)  the same, asserting "$name: 202" and
#                                "$name: id" (pod_ and 20 hex digits);
#                                returns the id or undef
#   job_path($job)               /v1/podcasts/<id> of an id; the path of a
#                                path or URL (Location)
#   wait_job($n, $job, $secs, until => sub { my ($status_json) = @_; ... })
#                                long-polls the job (?wait=) until it is
#                                completed or failed, or until returns true,
#                                or $secs (60) pass; returns its last status
#                                JSON ({http => status, body => ...} when the
#                                last answer was not JSON)
#   job_state($n, $id)           the job's status now, '?' when unknown

use strict;
use warnings;

use Test::More ();
use Time::HiRes qw(time sleep);
use Scalar::Util qw(blessed);
use Podgen::Test qw(request $JSON);
use Exporter 'import';

our @EXPORT = qw(
    jdecode show post get speech_fields speech_body speech cache_tag
    script metrics metric prom_query error_ok post_podcast new_podcast
    job_path wait_job job_state stored_is_streamed
);

our $TIMEOUT = 30;      # default timeout of post() and get()

# The stored copy of speech is the streamed one made whole (see README,
# "Cache"): true when $stored is $streamed of format $fmt but for what the
# end of synthesis fills in -- an mp3's first frame (header, then zeros
# in the stream) becomes the LAME Info frame, a FLAC's STREAMINFO gets the
# frame sizes, total samples and MD5 (bytes 12..41), a WAV its two sizes
# (and a "pgwt" chunk after the samples); other formats are the same
# bytes.  In list context also a reason when it is false.
sub stored_is_streamed {
    my ($stored, $streamed, $fmt) = @_;
    my $why;
    if (!defined $stored || !defined $streamed) {
        $why = 'no body';
    } elsif ($fmt eq 'mp3') {
        # the reserved frame: its 4-byte header, zeros up to the next one
        my $n = 4;
        $n++ while $n < length $streamed && substr($streamed, $n, 1) eq "\0";
        if (length $stored != length $streamed) {
            $why = 'lengths differ';
        } elsif ($n < 100 || substr($streamed, $n, 1) ne "\xff") {
            $why = "the stream does not begin with a reserved frame ($n)";
        } elsif (substr($stored, 0, 4) ne substr($streamed, 0, 4)
                 || substr($stored, 0, $n) !~ /Info.*LAME/s) {
            $why = 'the stored first frame is not the Info frame';
        } elsif (substr($stored, $n) ne substr($streamed, $n)) {
            $why = 'the frames after the Info frame differ';
        }
    } elsif ($fmt eq 'flac') {
        if (length $stored != length $streamed) {
            $why = 'lengths differ';
        } elsif (substr($stored, 0, 12) ne substr($streamed, 0, 12)
                 || substr($stored, 42) ne substr($streamed, 42)) {
            $why = 'bytes other than the STREAMINFO totals differ';
        } elsif ((ord(substr($streamed, 21, 1)) & 0x0f) != 0
                 || substr($streamed, 22, 20) ne "\0" x 20
                 || substr($stored, 26, 16) eq "\0" x 16) {
            $why = 'the STREAMINFO did not get its totals';
        }
    } elsif ($fmt eq 'wav') {
        $why = 'the samples differ'
            unless substr($stored, 44, length($streamed) - 44)
                   eq substr($streamed, 44);
    } elsif ($stored ne $streamed) {
        $why = 'the bytes differ';
    }
    return wantarray ? (!defined $why, $why) : !defined $why;
}

my %CT = ('Content-Type' => 'application/json');

my $ID_RE = qr/^pod_[0-9a-f]{20}$/;

# ---------------------------------------------------------------------------
# JSON

sub jdecode {
    my ($text) = @_;
    my $j = eval { $JSON->decode($text // '') };
    return $j;
}

sub show {
    my ($r, $max) = @_;
    my $b = substr($r->{body} // '', 0, $max // 400);
    $b =~ s/([^\x20-\x7e\n])/sprintf '\\x%02x', ord $1/ge;
    return "status $r->{status}" . ($r->{error} ? " ($r->{error})" : '')
         . "\n" . ($r->{raw_headers} // '') . "\n\n$b";
}

# ---------------------------------------------------------------------------
# requests

# Headers: the defaults, then the caller's; a header whose value is undef is
# left out.
sub _headers {
    my ($defaults, $given) = @_;
    my %h = (%$defaults, %{ $given || {} });
    delete $h{$_} for grep { !defined $h{$_} } keys %h;
    return \%h;
}

sub post {
    my ($n, $path, $body, %o) = @_;
    my $raw = ref $body ? $JSON->encode($body) : $body;
    my $r = request($n, 'POST', $path, body => $raw,
                    headers => _headers(\%CT, $o{headers}),
                    timeout => $o{timeout} // $TIMEOUT);
    return wantarray ? ($r, jdecode($r->{body})) : $r;
}

sub get {
    my ($n, $path, %o) = @_;
    my $r = request($n, 'GET', $path, headers => $o{headers} // {},
                    timeout => $o{timeout} // $TIMEOUT);
    return wantarray ? ($r, jdecode($r->{body})) : $r;
}

# ---------------------------------------------------------------------------
# speech

sub speech_fields {
    my %b = (model => 'tts-1', voice => 'alloy', response_format => 'mp3', @_);
    delete $b{$_} for grep { !defined $b{$_} } keys %b;
    return \%b;
}

sub speech_body { $JSON->encode(speech_fields(@_)) }

sub speech {
    my ($n, %f) = @_;
    my $headers = delete $f{headers};
    my $timeout = delete $f{timeout};
    my $body = exists $f{body} ? delete $f{body} : speech_body(%f);
    return request($n, 'POST', '/v1/audio/speech', body => $body,
                   headers => _headers(\%CT, $headers),
                   timeout => $timeout // 60);
}

sub cache_tag { $_[0]{headers}{'x-podgen-cache'} // "status $_[0]{status}" }

# ---------------------------------------------------------------------------
# scripts

sub script {
    my ($n, $body, %o) = @_;
    return post($n, '/v1/scripts', $body, %o);
}

# ---------------------------------------------------------------------------
# metrics

sub metrics {
    my ($n) = @_;
    my $r = request($n, 'GET', '/metrics', timeout => 10);
    my %m;
    return \%m unless $r->{status} == 200;
    for (split /\n/, $r->{body}) {
        next if /^#/;
        $m{$1} = $2 + 0 if /^(\S+)\s+(\S+)$/;
    }
    return \%m;
}

sub metric {
    my ($n, $name) = @_;
    return metrics($n)->{$name};
}

sub prom_query {
    my ($port, $q) = @_;
    (my $enc = $q) =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge;
    my $r = request($port, 'GET', "/api/v1/query?query=$enc", timeout => 5);
    return undef unless $r->{status} == 200;
    my $j = jdecode($r->{body});
    return undef unless ref $j eq 'HASH' && ($j->{status} // '') eq 'success';
    return $j->{data}{result};
}

# ---------------------------------------------------------------------------
# errors

sub error_ok {
    my ($r, $name, %want) = @_;
    my $ok = 1;
    if (exists $want{status}) {
        $ok &= Test::More::is($r->{status}, $want{status}, "$name: $want{status}");
    }
    my $j = jdecode($r->{body});
    my $e = ref $j eq 'HASH' && ref $j->{error} eq 'HASH' ? $j->{error} : undef;
    my @missing = $e ? grep { !exists $e->{$_} } qw(message type param code)
                     : ('error');
    $ok &= Test::More::ok(
        ($r->{headers}{'content-type'} // '') =~ m{^application/json\b}
        && !@missing
        && defined $e->{message} && !ref $e->{message} && $e->{message} ne ''
        && defined $e->{type} && defined $e->{code},
        "$name: JSON {error: {message, type, param, code}}")
        || Test::More::diag(@missing ? "missing: @missing"
                            : 'Content-Type '
                              . ($r->{headers}{'content-type'} // 'none'));
    my $code = $e ? $e->{code} : undef;
    if (ref $want{code} eq 'Regexp') {
        $ok &= Test::More::like($code // '', $want{code}, "$name: code $want{code}");
    } elsif (ref $want{code} eq 'ARRAY') {
        my %c = map { $_ => 1 } @{ $want{code} };
        $ok &= Test::More::ok(defined $code && $c{$code},
                              "$name: code is one of @{ $want{code} }")
            || Test::More::diag('code: ' . ($code // 'null'));
    } elsif (defined $want{code}) {
        $ok &= Test::More::is($code, $want{code}, "$name: code $want{code}");
    }
    if (defined $want{type}) {
        $ok &= Test::More::is($e && $e->{type}, $want{type}, "$name: type $want{type}");
    }
    if (exists $want{param}) {
        $ok &= Test::More::is($e ? $e->{param} : '(no error object)', $want{param},
                              "$name: param " . ($want{param} // 'null'));
    }
    if ($want{request_id}) {
        $ok &= Test::More::like($r->{headers}{'x-request-id'} // '',
                                qr/^[0-9a-f]{32}$/, "$name: X-Request-Id");
    }
    Test::More::diag("response: " . show($r)) unless $ok;
    return $ok;
}

# ---------------------------------------------------------------------------
# jobs

sub post_podcast {
    my ($n, $body, %o) = @_;
    my ($r, $j) = post($n, '/v1/podcasts', $body, %o);
    return wantarray ? ($r, $j // {}) : $r;
}

sub new_podcast {
    my ($n, $body, $name) = @_;
    my ($r, $j) = post_podcast($n, $body);
    Test::More::is($r->{status}, 202, "$name: 202")
        or Test::More::diag("$r->{status} $r->{body}");
    my $id = $j->{id} // '';
    Test::More::like($id, $ID_RE, "$name: id") or return undef;
    return $id;
}

sub job_path {
    my ($job) = @_;
    $job //= '';
    return "/v1/podcasts/$job" unless $job =~ m{/};
    $job =~ s{^https?://[^/]+}{};
    return $job;
}

sub wait_job {
    my ($n, $job, $secs, %o) = @_;
    $secs //= 60;
    my $path = job_path($job);
    my $deadline = time + $secs;
    my $j = {};
    while (time < $deadline) {
        my $left = int($deadline - time) || 1;
        my $w = $left > 10 ? 10 : $left;
        my $t0 = time;
        my $r = request($n, 'GET', "$path?wait=$w", timeout => $w + 10);
        my $d = jdecode($r->{body});
        $j = ref $d eq 'HASH' ? $d : { http => $r->{status}, body => $r->{body} };
        return $j if $o{until} && $o{until}->($j);
        return $j if ($j->{status} // '') =~ /^(?:completed|failed)$/;
        # a server that answers at once (an error, a mock) is not hammered
        if ($r->{status} != 200) { sleep 0.2 }
        elsif (time - $t0 < 0.1) { sleep 0.1 }
    }
    Test::More::diag("job $path not finished after $secs s: "
                     . (eval { $JSON->encode($j) } // '?'))
        unless $o{until};
    return $j;
}

sub job_state {
    my ($n, $id) = @_;
    my $j = jdecode(request($n, 'GET', job_path($id), timeout => 5)->{body});
    return ref $j eq 'HASH' && defined $j->{status} ? $j->{status} : '?';
}

1;
