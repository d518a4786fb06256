# Small declarations of the NixOS options that ../module.nix sets or reads, so the module can be
# evaluated with lib.evalModules and nixpkgs' lib alone (no nixpkgs packages can be had here).
# Types and defaults follow nixpkgs' own declarations, cited beside each; where nixpkgs derives
# something the spec needs (a group's members, a normal user's home and shell, the sudoers
# file), the same rule is written here, smaller. Nothing here is shipped.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib)
    elem
    filterAttrs
    mapAttrsToList
    mkDefault
    mkIf
    mkOption
    types
    ;
  bool = default: mkOption { type = types.bool; inherit default; };
  # nixos/lib/systemd-unit-options.nix: every unit kind has `enable` (default true); the rest of
  # a unit's options are not modelled and accepted as they come.
  unitType = types.attrsOf (
    types.submodule {
      freeformType = types.attrsOf types.anything;
      options.enable = bool true;
    }
  );
  users = config.users;
in
{
  options = {
    # nixos/modules/misc/assertions.nix
    assertions = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
      internal = true;
    };
    warnings = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };

    # nixos/modules/system/boot/stage-2.nix
    boot.systemdExecutable = mkOption {
      type = types.str;
      default = "/run/current-system/systemd/lib/systemd/systemd";
    };
    # nixos/modules/virtualisation/nixos-containers.nix (its effects: container-config.nix)
    boot.isContainer = bool false;

    # nixos/modules/config/console.nix
    console.enable = bool true;
    # nixos/modules/services/networking/dhcpcd.nix
    networking.dhcpcd.enable = bool true;
    # nixos/modules/config/resolvconf.nix (its default depends on other options; true here)
    networking.resolvconf.enable = bool true;
    # nixos/modules/services/networking/firewall.nix
    networking.firewall.enable = bool true;
    # nixos/modules/system/boot/timesyncd.nix: on unless the system is a container
    services.timesyncd.enable = bool (!config.boot.isContainer);
    # nixos/modules/system/boot/systemd/oomd.nix
    systemd.oomd.enable = bool true;
    # nixos/modules/system/boot/systemd.nix
    systemd.enableEmergencyMode = bool true;
    systemd.services = mkOption {
      type = unitType;
      default = { };
    };
    systemd.timers = mkOption {
      type = unitType;
      default = { };
    };
    systemd.units = mkOption {
      type = unitType;
      default = { };
    };
    systemd.suppressedSystemUnits = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
    # nixos/modules/system/boot/systemd/user.nix
    systemd.user.extraConfig = mkOption {
      type = types.lines;
      default = "";
    };

    # nixos/modules/system/etc/etc.nix
    environment.etc = mkOption {
      default = { };
      type = types.attrsOf (
        types.submodule (
          { name, config, ... }:
          {
            options = {
              enable = bool true;
              target = mkOption {
                type = types.str;
                default = name;
              };
              text = mkOption {
                type = types.nullOr types.lines;
                default = null;
              };
              source = mkOption { type = types.path; };
              mode = mkOption {
                type = types.str;
                default = "symlink";
              };
            };
            config.source = mkIf (config.text != null) (mkDefault (pkgs.writeText "etc-${baseNameOf name}" config.text));
          }
        )
      );
    };
    # nixos/modules/config/shells-environment.nix
    environment.extraInit = mkOption {
      type = types.lines;
      default = "";
    };
    environment.shells = mkOption {
      type = types.listOf (types.either types.shellPackage types.path);
      default = [ ];
    };
    environment.systemPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };

    # nixos/modules/config/users-groups.nix
    users.mutableUsers = bool true;
    users.allowNoPasswordLogin = bool false;
    users.defaultUserHome = mkOption {
      type = types.str;
      default = "/home";
    };
    users.defaultUserShell = mkOption {
      type = types.either types.path types.shellPackage;
      # what nixos/modules/programs/bash/bash.nix makes it (see ../../../shared NIXOS.md)
      default = "/run/current-system/sw/bin/bash";
    };
    users.users = mkOption {
      default = { };
      type = types.attrsOf (
        types.submodule (
          { name, config, ... }:
          {
            options = {
              enable = bool true;
              name = mkOption {
                type = types.passwdEntry types.str;
                default = name;
              };
              uid = mkOption {
                type = types.nullOr types.int;
                default = null;
              };
              isSystemUser = bool false;
              isNormalUser = bool false;
              group = mkOption {
                type = types.str;
                default = "";
              };
              extraGroups = mkOption {
                type = types.listOf types.str;
                default = [ ];
              };
              description = mkOption {
                type = types.passwdEntry types.str;
                default = "";
              };
              home = mkOption {
                type = types.passwdEntry types.path;
                default = "/var/empty";
              };
              createHome = bool false;
              useDefaultShell = bool false;
              shell = mkOption {
                type = types.nullOr (types.either types.shellPackage (types.passwdEntry types.path));
                default = pkgs.shadow;
              };
              hashedPassword = mkOption {
                type = types.nullOr (types.passwdEntry types.str);
                default = null;
              };
              linger = mkOption {
                type = types.nullOr types.bool;
                default = null;
              };
            };
            # users-groups.nix userOpts: what isNormalUser implies
            config = lib.mkMerge [
              (mkIf config.isNormalUser {
                group = mkDefault "users";
                createHome = mkDefault true;
                home = mkDefault "${users.defaultUserHome}/${config.name}";
                useDefaultShell = mkDefault true;
              })
              (mkIf config.useDefaultShell { shell = mkDefault users.defaultUserShell; })
            ];
          }
        )
      );
    };
    users.groups = mkOption {
      default = { };
      type = types.attrsOf (
        types.submodule (
          { name, config, ... }:
          {
            options = {
              name = mkOption {
                type = types.passwdEntry types.str;
                default = name;
              };
              gid = mkOption {
                type = types.nullOr types.int;
                default = null;
              };
              members = mkOption {
                type = types.listOf (types.passwdEntry types.str);
                default = [ ];
              };
            };
            # users-groups.nix groupOpts: members are the users that list the group
            config.members = mapAttrsToList (_: u: u.name) (
              filterAttrs (_: u: u.enable && elem config.name u.extraGroups) users.users
            );
          }
        )
      );
    };

    # nixos/modules/security/sudo.nix
    security.sudo.enable = bool true;
    security.sudo.wheelNeedsPassword = bool true;

    # nixos/modules/system/activation/activation-script.nix
    system.activationScripts = mkOption {
      default = { };
      type = types.attrsOf (
        types.either types.str (
          types.submodule {
            options.deps = mkOption {
              type = types.listOf types.str;
              default = [ ];
            };
            options.text = mkOption { type = types.lines; };
          }
        )
      );
    };
    # nixos/modules/system/activation/top-level.nix
    system.build = mkOption {
      type = types.lazyAttrsOf types.unspecified;
      default = { };
    };
    system.stateVersion = mkOption { type = types.str; };
  };

  config = {
    # users-groups.nix: root and nobody always declared, and these groups; ids from
    # nixos/modules/misc/ids.nix. (nix-daemon.nix's nixbld1..32 and the groups of services are
    # not modelled.)
    users.users.root = {
      uid = 0;
      description = "System administrator";
      home = "/root";
      shell = mkDefault users.defaultUserShell;
      group = "root";
    };
    users.users.nobody = {
      uid = 65534;
      isSystemUser = true;
      description = "Unprivileged account (don't use!)";
      group = "nogroup";
    };
    # What other NixOS modules always declare and the faithful test system's services need
    # (dbus-daemon refuses to start without its user): dbus.nix's messagebus, systemd.nix's
    # systemd-network, coredump.nix's systemd-coredump. uids and gids from
    # nixos/modules/misc/ids.nix (messagebus 4, systemd-coredump 151, systemd-network 152,
    # systemd-journal 62), except the systemd-coredump group: ids.nix gives it no gid (NixOS
    # allocates one at activation), so 151, its uid, stands in here.
    users.users.messagebus = {
      uid = 4;
      isSystemUser = true;
      description = "D-Bus system message bus daemon user";
      home = "/run/dbus";
      group = "messagebus";
    };
    users.users.systemd-network = {
      uid = 152;
      isSystemUser = true;
      group = "systemd-network";
    };
    users.users.systemd-coredump = {
      uid = 151;
      isSystemUser = true;
      group = "systemd-coredump";
    };
    users.groups = lib.mapAttrs (_: gid: { inherit gid; }) {
      messagebus = 4;
      systemd-journal = 62;
      systemd-coredump = 151;
      systemd-network = 152;
      root = 0;
      wheel = 1;
      kmem = 2;
      tty = 3;
      disk = 6;
      audio = 17;
      floppy = 18;
      uucp = 19;
      lp = 20;
      cdrom = 24;
      tape = 25;
      video = 26;
      dialout = 27;
      utmp = 29;
      adm = 55;
      users = 100;
      input = 174;
      kvm = 302;
      render = 303;
      sgx = 304;
      shadow = 318;
      nixbld = 30000;
      nogroup = 65534;
    };

    # sudo.nix writes /etc/sudoers (mode 0440, so copied, not linked) from its configFile: the
    # SSH_AUTH_SOCK default, root's rule, then extraRules, whose first is wheel's (NOPASSWD when
    # wheelNeedsPassword is false), tab-separated. There it is a `source`; here it is `text`, so
    # the spec can carry it.
    environment.etc.sudoers = mkIf config.security.sudo.enable {
      mode = "0440";
      text =
        let
          wheelOptions = lib.optionalString (!config.security.sudo.wheelNeedsPassword) "NOPASSWD:" + "SETENV:";
        in
        ''
          # Written by NixOS (security.sudo); edit the configuration instead.

          Defaults env_keep+=SSH_AUTH_SOCK

          root        ALL=(ALL:ALL) SETENV: ALL

          %wheel	ALL=(ALL:ALL)	${wheelOptions} ALL
        '';
    };

    # networking.nix: /etc/hosts from networking.hosts (its default, localhost).
    environment.etc.hosts.text = ''
      127.0.0.1 localhost
      ::1 localhost
    '';

    # user.nix: the user manager's configuration, from systemd.user.extraConfig.
    environment.etc."systemd/user.conf".text = ''
      [Manager]
      ${config.systemd.user.extraConfig}
    '';

    system.build.toplevel = pkgs.fakeDerivation "nixos-system-stub";
  };
}
