#!@perl@
# The /etc step of the test system's activation, with the rules of nixpkgs'
# nixos/modules/system/etc/setup-etc.pl (read there, written here from scratch for perl-base):
#   - /etc/static is pointed at the new etc (a temporary link renamed over the old one);
#   - links in /etc into /etc/static whose entry the new etc no longer has are removed;
#   - every symlink entry of the etc tree becomes /etc/X -> /etc/static/X, made as X.tmp and
#     renamed over X, so a regular file there is replaced; a real directory where a link is
#     wanted stays (unless it only holds links into /etc/static), with the warning
#     "X directory contains user files. Symlinking may fail.";
#   - entries with an X.mode file are copied (mode, owner root) rather than linked, and listed
#     in /etc/.clean; files listed there by the last run and no longer declared are removed;
#   - undeclared regular files are never touched; /etc/NIXOS is created when missing.
use strict;
use warnings;
use File::Path qw(make_path remove_tree);
use File::Basename qw(dirname);

my $etc = $ARGV[0] // die "usage: setup-etc.pl ETC\n";
my $static = "/etc/static";

sub atomic_symlink {
    my ($source, $target) = @_;
    my $tmp = "$target.tmp";
    unlink $tmp;
    symlink($source, $tmp) or return 0;
    return 1 if rename($tmp, $target);
    unlink $tmp;
    return 0;
}

# Every entry under DIR (relative names), not following symlinks.
sub walk {
    my ($dir, $prefix, $out) = @_;
    opendir(my $dh, $dir) or return;
    foreach my $name (sort grep { $_ ne '.' && $_ ne '..' } readdir $dh) {
        my $rel = $prefix eq '' ? $name : "$prefix/$name";
        push @$out, $rel;
        walk("$dir/$name", $rel, $out) if -d "$dir/$name" && ! -l "$dir/$name";
    }
    closedir $dh;
}

sub copy_file {
    my ($from, $to) = @_;
    open(my $in, '<', $from) or return 0;
    open(my $out, '>', $to) or return 0;
    binmode $in;
    binmode $out;
    local $/;
    my $data = <$in>;
    print $out $data if defined $data;
    close $in;
    close $out or return 0;
    return 1;
}

# Does DIR only hold links into /etc/static (what an older generation made)?
sub is_static {
    my ($path) = @_;
    return readlink($path) =~ m{^\Q$static\E/} if -l $path;
    return 0 unless -d $path;
    my @entries;
    walk($path, '', \@entries);
    foreach (@entries) {
        my $p = "$path/$_";
        next if -d $p && ! -l $p;
        return 0 unless -l $p && readlink($p) =~ m{^\Q$static\E/};
    }
    return 1;
}

atomic_symlink($etc, $static) or die "could not point $static at $etc\n";

# Obsolete links into /etc/static.
my @current;
walk("/etc", '', \@current);
foreach my $rel (@current) {
    my $p = "/etc/$rel";
    next unless -l $p;
    next if $rel eq 'static';
    my $target = readlink $p;
    next unless substr($target, 0, length($static) + 1) eq "$static/";
    my $x = "$static/$rel";
    unless (-l $x) {
        print STDERR "removing obsolete symlink '$p'...\n";
        unlink $p;
    }
}

my (%created, @copied);
my @entries;
walk($etc, '', \@entries);
foreach my $fn (@entries) {
    next if $fn =~ /\.(mode|uid|gid)$/;
    my $src = "$etc/$fn";
    my $target = "/etc/$fn";
    if (-e "$src.mode") {
        open(my $m, '<', "$src.mode") or die "$src.mode: $!\n";
        chomp(my $mode = <$m>);
        close $m;
        make_path(dirname($target));
        $created{$fn} = 1;
        if ($mode eq 'direct-symlink') {
            atomic_symlink(readlink("$static/$fn"), $target) or warn "could not create symlink $target\n";
        } else {
            copy_file("$static/$fn", "$target.tmp") or warn "could not copy $static/$fn to $target.tmp\n";
            chown(0, 0, "$target.tmp");
            chmod(oct($mode), "$target.tmp");
            rename("$target.tmp", $target) or warn "could not create target $target\n";
        }
        push @copied, $fn;
    } elsif (-l $src) {
        make_path(dirname($target));
        $created{$fn} = 1;
        if (-d $target && ! -l $target) {
            if (is_static($target)) {
                remove_tree($target);
            } else {
                warn "$target directory contains user files. Symlinking may fail.\n";
            }
        }
        atomic_symlink("$static/$fn", $target) or warn "could not create symlink $target\n";
    }
}

# Copies the last run made that are no longer declared.
if (open(my $clean, '<', "/etc/.clean")) {
    while (my $fn = <$clean>) {
        chomp $fn;
        next if $fn eq '' || $created{$fn};
        print STDERR "removing obsolete file '/etc/$fn'...\n";
        unlink "/etc/$fn";
    }
    close $clean;
}
open(my $clean, '>', "/etc/.clean") or die "/etc/.clean: $!\n";
print $clean "$_\n" foreach @copied;
close $clean;

open(my $tag, '>>', "/etc/NIXOS") or die "/etc/NIXOS: $!\n";
close $tag;
