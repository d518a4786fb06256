# The images of a NixOS-on-WSL system, imported by ./module.nix:
#   system.build.tarball    tarball/nixos-wsl-<system>.tar.gz, a root filesystem for `wsl --import`
#   system.build.installer  tarball/nixos-wsl-installer.tar.gz, packer's installer distribution
#   system.build.wsl        <wsl.distributionName>.wsl, packer's .wsl file
# The tarball is nixpkgs' make-system-tarball (nixos/lib/make-system-tarball.nix) with a prepare
# step in the manner of NixOS-WSL 22.05's wsl-prepare (modules/build-tarball.nix): the Nix
# database loaded and the system profile set at build time, so `nix` and `nixos-rebuild` work at
# the first start, and everything WSL needs before the first activation. None of this is built
# in the toolkit's own sandbox (no nixpkgs there): docs/nixos-module.md says what was checked.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib)
    concatStrings
    mapAttrsToList
    mkIf
    optionalString
    removePrefix
    ;
  cfg = config.wsl;
  paths = import ./paths.nix;
  system = config.system.build.toplevel;
  hostSystem = pkgs.stdenv.hostPlatform.system;
  tarballName = "nixos-wsl-${hostSystem}";
  # packer runs on the build machine.
  buildTools = import ./packages.nix { pkgs = pkgs.buildPackages; };
  rel = removePrefix "/";

  prepare = pkgs.writeShellScript "nixos-wsl-prepare" ''
    set -euo pipefail
    # Runs in the tarball's root, after the store closure and nix-path-registration are in place.
    mkdir -m 0755 -p bin sbin etc/nixos-wsl ${rel (dirOf paths.init)}
    mkdir -m 0700 -p root
    mkdir -m 1777 -p tmp

    # The Nix database and the system profile (the image's first boot would do it otherwise:
    # make-system-tarball only leaves /nix-path-registration).
    ${system}/sw/bin/nix-store --store "$PWD" --load-db < nix-path-registration
    rm nix-path-registration
    mkdir -p nix/var/nix/profiles
    ${system}/sw/bin/nix-env --store "$PWD" -p nix/var/nix/profiles/system --set ${system}

    # init, root's shell, as a regular file at the path the configuration declares; until the
    # first activation writes /etc/passwd, this one-line file is what WSL reads.
    install -m 0755 ${cfg.packages.init}/bin/init ${rel paths.init}
    echo 'root:x:0:0:System administrator:/root:${paths.init}' > etc/passwd
    echo 'root:x:0:' > etc/group
    ${optionalString (cfg.systemd == "native") "ln -s ${paths.init} sbin/init"}
    ${concatStrings (mapAttrsToList (name: target: "ln -s ${target} bin/${name}\n") cfg.binLinks)}

    # wsl.conf and init.conf as files, read before the first activation replaces them with links
    # into /etc/static (nixos/modules/system/etc/setup-etc.pl).
    cp ${config.environment.etc."wsl.conf".source} etc/wsl.conf
    cp ${config.environment.etc.${paths.initConfig}.source} etc/${paths.initConfig}
    ${optionalString (config.environment.etc ? fstab && config.environment.etc.fstab.enable) ''
      # WSL runs /bin/mount -a at every start (src/linux/init/config.cpp:705-714), which fails
      # on a missing fstab and prints so; the declared one (nixos/modules/tasks/filesystems.nix).
      cp ${config.environment.etc.fstab.source} etc/fstab
    ''}
    touch etc/NIXOS
  '';

  tarball = pkgs.callPackage (pkgs.path + "/nixos/lib/make-system-tarball.nix") {
    fileName = tarballName;
    contents = [ ];
    storeContents = map
      (object: {
        inherit object;
        symlink = "none";
      })
      [
        system
        prepare
      ];
    extraCommands = prepare;
    # The store paths are copied with `cp -a`, which keeps the hard links of an optimised store,
    # and WSL's import refuses hard links (docs/packer.md): write each file with its data.
    extraArgs = "--hard-dereference";
    compressCommand = "gzip";
    compressionExtension = ".gz";
  };
  rootfs = "${tarball}/tarball/${tarballName}.tar.gz";

  packer = name: args: pkgs.runCommand name { nativeBuildInputs = [ buildTools.packer ]; } ''
    mkdir -p $out/tarball
    packer --rootfs ${rootfs} --init ${cfg.packages.init}/bin/init \
      --installer ${cfg.packages.installer}/bin/installer \
      --default-user ${cfg.defaultUser} --quiet ${args}
  '';
in
{
  config = mkIf cfg.enable {
    system.build.tarball = tarball;
    system.build.installer = packer "nixos-wsl-installer" "--out $out/tarball/nixos-wsl-installer.tar.gz";
    system.build.wsl = packer "nixos-wsl-${cfg.distributionName}" "--out $out/${cfg.distributionName}.wsl --name ${cfg.distributionName}";
  };
}
