# The declared NixOS spec (spec.json) of an evaluated configuration: what a NixOS activation
# would make of users, groups, /etc and units. The faithful NixOS test system's `activate`
# consumes it (scripts/lib/nixos-spec writes it; the schema is the toolkit's, in
# docs/nixos-module.md). Fields follow what nixos/modules/config/users-groups.nix hands to
# update-users-groups.pl, and what nixos/modules/system/etc/etc.nix hands to setup-etc.pl.
{ config, lib }:
let
  inherit (lib)
    concatLists
    filter
    filterAttrs
    hasSuffix
    isDerivation
    mapAttrs
    mapAttrs'
    mapAttrsToList
    nameValuePair
    optionals
    sort
    unique
    ;

  # utils.toShellPath (nixos/lib/utils.nix): a shell package becomes its path in the system
  # profile, a path stays.
  shellPath = shell: if isDerivation shell then "/run/current-system/sw${shell.shellPath}" else shell;

  user = u: {
    inherit (u)
      uid
      group
      extraGroups
      home
      createHome
      isNormalUser
      description
      hashedPassword
      ;
    # null (NixOS leaves lingering alone) counts as not lingering
    linger = u.linger == true;
    shell = if u.shell == null then null else shellPath u.shell;
  };

  enabledEtc = filterAttrs (_: e: e.enable) config.environment.etc;
  # Entries declared by `source` alone (a file or package) have no text to hand over and are
  # left out; the module's own entries all have text. (In a full NixOS evaluation that leaves out
  # nixpkgs' sudoers, a `source`; the stubs declare it with its text.)
  etc = mapAttrs' (_: e: nameValuePair e.target { inherit (e) text mode; }) (
    filterAttrs (_: e: e.text != null) enabledEtc
  );

  disabledIn = suffix: units: mapAttrsToList (n: _: "${n}${suffix}") (filterAttrs (_: u: !u.enable) units);

  # Units NixOS leaves out when a feature is off (each feature's module adds them only when on).
  featureUnits = [
    # nixos/modules/services/networking/dhcpcd.nix
    {
      off = !config.networking.dhcpcd.enable;
      units = [ "dhcpcd.service" ];
    }
    # nixos/modules/config/resolvconf.nix
    {
      off = !config.networking.resolvconf.enable;
      units = [ "resolvconf.service" ];
    }
    # nixos/modules/services/networking/firewall-iptables.nix
    {
      off = !config.networking.firewall.enable;
      units = [ "firewall.service" ];
    }
    # nixos/modules/system/boot/timesyncd.nix
    {
      off = !config.services.timesyncd.enable;
      units = [ "systemd-timesyncd.service" ];
    }
    # nixos/modules/system/boot/systemd/oomd.nix
    {
      off = !config.systemd.oomd.enable;
      units = [
        "systemd-oomd.service"
        "systemd-oomd.socket"
      ];
    }
    # nixos/modules/config/console.nix (additionalUpstreamSystemUnits only when enabled)
    {
      off = !config.console.enable;
      units = [ "systemd-vconsole-setup.service" ];
    }
    # nixos/modules/system/boot/systemd.nix (upstreamSystemUnits, optionals enableEmergencyMode)
    {
      off = !config.systemd.enableEmergencyMode;
      units = [
        "emergency.service"
        "emergency.target"
      ];
    }
  ];
in
{
  inherit (config.users) mutableUsers;
  users = mapAttrs (_: user) (filterAttrs (_: u: u.enable) config.users.users);
  groups = mapAttrs (_: g: { inherit (g) gid members; }) config.users.groups;
  inherit etc;
  disabledUnits = sort (a: b: a < b) (
    unique (
      disabledIn ".service" config.systemd.services
      ++ disabledIn ".timer" config.systemd.timers
      ++ disabledIn "" config.systemd.units
      ++ config.systemd.suppressedSystemUnits
      ++ concatLists (map (f: optionals f.off f.units) featureUnits)
    )
  );
  initConf = etc."nixos-wsl/init.conf".text or null;
  # The links the module's own activation snippet makes (/bin/mount, /bin/login, /bin/true,
  # /sbin/init in native mode, ...: system.activationScripts.nixos-wsl), link to target.
  activationLinks = if config.wsl.enable then config.wsl.activationLinks else { };
}
