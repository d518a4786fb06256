#!@perl@
# The users and groups step of the test system's activation: writes /etc/group, /etc/passwd
# and /etc/shadow from the declared spec (users-groups.json, the schema in docs/test-data.md)
# with the rules of nixpkgs' nixos/modules/config/update-users-groups.pl (read there, written
# here from scratch for perl-base, which has no JSON module):
#   - a declared group keeps the gid /etc/group already has (a change is warned about, not
#     applied); members are the declared ones plus every user whose extraGroups name the group
#     (users-groups.nix computes that at evaluation); with mutableUsers, members added by hand
#     stay unless they are declared users;
#   - undeclared groups and users stay only with mutableUsers and when they were never
#     declared (/var/lib/nixos/declarative-groups, -users remember what was);
#   - a declared user's shell is written over whatever /etc/passwd had (the old one is kept
#     only when the declaration has none), so a shell that packer wrote there is replaced;
#   - createHome makes the home (homeMode 700) and gives it to the user;
#   - /etc/shadow: existing lines of kept users stay, but with mutableUsers false the hash is
#     reset to "!" or the declared hashedPassword; new users get "!" or hashedPassword;
#     written 0640 root:shadow.
#   - /etc/group and /etc/passwd are sorted by id; every file is written to a temporary file
#     and renamed over the old one.
use strict;
use warnings;
use File::Path qw(make_path);

my $path = $ARGV[0] // die "usage: update-users-groups.pl SPEC.json\n";
open(my $fh, '<', $path) or die "$path: $!\n";
my $spec = decode(do { local $/; <$fh> }, $path);
close $fh;

# -- a small JSON reader (objects, arrays, strings, numbers, true/false/null) ----------------
sub decode {
    my ($text, $name) = @_;
    my $pos = 0;
    my $fail = sub { die "$name: bad JSON at byte $pos: $_[0]\n" };
    my $ws = sub { $pos++ while $pos < length($text) && substr($text, $pos, 1) =~ /\s/ };
    my $value;
    my $string = sub {
        $fail->("expected a string") unless substr($text, $pos, 1) eq '"';
        $pos++;
        my $out = '';
        while (1) {
            $fail->("unterminated string") if $pos >= length($text);
            my $c = substr($text, $pos++, 1);
            return $out if $c eq '"';
            if ($c eq '\\') {
                my $e = substr($text, $pos++, 1);
                if ($e eq 'u') { $out .= chr(hex(substr($text, $pos, 4))); $pos += 4; }
                else { $out .= { n => "\n", t => "\t", r => "\r", b => "\b", f => "\f" }->{$e} // $e; }
            } else {
                $out .= $c;
            }
        }
    };
    $value = sub {
        $ws->();
        my $c = substr($text, $pos, 1);
        if ($c eq '{') {
            $pos++;
            my %h;
            $ws->();
            if (substr($text, $pos, 1) eq '}') { $pos++; return \%h; }
            while (1) {
                $ws->();
                my $k = $string->();
                $ws->();
                $fail->("expected ':'") unless substr($text, $pos++, 1) eq ':';
                $h{$k} = $value->();
                $ws->();
                my $d = substr($text, $pos++, 1);
                return \%h if $d eq '}';
                $fail->("expected ',' or '}'") unless $d eq ',';
            }
        } elsif ($c eq '[') {
            $pos++;
            my @a;
            $ws->();
            if (substr($text, $pos, 1) eq ']') { $pos++; return \@a; }
            while (1) {
                push @a, $value->();
                $ws->();
                my $d = substr($text, $pos++, 1);
                return \@a if $d eq ']';
                $fail->("expected ',' or ']'") unless $d eq ',';
            }
        } elsif ($c eq '"') {
            return $string->();
        } elsif (substr($text, $pos) =~ /^(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)/) {
            $pos += length($1);
            return $1 + 0;
        } elsif (substr($text, $pos, 4) eq 'true') { $pos += 4; return 1; }
        elsif (substr($text, $pos, 5) eq 'false') { $pos += 5; return 0; }
        elsif (substr($text, $pos, 4) eq 'null') { $pos += 4; return undef; }
        $fail->("unexpected character '$c'");
    };
    my $v = $value->();
    $ws->();
    $fail->("trailing data") if $pos < length($text);
    return $v;
}

sub slurp_lines {
    my ($file) = @_;
    return () unless -f $file;
    open(my $in, '<', $file) or die "$file: $!\n";
    my @lines = <$in>;
    close $in;
    chomp @lines;
    return grep { $_ ne '' } @lines;
}

sub write_atomic {
    my ($file, $text, $mode) = @_;
    my $tmp = "$file.tmp";
    open(my $out, '>', $tmp) or die "$tmp: $!\n";
    print $out $text;
    close $out or die "$tmp: $!\n";
    chmod($mode // 0644, $tmp);
    rename($tmp, $file) or die "rename $tmp $file: $!\n";
}

make_path("/var/lib/nixos", { mode => 0755 });
my %declGroups = map { $_ => 1 } split / /, join(' ', slurp_lines("/var/lib/nixos/declarative-groups"));
my %declUsers = map { $_ => 1 } split / /, join(' ', slurp_lines("/var/lib/nixos/declarative-users"));
my $mutable = $spec->{mutableUsers};
my (%gidsUsed, %uidsUsed);

my %groupsCur;
foreach (slurp_lines("/etc/group")) {
    my @f = split(':', $_, -4);
    $groupsCur{$f[0]} = { name => $f[0], password => $f[1], gid => int($f[2]), members => $f[3] // '' };
    $gidsUsed{int($f[2])} = 1;
}
my %usersCur;
foreach (slurp_lines("/etc/passwd")) {
    my @f = split(':', $_, -7);
    $usersCur{$f[0]} = { name => $f[0], fakePassword => $f[1], uid => int($f[2]), gid => $f[3],
        description => $f[4], home => $f[5], shell => $f[6] };
    $uidsUsed{int($f[2])} = 1;
}
$gidsUsed{$_->{gid}} = 1 foreach grep { defined $_->{gid} } values %{$spec->{groups}};
$uidsUsed{$_->{uid}} = 1 foreach grep { defined $_->{uid} } values %{$spec->{users}};

sub alloc {
    my ($used, $min, $max, $up) = @_;
    for (my $id = $up ? $min : $max; $id >= $min && $id <= $max; $id += $up ? 1 : -1) {
        next if $used->{$id};
        $used->{$id} = 1;
        return $id;
    }
    die "update-users-groups: out of free ids\n";
}

# -- groups ----------------------------------------------------------------------------------
my %groupsOut;
foreach my $name (sort keys %{$spec->{groups}}) {
    my $g = { %{$spec->{groups}{$name}}, name => $name };
    my %members = map { $_ => 1 } @{$g->{members} // []};
    foreach my $uname (keys %{$spec->{users}}) {
        $members{$uname} = 1 if grep { $_ eq $name } @{$spec->{users}{$uname}{extraGroups} // []};
    }
    my $existing = $groupsCur{$name};
    if (defined $existing) {
        $g->{gid} //= $existing->{gid};
        if ($g->{gid} != $existing->{gid}) {
            print STDERR "warning: not applying GID change of group '$name' ($existing->{gid} -> $g->{gid}) in /etc/group\n";
            $g->{gid} = $existing->{gid};
        }
        $g->{password} = $existing->{password};
        if ($mutable) {
            foreach my $uname (split /,/, $existing->{members}) {
                $members{$uname} = 1 unless $declUsers{$uname};
            }
        }
    } else {
        $g->{gid} //= alloc(\%gidsUsed, 400, 999, 0);
        $g->{password} = 'x';
    }
    $g->{members} = join(',', sort keys %members);
    $groupsOut{$name} = $g;
}
write_atomic("/var/lib/nixos/declarative-groups", join(' ', sort keys %groupsOut));
foreach my $name (keys %groupsCur) {
    next if $groupsOut{$name};
    if (!$mutable || $declGroups{$name}) {
        print STDERR "removing group '$name'\n";
    } else {
        $groupsOut{$name} = $groupsCur{$name};
    }
}
write_atomic("/etc/group", join('', map { join(':', @$_{qw(name password gid members)}) . "\n" }
    sort { $a->{gid} <=> $b->{gid} } values %groupsOut));

# -- users -----------------------------------------------------------------------------------
my %usersOut;
foreach my $name (sort keys %{$spec->{users}}) {
    my $u = { %{$spec->{users}{$name}}, name => $name };
    if ($u->{group} =~ /^[0-9]+$/) {
        $u->{gid} = $u->{group};
    } elsif ($groupsOut{$u->{group}}) {
        $u->{gid} = $groupsOut{$u->{group}}{gid};
    } else {
        print STDERR "warning: user '$name' has unknown group '$u->{group}'\n";
        $u->{gid} = 65534;
    }
    my $existing = $usersCur{$name};
    if (defined $existing) {
        $u->{uid} //= $existing->{uid};
        if ($u->{uid} != $existing->{uid}) {
            print STDERR "warning: not applying UID change of user '$name' ($existing->{uid} -> $u->{uid}) in /etc/passwd\n";
            $u->{uid} = $existing->{uid};
        }
    } else {
        $u->{uid} //= $u->{isNormalUser} ? alloc(\%uidsUsed, 1000, 29999, 1) : alloc(\%uidsUsed, 400, 999, 0);
    }
    if ($u->{createHome}) {
        my $mode = oct($u->{homeMode} // '700');
        make_path($u->{home}, { mode => $mode }) unless -e $u->{home};
        chown $u->{uid}, $u->{gid}, $u->{home};
        chmod $mode, $u->{home};
    }
    if (!defined $u->{shell}) {
        if (defined $existing) {
            $u->{shell} = $existing->{shell};
        } else {
            print STDERR "warning: no declarative or previous shell for '$name', setting shell to nologin\n";
            $u->{shell} = "/run/current-system/sw/bin/nologin";
        }
    }
    $u->{description} //= '';
    $u->{fakePassword} = defined $existing ? $existing->{fakePassword} : 'x';
    $usersOut{$name} = $u;
}
write_atomic("/var/lib/nixos/declarative-users", join(' ', sort keys %usersOut));
foreach my $name (keys %usersCur) {
    next if $usersOut{$name};
    if (!$mutable || $declUsers{$name}) {
        print STDERR "removing user '$name'\n";
    } else {
        $usersOut{$name} = $usersCur{$name};
    }
}
write_atomic("/etc/passwd", join('', map { join(':', @$_{qw(name fakePassword uid gid description home shell)}) . "\n" }
    sort { $a->{uid} <=> $b->{uid} } values %usersOut));

# -- shadow ----------------------------------------------------------------------------------
my (@shadow, %seen);
foreach my $line (slurp_lines("/etc/shadow")) {
    my @f = split(':', $line, -9);
    my $u = $usersOut{$f[0]} or next;
    if (!$mutable) {
        $f[1] = defined $u->{hashedPassword} ? $u->{hashedPassword} : '!';
    }
    push @shadow, join(':', @f) . "\n";
    $seen{$f[0]} = 1;
}
foreach my $name (sort keys %usersOut) {
    next if $seen{$name};
    push @shadow, join(':', $name, $usersOut{$name}{hashedPassword} // '!', "1::::", "", "") . "\n";
}
write_atomic("/etc/shadow", join('', @shadow), 0640);
my $shadowGid = $groupsOut{shadow} ? $groupsOut{shadow}{gid} : 0;
chown(0, $shadowGid, "/etc/shadow") or die "chown /etc/shadow: $!\n";
