# The NixOS module: a NixOS system that runs on WSL through this toolkit's `init`.
#
# WSL runs root's login shell from /etc/passwd (microsoft/WSL src/linux/init/init.cpp:718-731),
# and NixOS's activation rewrites root's shell to the declared one at every activation
# (nixos/modules/config/update-users-groups.pl), so init stays root's shell only when the
# configuration says so: this module says so, and declares everything else WSL needs. The design
# follows NixOS-WSL's 2022 module (nix-community/NixOS-WSL, tag 22.05-5c211b47,
# modules/wsl-distro.nix and modules/build-tarball.nix); the builds are in ./build.nix.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib)
    all
    attrByPath
    attrNames
    concatStrings
    concatStringsSep
    filter
    filterAttrs
    genAttrs
    hasPrefix
    hasSuffix
    isBool
    literalExpression
    mapAttrsToList
    mkDefault
    mkIf
    mkMerge
    mkOption
    optionalString
    removeSuffix
    types
    ;

  cfg = config.wsl;
  paths = import ./paths.nix;

  # users.defaultUserShell as a path: utils.toShellPath (nixos/lib/utils.nix) names a package
  # by its path in the profile.
  defaultShellPath =
    let
      shell = config.users.defaultUserShell;
    in
    if lib.isDerivation shell then "/run/current-system/sw${shell.shellPath}" else shell;
  native = cfg.systemd == "native";
  # Who WSL starts for a session without `-u` ([user] default): root in wrapper mode, whose
  # shell init must run to start systemd; in native mode the user, whose shell is init too
  # (user-shell mode: /etc/set-environment for commands, then the real shell).
  wslDefaultUser = if native then cfg.defaultUser else "root";

  # WSL reads /etc/wsl.conf with its own parser (src/shared/configfile/configfile.cpp): section
  # and key names [A-Za-z][A-Za-z0-9]*, case-insensitive, `#` comments only; the first line it
  # cannot parse ends the parse, so every later key silently keeps WSL's default, and the first
  # of two equal keys wins (here `Systemd` would sort before, and beat, the module's `systemd`).
  # Refuse all of these here.
  wslName = name: builtins.match "[A-Za-z][A-Za-z0-9]*" name != null;
  wslValue = value: if isBool value then lib.boolToString value else toString value;
  caseTwins =
    what: names:
    let
      lower = map lib.toLower names;
    in
    lib.optional (lib.length (lib.unique lower) != lib.length lower) "${what} differing only in case (${concatStringsSep " " names})";
  badWslConf = concatStringsSep ", " (
    caseTwins "sections" (attrNames cfg.wslConf)
    ++ lib.concatLists (
      mapAttrsToList (
        section: keys:
        lib.optional (!wslName section) "section [${section}]"
        ++ caseTwins "keys of [${section}]" (attrNames keys)
        ++ lib.concatMap (
          key:
          lib.optional (!wslName key) "key ${section}.${key}"
          ++ lib.optional (lib.hasInfix "\n" (wslValue keys.${key})) "the value of ${section}.${key} (a newline)"
        ) (attrNames keys)
      ) cfg.wslConf
    )
  );
  wslConfText =
    "# Written by NixOS (the nixos-wsl module, option wsl.wslConf): edit the configuration instead.\n"
    + concatStrings (
      mapAttrsToList (
        section: keys:
        "[${section}]\n" + concatStrings (mapAttrsToList (key: value: "${key}=${wslValue value}\n") keys)
      ) cfg.wslConf
    );
  wslConfKey = section: key: default: attrByPath [ section key ] default cfg.wslConf;

  # init's configuration; keys as common/src/init_config.rs parses them.
  initConfText =
    ''
      # Written by NixOS (the nixos-wsl module, options wsl.*): edit the configuration instead.
    ''
  + (
    if native then
      ''
        # The default user (WSL starts it: [user] default in /etc/wsl.conf).
      ''
    else
      ''
        # Who WSL's shells run as once systemd is up (WSL itself must start root).
      ''
  )
  + ''
    user = ${cfg.defaultUser}
    # Root's real shell (root's shell in /etc/passwd is init itself).
    shell = ${cfg.rootShell}
  ''
  + optionalString native ''
    # The user's real shell (its shell in /etc/passwd is init, which gives commands /etc/set-environment).
    user-shell = ${cfg.userShell}
  ''
  + ''
    # systemd binaries to try; the first that exists wins.
    systemd = ${config.boot.systemdExecutable}
    # Run before systemd starts unless `activated` exists; empty disables.
    activate = /nix/var/nix/profiles/system/activate
    activated = /run/current-system
    # Seconds to wait for systemd's READY=1 before the shell starts anyway.
    boot-timeout = ${toString cfg.bootTimeout}
  '';

  # The hostile units (common/src/units.rs) by the NixOS option that declares each kind.
  # `systemd.<kind>.<name>.enable = false` makes NixOS link the unit to /dev/null
  # (nixos/lib/systemd-lib.nix, makeUnit), which also masks an upstream unit of that name.
  hostileUnits = import ./units.nix;
  hostile = suffix: map (removeSuffix suffix) (filter (hasSuffix suffix) hostileUnits);
  hostileOther = filter (u: !(hasSuffix ".service" u || hasSuffix ".timer" u)) hostileUnits;
  off = _: { enable = false; };

  user = config.users.users.${cfg.defaultUser};
  userGid = attrByPath [ user.group "gid" ] null config.users.groups;

  # Links WSL expects in /bin before anything of NixOS has run: WSL runs `/bin/mount -a` at every
  # start (src/linux/init/config.cpp:2127-2160), `/bin/sh` for an empty shell field
  # (init.cpp:718-731), and writes
  # /bin/wslpath itself (config.cpp:212-216; made here too so it exists for `wsl -e`). Store
  # paths, because /run/current-system is empty until activation.
  binLinks =
    {
      sh = "${pkgs.bashInteractive}/bin/sh";
      mount = "${pkgs.util-linux}/bin/mount";
      login = "${pkgs.shadow}/bin/login";
      wslpath = "/init";
      # WSL's generated wsl-mnt-guard.service runs /bin/true (src/linux/init/init.cpp:375); a
      # NixOS /bin has none, so the unit fails with 203/EXEC and the system is degraded
      # (nix-community/NixOS-WSL issue 1100).
      true = "${pkgs.coreutils}/bin/true";
    }
    // lib.optionalAttrs (cfg.systemd == "native") {
      # WSL's native boot waits with `systemctl is-system-running | grep` and each user's
      # session with `systemctl is-active user@UID.service`, through /bin/sh with no PATH
      # (init.cpp:3574-3601, config.cpp:2719-2805): without them on sh's default PATH each wait
      # runs into boot.initTimeout and the session says "Failed to start the systemd user
      # session".
      systemctl = "${pkgs.systemd}/bin/systemctl";
      grep = "${pkgs.gnugrep}/bin/grep";
    };
  # NixOS's own activation makes /bin/sh (the `binsh` snippet, environment.binsh).
  binLinksActivated = removeAttrs binLinks [ "sh" ];
  # Every link the activation snippet below makes, link to target.
  activationLinks =
    lib.mapAttrs' (name: target: lib.nameValuePair "/bin/${name}" target) binLinksActivated
    // lib.optionalAttrs (cfg.systemd == "native") { "/sbin/init" = paths.init; };
  # Write-then-rename, so a link or a running binary is never missing for an instant.
  linkScript = target: link: ''
    ln -sfn ${target} ${link}.nixos-wsl-tmp
    mv -Tf ${link}.nixos-wsl-tmp ${link}
  '';
in
{
  imports = [ ./build.nix ];

  options.wsl = {
    enable = lib.mkEnableOption "running this NixOS system as a WSL distribution through the nixos-wsl toolkit's init";

    defaultUser = mkOption {
      type = types.strMatching "[a-z_][a-z0-9_-]*";
      default = "nixos";
      description = ''
        The user WSL's shells run as, declared with uid 1000, in `wheel`, lingering, and (by
        default) with passwordless sudo. Must not be `root`. In wrapper mode WSL starts root
        (whose shell is init) and init drops every shell to this user; in native mode WSL starts
        this user itself (`[user] default`), whose shell is init too ({option}`wsl.userShell`).
      '';
    };

    systemd = mkOption {
      type = types.enum [
        "native"
        "wrapper"
      ];
      default = "wrapper";
      description = ''
        How systemd is started.
        `"wrapper"`: WSL without its own systemd support (`[boot] systemd=false`); the first shell
        starts systemd as PID 1 of its own PID and mount namespaces, later shells join them.
        Works on every WSL 2.
        `"native"`: WSL's own systemd support (`[boot] systemd=true`, WSL 0.67.6 and later);
        WSL execs `/sbin/init`, which is init, which runs the activation and execs systemd.
      '';
    };

    wslConf = mkOption {
      type = types.attrsOf (
        types.attrsOf (
          types.oneOf [
            types.bool
            types.int
            types.str
          ]
        )
      );
      default = { };
      example = literalExpression ''{ interop.appendWindowsPath = false; network.hostname = "nixos"; }'';
      description = ''
        /etc/wsl.conf as sections of keys, rendered in WSL's format (`[section]` then `key=value`,
        booleans as `true`/`false`). The module sets `boot.systemd` from {option}`wsl.systemd`,
        `user.default` (`root` in wrapper mode, where init must be started as root; the default
        user in native mode), drive mounts owned by the default user, and `network.generateHosts`/`generateResolvConf` (defaults true; with them NixOS
        leaves `/etc/hosts` and `/etc/resolv.conf` to WSL). Names that WSL's parser would stop at
        are refused.
      '';
    };

    bootTimeout = mkOption {
      type = types.ints.positive;
      default = 30;
      description = "Seconds init waits for systemd's READY=1 (and the activation) before starting the shell anyway (`boot-timeout` in init.conf).";
    };

    userShell = mkOption {
      type = types.str;
      default = defaultShellPath;
      defaultText = literalExpression "users.defaultUserShell, as a path: /run/current-system/sw/bin/bash";
      description = ''
        The default user's real shell in native mode (`user-shell` in init.conf). The user's
        shell in /etc/passwd is init, which gives `-c` commands (`wsl -- CMD`, VS Code's) NixOS's
        /etc/set-environment, as /etc/profile gives login shells, and execs this shell; set this
        instead of `users.users.<defaultUser>.shell`, which the module declares.
      '';
    };

    rootShell = mkOption {
      type = types.str;
      default = defaultShellPath;
      defaultText = literalExpression "users.defaultUserShell, as a path: /run/current-system/sw/bin/bash";
      description = ''
        Root's real shell, which init runs for root (`sudo -i`, `su -`, `init recovery`; `shell` in
        init.conf), since root's shell in /etc/passwd is init itself. The default is the shell
        NixOS gives root without this module, which exists once the system is activated; set a
        store path (`"''${pkgs.bashInteractive}/bin/bash"`) for a recovery shell that works even
        when the activation failed.
      '';
    };

    interop.includePath = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Append the Windows PATH (which init keeps in `WSLPATH`) to PATH in every shell
        ({option}`environment.extraInit`; NixOS's /etc/set-environment sets PATH afresh).
      '';
    };

    distributionName = mkOption {
      type = types.strMatching "[A-Za-z0-9._-]+";
      default = "NixOS";
      description = "The distribution's name in the `.wsl` file ({option}`system.build.wsl`).";
    };

    binLinks = mkOption {
      type = types.attrsOf types.str;
      internal = true;
      readOnly = true;
      default = binLinks;
      description = "The links made in /bin (name to target) by the tarball build and the activation.";
    };

    activationLinks = mkOption {
      type = types.attrsOf types.str;
      internal = true;
      readOnly = true;
      default = activationLinks;
      description = "The links the module's activation makes (absolute link path to target), for the declared spec (../nix/spec.nix).";
    };

    packages = mkOption {
      type = types.lazyAttrsOf types.package;
      default = import ./packages.nix { inherit pkgs; };
      defaultText = literalExpression "import ./packages.nix { inherit pkgs; }";
      description = "The toolkit built from this repository: `init`, `installer` and `packer`.";
    };
  };

  config = mkIf cfg.enable (mkMerge [
    {
      assertions = [
        {
          assertion = cfg.defaultUser != "root";
          message = "wsl.defaultUser cannot be root: root's shell is init, which drops WSL's shells to the default user; declare a normal user.";
        }
        {
          assertion = badWslConf == "";
          message = "wsl.wslConf: WSL's wsl.conf parser stops at the first line it cannot read and keeps the first of two keys equal but for case, so these would silently drop settings: ${badWslConf} (names must be [A-Za-z][A-Za-z0-9]*, unique ignoring case; values one line).";
        }
        {
          assertion = toString (wslConfKey "user" "default" wslDefaultUser) == wslDefaultUser;
          message =
            if native then
              "wsl.wslConf.user.default must be wsl.defaultUser (${cfg.defaultUser}) in native mode: WSL starts that user, whose shell is init (user-shell mode), and init's `wsl -u root` check reads it."
            else
              "wsl.wslConf.user.default must stay root in wrapper mode: WSL must start root's shell (init), which then runs as wsl.defaultUser (${cfg.defaultUser}).";
        }
        {
          assertion = all (hasPrefix "/") (lib.splitString " " config.boot.systemdExecutable);
          message = "boot.systemdExecutable must be an absolute path for init (it is ${config.boot.systemdExecutable}).";
        }
      ];

      wsl.wslConf = {
        boot.systemd = cfg.systemd == "native";
        user.default = mkDefault wslDefaultUser;
        # WSL mounts the Windows drives as `[user] default` when getpwnam finds it at the
        # instance's start, else as the registry's default uid (src/linux/init/config.cpp:690-701,
        # :2021): root with `default=root` (wrapper mode), and in native mode at a first start
        # before the first activation has declared the user (a bare tarball). Give them to the
        # default user in both.
        automount.options = mkDefault (
          "metadata"
          + optionalString (user.uid != null) ",uid=${toString user.uid}"
          + optionalString (userGid != null) ",gid=${toString userGid}"
        );
        network.generateHosts = mkDefault true;
        network.generateResolvConf = mkDefault true;
      };

      environment.etc."wsl.conf".text = wslConfText;
      environment.etc.${paths.initConfig}.text = initConfText;
      # WSL writes /etc/hosts with creat(), which follows a link into the read-only store
      # (config.cpp:789, :815), and replaces /etc/resolv.conf with its own link (init.cpp:1225).
      environment.etc.hosts.enable = !(wslConfKey "network" "generateHosts" true);
      environment.etc."resolv.conf".enable = !(wslConfKey "network" "generateResolvConf" true);

      # Root: init as the login shell, at a path that exists before activation (a regular file
      # written at build time and refreshed by every activation, below; the path packer and the
      # installer use too). The extra `root` group: without it WSL fails with "initgroups failed
      # 5" (NixOS-WSL 22.05 modules/wsl-distro.nix).
      users.users = mkMerge [
        {
          root = {
            shell = paths.init;
            extraGroups = [ "root" ];
          };
        }
        # (root is refused by an assertion above, with the reason)
        (mkIf (cfg.defaultUser != "root") {
          ${cfg.defaultUser} = {
            isNormalUser = true;
            uid = mkDefault 1000;
            extraGroups = [ "wheel" ];
            # `systemctl --user` and the user's services keep running between shells.
            linger = mkDefault true;
            # Native mode: WSL starts the user's passwd shell (init.cpp:718-731), and a `-c`
            # command never sources /etc/set-environment; init does, then execs wsl.userShell.
            shell = mkIf native paths.init;
          };
        })
      ];
      # Native mode: init is a login shell (/etc/shells, nixos/modules/config/shells-environment.nix),
      # which chsh, su's restricted-shell check and pam_shells look for.
      environment.shells = mkIf native [ paths.init ];
      # The default user has no password to type.
      security.sudo.wheelNeedsPassword = mkDefault false;
      # Nobody logs in with a password on WSL (WSL starts the shell; `wsl -u root` always works),
      # so NixOS's lock-out check for `mutableUsers = false` (users-groups.nix) does not apply.
      users.allowNoPasswordLogin = mkDefault true;

      # Closest to a container: no kernel, initrd or boot loader of its own
      # (nixos/modules/virtualisation/container-config.nix).
      boot.isContainer = true;

      # Units that fight WSL, off through their features' own options where NixOS has one.
      networking.dhcpcd.enable = false; # WSL configures eth0 from the host
      networking.resolvconf.enable = mkDefault (!(wslConfKey "network" "generateResolvConf" true));
      # The network namespace is the VM's, shared by every distribution (WSL clones none of its
      # own, src/linux/init/main.cpp:3027): a firewall here filters them all.
      networking.firewall.enable = mkDefault false;
      services.timesyncd.enable = mkDefault false; # WSL keeps the VM's clock in step with Windows
      systemd.oomd.enable = mkDefault false; # memory pressure is the VM's, shared by all distributions
      console.enable = false; # no virtual console (drops systemd-vconsole-setup, nixos/modules/config/console.nix)
      # No console to be dropped into (emergency.{target,service} left out,
      # nixos/modules/system/boot/systemd.nix upstreamSystemUnits).
      systemd.enableEmergencyMode = false;

      # The rest of common/src/units.rs, and udev (WSL's /dev is shared by every distribution of
      # the VM, src/linux/init/config.cpp:190-229: a udevd per distribution would fight over it),
      # by `enable = false`.
      systemd.services =
        genAttrs (hostile ".service") off
        // genAttrs [
          "systemd-udevd"
          "systemd-udev-trigger"
          "systemd-udev-settle"
        ] off;
      systemd.timers = genAttrs (hostile ".timer") off;
      systemd.units = genAttrs hostileOther off;

      # The Windows PATH: init puts it after the system's and into WSLPATH, but login shells
      # source /etc/set-environment, which sets PATH afresh.
      environment.extraInit = mkIf cfg.interop.includePath ''
        if [ -n "''${WSLPATH-}" ]; then
          case ":$PATH:" in
            *":$WSLPATH:"*) ;;
            *) export PATH="$PATH:$WSLPATH" ;;
          esac
        fi
      '';

      # WSL's native boot generates the user unit wslg-session (src/linux/init/init.cpp:263-316),
      # whose ExecStart= run mkdir and ln through /bin/sh with the user manager's PATH: systemd's
      # compiled-in /usr/local/sbin:...:/bin, where NixOS has neither, so the unit fails (127)
      # and every user manager is degraded. The user manager's services get the system's PATH.
      systemd.user.extraConfig = lib.mkIf (cfg.systemd == "native") ''
        DefaultEnvironment="PATH=/run/wrappers/bin:/nix/var/nix/profiles/default/bin:/run/current-system/sw/bin"
      '';

      # init at its path as a regular file, replaced by rename (a running init is never
      # overwritten in place: ETXTBSY); /sbin/init in native mode; the /bin links WSL expects.
      system.activationScripts.nixos-wsl = {
        deps = [ ];
        text =
          ''
            mkdir -p ${dirOf paths.init} /bin /sbin
            cp -f ${cfg.packages.init}/bin/init ${paths.init}.nixos-wsl-tmp
            chmod 0755 ${paths.init}.nixos-wsl-tmp
            mv -Tf ${paths.init}.nixos-wsl-tmp ${paths.init}
          ''
          + concatStrings (mapAttrsToList (link: target: linkScript target link) activationLinks);
      };
    }
  ]);
}
